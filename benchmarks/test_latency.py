"""Latency per (case, precision, EP, threads) with pytest-benchmark, for ``--benchmark-compare``
history; every INT8 target also asks the plugin's latency gate to time it interleaved with FP32
after the last test (benchmarks/conftest.py).

Ids are stable on every runner (an EP that is missing is skipped, not dropped), so
``--benchmark-compare`` lines up across machines:

    pytest benchmarks --benchmark-autosave
    pytest benchmarks -m "not noisy" --benchmark-compare --benchmark-compare-fail=median:10%
"""

import pytest

from quantkit.measure.bench import sample_input
from quantkit.plugin import LATENCY_REQUEST, pipeline, settings
from quantkit import providers
from quantkit.measure.session import Runner, available_eps

pytestmark = pytest.mark.benchmark
THREADS = (1, 2)
ROUNDS, WARMUP = 30, 5


def _targets(config):
    """(case, spec or None for FP32, ep, threads), FP32 first in each group so pairs run back to back."""
    s = settings(config)
    targets = []
    for case in s.manifest.cases:
        specs = [spec for c, spec in s.manifest.pairs() if c is case]
        for ep in providers.IDS:
            for threads in THREADS:
                targets += [(case, None, ep, threads)] + [(case, spec, ep, threads) for spec in specs]
    return targets


def _id(target):
    case, spec, ep, threads = target
    return f"{case.id}/{spec.id if spec else 'fp32'}/{ep}/{threads}t"


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        params = [
            pytest.param(t, id=_id(t), marks=[pytest.mark.gpu] if providers.get(t[2]).gpu else [])
            for t in _targets(metafunc.config)
        ]
        metafunc.parametrize("target", params)


def test_latency(target, benchmark, request):
    case, spec, ep, threads = target
    if ep not in available_eps():
        pytest.skip(f"execution provider '{ep}' is not available in this onnxruntime")
    pipe = pipeline(request.config, case)
    info = benchmark.extra_info
    path = pipe.model_path(spec)
    runner = Runner(path, ep, threads)  # session creation is measured apart from inference
    info.update(threads=threads, ep=ep, precision=spec.id if spec else "fp32", model=path.name)
    tensor = sample_input(pipe.hw_nc[0])
    if spec is not None:  # timed against FP32, interleaved, by the plugin after the last test
        request.node.user_properties.append(
            (LATENCY_REQUEST, {"id": _id(target), "case": case.id, "config": spec.id, "ep": ep, "threads": threads})
        )
    benchmark.pedantic(runner.run, args=(tensor,), rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)


@pytest.mark.noisy
def test_session_creation(benchmark, request):
    """Creating a session (graph optimization, kernel selection) is timed apart from inference."""
    s = settings(request.config)
    case = s.manifest.cases[0]
    path = pipeline(request.config, case).model_path(s.manifest.pairs()[0][1])
    benchmark.pedantic(Runner, args=(path, "cpu", 1), rounds=5, warmup_rounds=1, iterations=1)
