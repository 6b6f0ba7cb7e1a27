"""The documented regression procedure catches a planted slowdown:
``--benchmark-autosave`` on a fast model, then ``--benchmark-compare --benchmark-compare-fail=median:10%``
on a 16x heavier one under the same benchmark id must fail the run."""

import json
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


class _Session:
    def __init__(self):
        self.warnings = []
        self.logger = self

    def warning(self, text):
        self.warnings.append(text)


def test_latency_records_of_another_cpu_class_are_not_compared():
    """A stored run from another CPU class: its quantkit latency records leave the comparison (and so
    --benchmark-compare-fail), with a warning; other benchmarks stay; the same class compares everything."""
    from quantkit.plugin import BENCHMARK_PREFIX, pytest_benchmark_compare_machine_info

    def stored(cpu_class):
        return {
            "machine_info": {"quantkit": {"cpu_class": cpu_class}},
            "benchmarks": [{"fullname": BENCHMARK_PREFIX + "m/static-qdq/cpu/1t/int8"}, {"fullname": "t.py::other"}],
        }

    here = {"quantkit": {"cpu_class": "AMD avx2"}}
    other, session = stored("Intel amx"), _Session()
    pytest_benchmark_compare_machine_info(None, session, here, other)
    assert [b["fullname"] for b in other["benchmarks"]] == ["t.py::other"]
    assert "CPU class 'Intel amx', this run on 'AMD avx2': not compared" in session.warnings[0]
    same, session = stored("AMD avx2"), _Session()
    pytest_benchmark_compare_machine_info(None, session, here, same)
    assert len(same["benchmarks"]) == 2 and not session.warnings


MANIFEST = """
[[case]]
id = "detector"
model = "{model}"
calib = "{calib}"
val_images = "{val}"

[[config]]
id = "static-qdq"
preset = "{preset}"
"""


@pytest.mark.slow  # two nested sessions timing the fixture (`pytest -m slow`)
def test_a_slower_int8_under_the_same_name_fails_benchmark_compare(fixture_case, tmp_path, run_suite):
    """The suite's latency records on the user's model: saved from quantkit's recipe, then compared with an INT8
    1.4-2x slower (onnxruntime's defaults) under the same benchmark name: --benchmark-compare-fail fails it."""

    def suite(preset, *extra):
        manifest = tmp_path / f"{preset}.toml"
        paths = {"model": fixture_case.model, "calib": fixture_case.calib, "val": fixture_case.coco_images}
        manifest.write_text(MANIFEST.format(**paths, preset=preset))
        store = f"--benchmark-storage=file://{tmp_path / 'store'}"
        return run_suite(tmp_path, "-k", "latency", "--quantkit-latency-threads", "1", "--quantkit-manifest", manifest,
                         store, *extra)  # fmt: skip

    saved = suite("default", "--benchmark-save=main")
    assert saved.returncode == 0, saved.stdout[-3000:]
    stored = json.loads(next((tmp_path / "store").rglob("*_main.json")).read_text())
    names = sorted(b["name"] for b in stored["benchmarks"])
    assert names == ["detector/static-qdq/cpu/1t/fp32", "detector/static-qdq/cpu/1t/int8"]
    record = stored["benchmarks"][0]["extra_info"]["quantkit_record"]
    assert record["verdict"] == "pass" and record["compression"] > 3 and record["agreement"]["ci95"]
    slower = suite("naive", "--benchmark-compare=0001", "--benchmark-compare-fail=median:10%")
    assert slower.returncode != 0 and "Performance has regressed" in slower.stdout + slower.stderr, slower.stdout[
        -3000:
    ]
    assert "detector/static-qdq/cpu/1t/int8" in slower.stdout + slower.stderr
