"""Latency per (case, precision, EP, threads) with pytest-benchmark, then the INT8/FP32 ratio gate.

Ids are stable on every runner (an EP that is missing is skipped, not dropped), so
``--benchmark-compare`` lines up across machines:

    pytest benchmarks --benchmark-autosave
    pytest benchmarks --benchmark-compare --benchmark-compare-fail=median:10%
"""

import pytest

from quantkit import gates
from quantkit.bench import sample_input
from quantkit.plugin import pipeline, settings
from quantkit.report import markdown_table
from quantkit.session import EPS, Runner, available_eps

THREADS = (1, 2)
ROUNDS, WARMUP = 30, 5


def _targets(config):
    """(case, spec or None for FP32, ep, threads), FP32 first in each group so pairs run back to back."""
    s = settings(config)
    targets = []
    for case in s.manifest.cases:
        specs = [spec for c, spec in s.manifest.pairs() if c is case]
        for ep in EPS:
            for threads in THREADS:
                targets += [(case, None, ep, threads)] + [(case, spec, ep, threads) for spec in specs]
    return targets


def _id(target):
    case, spec, ep, threads = target
    return f"{case.id}/{spec.id if spec else 'fp32'}/{ep}/{threads}t"


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        targets = _targets(metafunc.config)
        metafunc.parametrize("target", targets, ids=[_id(t) for t in targets])


def test_latency(target, benchmark, medians, request):
    case, spec, ep, threads = target
    if ep not in available_eps():
        pytest.skip(f"execution provider '{ep}' is not available in this onnxruntime")
    pipe = pipeline(request.config, case)
    info = benchmark.extra_info
    path = pipe.model_path(spec)
    runner = Runner(path, ep, threads)  # session creation is measured apart from inference
    info.update(threads=threads, ep=ep, precision=spec.id if spec else "fp32", model=path.name)
    tensor = sample_input(pipe.hw_nc[0])
    benchmark.pedantic(runner.run, args=(tensor,), rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    if not benchmark.disabled:
        medians.setdefault((case.id, ep, threads), {})[spec.id if spec else "fp32"] = 1e3 * benchmark.stats.stats.median


def test_session_creation(benchmark, request):
    """Creating a session (graph optimization, kernel selection) is timed apart from inference."""
    s = settings(request.config)
    case = s.manifest.cases[0]
    path = pipeline(request.config, case).model_path(s.manifest.pairs()[0][1])
    benchmark.pedantic(Runner, args=(path, "cpu", 1), rounds=5, warmup_rounds=1, iterations=1)


def test_ratio_gate(medians, request):
    """INT8 median / FP32 median per (case, EP, threads) <= the table's max_latency_ratio_<ep>."""
    if not medians:
        pytest.skip("no latency measured (benchmarks disabled, e.g. under xdist or --benchmark-disable)")
    s = settings(request.config)
    specs = {(c.id, k.id): (c, k) for c, k in s.manifest.pairs()}
    rows, results = [], []
    for (case_id, ep, threads), by_precision in sorted(medians.items()):
        fp32 = by_precision.get("fp32")
        for precision, ms in by_precision.items():
            if precision == "fp32" or fp32 is None:
                continue
            case, spec = specs[(case_id, precision)]
            result = gates.check_latency(ms / fp32, ep, s.manifest.thresholds_for(case, spec),
                                         f"{case_id}/{precision}/{ep}/{threads}t", fp32, ms)
            results.append(result)
            rows.append({"case": case_id, "config": precision, "ep": ep, "threads": threads, "fp32 ms": round(fp32, 2),
                         "int8 ms": round(ms, 2), "ratio": round(ms / fp32, 3), "max": result.threshold,
                         "gate": "pass" if result.passed else "FAIL"})
    request.config._quantkit_ratio_table = markdown_table(rows)
    gates.assert_passed(results)
