"""The plugin's own behaviour in nested pytest sessions: settings checked before any test runs,
and latency timed serially by the xdist controller."""

import re

import pytest

import graphs


@pytest.mark.slow  # a nested pytest session: `pytest -m slow` (CI runs it)
def test_missing_model_is_one_usage_error(tmp_path, run_suite):
    proc = run_suite(tmp_path, "--quantkit-model", tmp_path / "missing.onnx")
    assert proc.returncode == 4, proc.stdout[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "model not found" in errors[0] and "--quantkit-model" in errors[0], proc.stderr
    assert "failed" not in proc.stdout


@pytest.mark.slow  # fixture latency timing / nested pytest sessions: `pytest -m slow` (CI runs it)
def test_a_gate_without_its_inputs_names_the_option(tmp_path, calib_dir, run_suite):
    model = graphs.save(graphs.tiny_yolo(metadata={"names": "{0: 'a', 1: 'b'}"}), tmp_path / "tiny.onnx")
    proc = run_suite(tmp_path, "--quantkit-model", model, "-k", "compression and static-qdq")
    assert proc.returncode == 4 and "--quantkit-calib" in proc.stderr and "--calib " not in proc.stderr, proc.stderr
    dynamic = run_suite(tmp_path, "--quantkit-model", model, "-k", "compression and dynamic")  # needs no images
    assert dynamic.returncode == 1 and "size gate FAILED: compression" in dynamic.stdout, dynamic.stdout[-2000:]
    proc = run_suite(tmp_path, "--quantkit-model", model, "--quantkit-calib", calib_dir, "-k", "map_drop", "-rs")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr  # no annotations: agreement judges accuracy
    assert "no annotated images: accuracy is judged by agreement with FP32" in proc.stdout
    half = run_suite(
        tmp_path,
        "--quantkit-model",
        model,
        "--quantkit-calib",
        calib_dir,
        "--quantkit-coco-images",
        calib_dir,
        "-k",
        "map_drop",
    )
    assert half.returncode == 4 and "--quantkit-coco-ann too" in half.stderr, half.stderr


@pytest.mark.slow  # fixture latency timing / nested pytest sessions: `pytest -m slow` (CI runs it)
def test_xdist_workers_defer_latency_to_the_controller(tmp_path, calib_dir, run_suite):
    model = graphs.save(graphs.tiny_yolo(metadata={"names": "{0: 'a', 1: 'b'}"}), tmp_path / "tiny.onnx")
    proc = run_suite(
        tmp_path,
        "-p",
        "xdist",
        "-n",
        "2",
        "--quantkit-model",
        model,
        "--quantkit-calib",
        calib_dir,
        "--quantkit-cache-dir",
        tmp_path / "cache",
        "--quantkit-latency-threads",
        "1",
        "-k",
        "latency",
        "-rs",
    )
    assert "quantkit latency gates (timed after the tests, serially)" in proc.stdout, proc.stdout[-3000:]
    timed = re.findall(r"latency gate (?:passed|FAILED|no gain): .*\[tiny/(\S+)/cpu/1t,", proc.stdout)
    assert sorted(timed) == ["dynamic", "static-qdq", "static-qoperator", "weights"], proc.stdout[-3000:]
    assert proc.stdout.count("timed by the xdist controller") == 4
    assert proc.returncode == (1 if "latency gate FAILED" in proc.stdout else 0), proc.stdout[-3000:]
    assert proc.returncode == (1 if "latency gate FAILED" in proc.stdout else 0)
