"""The documented regression procedure catches a planted slowdown:
``--benchmark-autosave`` on a fast model, then ``--benchmark-compare --benchmark-compare-fail=median:10%``
on a 16x heavier one under the same benchmark id must fail the run."""

import subprocess
import sys

import pytest

import graphs

BENCH = """
import os
import numpy as np
from quantkit.measure.session import Runner

def test_tiny_latency(benchmark):
    runner = Runner(os.environ["QK_MODEL"], "cpu", 1)
    hw = int(os.environ["QK_HW"])
    x = np.zeros((1, 3, hw, hw), np.float32)
    benchmark.pedantic(runner.run, args=(x,), rounds=20, warmup_rounds=3)
"""


def _run(tmp_path, model, hw, *extra):
    env = {"QK_MODEL": str(model), "QK_HW": str(hw), "PATH": "/usr/bin:/bin"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-o",
        "addopts=",
        f"--benchmark-storage=file://{tmp_path / 'store'}",
        str(tmp_path / "bench_tiny.py"),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**env, "HOME": str(tmp_path)})


@pytest.mark.slow  # fixture latency timing / nested pytest sessions: `pytest -m slow` (CI runs it)
def test_planted_slowdown_is_caught(tmp_path):
    (tmp_path / "bench_tiny.py").write_text(BENCH)
    fast = graphs.save(graphs.tiny_yolo(hw=(32, 32)), tmp_path / "fast.onnx")
    slow = graphs.save(graphs.tiny_yolo(hw=(256, 256)), tmp_path / "slow.onnx")
    saved = _run(tmp_path, fast, 32, "--benchmark-autosave")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    same = _run(tmp_path, fast, 32, "--benchmark-compare", "--benchmark-compare-fail=median:200%")
    assert same.returncode == 0, same.stdout + same.stderr
    slower = _run(tmp_path, slow, 256, "--benchmark-compare", "--benchmark-compare-fail=median:10%")
    assert slower.returncode != 0 and "Performance has regressed" in slower.stdout + slower.stderr, slower.stdout
