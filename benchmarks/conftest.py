"""Benchmark plumbing. Every saved run's machine info (onnxruntime, its EPs, the CPU's INT8 flags and class)
comes from the quantkit plugin's ``pytest_benchmark_update_machine_info``.

The INT8/FP32 ratio gate is the plugin's: every INT8 benchmark leaves a latency request, and after
the last test the plugin times each (case, config, EP, threads) FP32 and INT8 *interleaved* and
gates the ratio (``quantkit latency gates`` in the terminal summary). Medians of separate
pytest-benchmark tests, timed seconds apart, are for ``--benchmark-compare`` history only: their
ratio cried wolf (2 false failures in 8 clean runs). The gate also runs under ``--benchmark-disable``
and ``-n 2`` (the controller times it), and an INT8 target that cannot be timed fails the run.
"""
