"""Fixtures of the unit tests (the gate suite's fixtures come from quantkit.plugin).

Catalogue:
  tiny_model       path to a tiny YOLOv8-shaped detector (32x32, fixed dims), fresh per test
  tiny_dynamic     the same with dynamic batch/H/W axes and no metadata
  calib_dir        a folder of six small random JPEGs
  fixture_case     the first case of fixtures/manifest.toml (the trained 192x320 shapes model)
  fixture_pipeline the plugin's CasePipeline for fixture_case (each model quantized and evaluated once)
  run_cli          run `quantkit ...` in this process (cli.main): (exit code, stdout, stderr), stderr read at
                   the file descriptor, so onnxruntime's own C++ lines count too
  run_cli_process  the same through `python -m quantkit` in a subprocess (entry point, signals, start-up time)
  run_suite        run the gate suite (`pytest --pyargs quantkit.suite`) in a nested session: CompletedProcess
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import graphs
from quantkit.manifest import load_manifest
from quantkit import cli, plugin

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "fixtures" / "manifest.toml"


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    return Path(graphs.save(graphs.tiny_yolo(), tmp_path / "tiny.onnx"))


@pytest.fixture
def tiny_dynamic(tmp_path) -> Path:
    return Path(graphs.save(graphs.tiny_yolo(dynamic=True), tmp_path / "tiny_dynamic.onnx"))


@pytest.fixture
def calib_dir(tmp_path) -> Path:
    return Path(graphs.write_images(tmp_path / "calib"))


@pytest.fixture(scope="session")
def fixture_case():
    return load_manifest(MANIFEST).cases[0]


@pytest.fixture(scope="session")
def fixture_pipeline(request, fixture_case):
    """The plugin's own pipeline for the case, so the gate suite and these tests evaluate each model once."""
    return plugin.pipeline(request.config, fixture_case)


@pytest.fixture
def run_cli(capfd, monkeypatch):
    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capfd.readouterr()
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own exits (usage errors, --version)
            code = exc.code
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.fixture
def run_cli_process():
    def run(*args, cwd=None):
        proc = subprocess.run(
            [sys.executable, "-m", "quantkit", *map(str, args)], capture_output=True, text=True, cwd=cwd
        )
        return proc.returncode, proc.stdout, proc.stderr

    return run


@pytest.fixture
def run_suite():
    """The gate suite in a nested pytest session rooted at ``rootdir`` (this repo's addopts left out)."""

    def run(rootdir, *args, env: dict | None = None):
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "quantkit.suite",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={rootdir}",
            "-o",
            "addopts=",
            *map(str, args),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=rootdir, env={**os.environ, **(env or {})})

    return run
