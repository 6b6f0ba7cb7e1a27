"""Latency gate: INT8 / FP32, timed interleaved in one process at fixed intra-op thread counts.

Threshold by CPU class (``max_latency_ratio_cpu_vnni`` where the CPU has VNNI/AMX, else
``max_latency_ratio_cpu``); a config declared ``size_only`` is capped by
``max_latency_ratio_size_only`` and reported "no gain", never as faster. The rounds the gate judged are
recorded as two pytest-benchmark benchmarks, ``<case>/<config>/<ep>/<threads>t/fp32`` and ``.../int8``, with
what the run measured of the pair in their ``extra_info`` (``plugin.record_latency``): ``--benchmark-autosave``,
``--benchmark-compare`` and ``--benchmark-compare-fail`` work on the user's model. Under pytest-xdist the
workers defer the timing to the controller, which runs it after every worker is done (plugin.py); pytest-benchmark
disables itself there, so nothing is recorded.
"""

import pytest

from quantkit.plugin import LATENCY_REQUEST, record_latency, settings

pytestmark = pytest.mark.quantkit_latency


def pytest_generate_tests(metafunc):
    if "threads" in metafunc.fixturenames:
        threads = settings(metafunc.config).latency_threads
        metafunc.parametrize("threads", threads, ids=[f"{t}t" for t in threads])


def test_latency_ratio(qk_pair, threads, request, benchmark):
    gate_id = f"{qk_pair.id}/{threads}t"
    if hasattr(request.config, "workerinput"):  # another worker shares the CPU: the controller times it later
        request.node.user_properties.append(
            (
                LATENCY_REQUEST,
                {"id": gate_id, "case": qk_pair.pipeline.case.id, "config": qk_pair.spec.id, "threads": threads},
            )
        )
        benchmark.skipped = True
        pytest.skip(
            f"{gate_id}: timed by the xdist controller after the workers finish (see 'quantkit latency gates'); "
            "pytest-benchmark records nothing under xdist"
        )
    result, measured = qk_pair.pipeline.latency_gate(qk_pair.spec, threads, qk_pair.thresholds, gate_id)
    print(result.message())
    record_latency(benchmark, qk_pair, gate_id, result, measured)
    qk_pair.assert_passed([result])
