"""The plugin's own behaviour in nested pytest sessions: settings checked before any test runs,
and latency timed serially by the xdist controller."""

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import graphs

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.mark.slow  # builds quantkit and runs two nested sessions: `pytest -m slow` (CI runs it)
@pytest.mark.parametrize("install", ["editable", "regular"])
def test_the_record_lands_in_the_folder_pytest_runs_in(install, fixture_case, tmp_path):
    """A team's repository with its own pytest.ini runs `pytest --pyargs quantkit.suite ...`: the baseline (a
    pytest-benchmark run) is written there and read back from there (not beside the installed package, whatever
    pytest takes as rootdir), with quantkit from this
    checkout as installed (editable) or from a regular, non-editable build of it on the path first."""
    repo, env = tmp_path / "team-repo", dict(os.environ)
    repo.mkdir()
    (repo / "pytest.ini").write_text("[pytest]\naddopts = -q\n")
    python = [sys.executable]
    if install == "regular":  # quantkit built into a plain folder; -S skips the .pth of the editable install
        site = tmp_path / "site"
        build = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(ROOT)]
        subprocess.run(build, check=True, capture_output=True)
        env["PYTHONPATH"] = os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])
        python.append("-S")
        where = [*python, "-c", "import quantkit.plugin; print(quantkit.plugin.__file__)"]
        assert subprocess.run(where, cwd=repo, env=env, capture_output=True, text=True).stdout.startswith(str(site))
    args = [
        "--quantkit-model",
        fixture_case.model,
        "--quantkit-calib",
        fixture_case.calib,
        "--quantkit-latency-threads",
        1,
    ]
    args += ["-k", "(record or latency) and static-qdq"]
    cmd = [*python, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "quantkit.suite", *map(str, args)]
    proc = subprocess.run([*cmd, "--quantkit-save-baseline", "main"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert len(list((repo / ".benchmarks").glob("*/0001_main.json"))) == 1  # pytest-benchmark's storage, in the repo
    assert not list(ROOT.glob(".benchmarks/*/*_main.json")) and not (ROOT / ".quantkit").exists()
    compared = subprocess.run([*cmd, "--quantkit-compare", "main"], cwd=repo, env=env, capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout[-3000:]


@pytest.mark.slow  # a nested pytest session: `pytest -m slow` (CI runs it)
def test_the_suite_says_which_case_and_config_it_quantizes(tmp_path, calib_dir, run_suite):
    """Past pytest's capture, in a quiet run: the (case, config) being quantized, and its long steps' progress."""
    model = graphs.save(graphs.tiny_yolo(metadata={"names": "{0: 'a', 1: 'b'}"}), tmp_path / "tiny.onnx")
    env_cache = {"QUANTKIT_CACHE": str(tmp_path / "cache")}
    proc = run_suite(
        tmp_path, "--quantkit-model", model, "--quantkit-calib", calib_dir, "-k", "compression", env=env_cache
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("quantkit: ")]
    assert "quantkit: tiny/static-qdq: quantizing (static, preset default)" in lines, proc.stderr[-2000:]
    assert any("quantize_static of tiny.onnx done" in line for line in lines)
