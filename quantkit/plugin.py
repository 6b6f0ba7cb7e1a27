"""The quantkit pytest plugin (entry point ``pytest11``): options, parametrization, shared pipelines.

Options (each also readable from ``[tool.quantkit]`` in the rootdir's pyproject.toml, without the
``quantkit-`` prefix and with underscores, e.g. ``manifest = "fixtures/manifest.toml"``):

  --quantkit-manifest PATH        cases x configs x thresholds (default fixtures/manifest.toml)
  --quantkit-model PATH           one case without a manifest, with --quantkit-calib,
  --quantkit-calib DIR              --quantkit-coco-images, --quantkit-coco-ann, --quantkit-imgsz
  --quantkit-preset NAME          run every case under this one preset (``naive`` shows the gates bite)
  --quantkit-config IDS           only these comma-separated config ids of the manifest
  --quantkit-ep EP                execution provider for accuracy gates (default cpu)
  --quantkit-save-baseline NAME   store this run's metrics as a named baseline
  --quantkit-compare NAME         fail when INT8 mAP, parity or size regress against that baseline
  --quantkit-results DIR          write one results file per (case, config, EP) under DIR/<onnxruntime>/
  --quantkit-cache-dir DIR        where quantized models are cached (default $QUANTKIT_CACHE or ~/.cache/quantkit)

Fixtures for gate tests: ``qk_pair`` (one case x config: pipeline, spec, thresholds, id) and
``qk_case`` (one case: pipeline, thresholds, id). The gate modules live in ``quantkit.suite``:
``pytest --pyargs quantkit.suite --quantkit-model my.onnx ...`` runs them from any repository.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import compat
from .errors import QuantkitError
from .manifest import ConfigSpec, Manifest, load_manifest, single_case
from .pipeline import CasePipeline
from .session import default_cache_dir
from .report import write_text_atomic

OPTIONS = ("manifest", "model", "calib", "coco_images", "coco_ann", "imgsz", "preset", "config", "ep", "save_baseline",
           "compare", "results", "cache_dir")
DEFAULT_MANIFEST = "fixtures/manifest.toml"
BASELINE_DIR = ".quantkit/baselines"


def pytest_addoption(parser):
    group = parser.getgroup("quantkit", "quantkit INT8 validation gates")
    helps = {
        "manifest": f"manifest TOML of cases x configs x thresholds (default {DEFAULT_MANIFEST})",
        "model": "an FP32 ONNX model to gate, instead of a manifest",
        "calib": "calibration image folder for --quantkit-model",
        "coco_images": "evaluation image folder for --quantkit-model",
        "coco_ann": "COCO instances JSON for --quantkit-model",
        "imgsz": "input size 'H' or 'H,W' for --quantkit-model with dynamic axes",
        "preset": "run every case under this one preset instead of the manifest's configs (e.g. naive)",
        "config": "comma-separated config ids to run (default: all of the manifest's)",
        "ep": "execution provider for the accuracy gates (cpu, cuda, tensorrt, openvino, dml)",
        "save_baseline": "save this run's metrics as baseline NAME",
        "compare": "compare against baseline NAME and fail on regressions",
        "results": "write per-(case, config) results files under DIR/<onnxruntime version>/",
        "cache_dir": "where quantized models are cached (default $QUANTKIT_CACHE or ~/.cache/quantkit)",
    }
    for name in OPTIONS:
        group.addoption("--quantkit-" + name.replace("_", "-"), dest="quantkit_" + name, default=None, help=helps[name])
        parser.addini("quantkit_" + name, helps[name], default=None)


def _pyproject_settings(rootdir: Path) -> dict:
    path = rootdir / "pyproject.toml"
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("quantkit", {})


def _setting(config, name: str):
    """Command line, then [tool.quantkit] in pyproject.toml, then the pytest ini file."""
    value = config.getoption("quantkit_" + name)
    if value is None:
        value = config._quantkit_pyproject.get(name)
    if value is None:
        value = config.getini("quantkit_" + name)
    return value or None


@dataclass
class Settings:
    manifest: Manifest
    ep: str
    cache_dir: Path
    preset: str | None
    save_baseline: str | None
    compare: str | None
    results: Path | None
    rootdir: Path


def _resolve(config) -> Settings:
    rootdir = Path(config.rootpath)
    get = lambda name: _setting(config, name)  # noqa: E731
    if get("model"):
        manifest = single_case(get("model"), get("calib"), get("coco_images"), get("coco_ann"), get("imgsz"))
    else:
        path = Path(get("manifest") or DEFAULT_MANIFEST)
        manifest = load_manifest(path if path.is_absolute() else rootdir / path)
    if get("config"):
        ids = get("config") if isinstance(get("config"), list) else str(get("config")).split(",")
        manifest = manifest.select_configs([i.strip() for i in ids])
    preset = get("preset")
    if preset:
        manifest = manifest.with_preset(preset)
    results = get("results")
    return Settings(manifest, get("ep") or "cpu", Path(get("cache_dir") or default_cache_dir()), preset,
                    get("save_baseline"), get("compare"), Path(results) if results else None, rootdir)


def pytest_configure(config):
    for marker in ("slow: the longest checks", "gpu: needs a CUDA, TensorRT or DirectML execution provider",
                   "benchmark: latency measurements",
                   "quantkit_record: writes results/baselines; runs only with --quantkit-results/-save-baseline/-compare"):
        config.addinivalue_line("markers", marker)
    config._quantkit_pyproject = _pyproject_settings(Path(config.rootpath))
    config._quantkit = None
    config._quantkit_pipelines = {}


def settings(config) -> Settings:
    """The resolved settings, built on first use so a bad manifest fails only the gates that need it."""
    if config._quantkit is None:
        config._quantkit = _resolve(config)
    return config._quantkit


def pipeline(config, case) -> CasePipeline:
    s = settings(config)
    if case.id not in config._quantkit_pipelines:
        config._quantkit_pipelines[case.id] = CasePipeline(case, s.ep, s.cache_dir, preset=s.preset)
    return config._quantkit_pipelines[case.id]


@dataclass
class Pair:
    """One (case, config) gate target."""

    pipeline: CasePipeline
    spec: ConfigSpec
    thresholds: dict
    id: str


@dataclass
class CaseTarget:
    pipeline: CasePipeline
    thresholds: dict
    id: str


def pytest_generate_tests(metafunc):
    wants_pair, wants_case = "qk_pair" in metafunc.fixturenames, "qk_case" in metafunc.fixturenames
    if not (wants_pair or wants_case):
        return
    try:
        s = settings(metafunc.config)
    except QuantkitError as exc:
        raise pytest.UsageError(f"quantkit: {exc}") from None
    if wants_pair:
        pairs = s.manifest.pairs()
        metafunc.parametrize("qk_pair", pairs, ids=[f"{c.id}/{k.id}/{s.ep}" for c, k in pairs], indirect=True)
    else:
        metafunc.parametrize("qk_case", s.manifest.cases, ids=[f"{c.id}/{s.ep}" for c in s.manifest.cases], indirect=True)


@pytest.fixture
def qk_pair(request) -> Pair:
    case, spec = request.param
    s = settings(request.config)
    return Pair(pipeline(request.config, case), spec, s.manifest.thresholds_for(case, spec), f"{case.id}/{spec.id}/{s.ep}")


@pytest.fixture
def qk_case(request) -> CaseTarget:
    case = request.param
    s = settings(request.config)
    return CaseTarget(pipeline(request.config, case), s.manifest.thresholds_for(case), f"{case.id}/{s.ep}")


@pytest.fixture
def qk_settings(request) -> Settings:
    return settings(request.config)


def pytest_collection_modifyitems(config, items):
    """Baseline/results tests run only when asked for (--quantkit-save-baseline/-compare/-results)."""
    wanted = any(_setting(config, n) for n in ("save_baseline", "compare", "results"))
    if wanted:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("quantkit_record") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def write_json(path: Path, data: dict) -> None:
    """Atomic JSON write (safe when several workers write side by side)."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def baseline_dir(s: Settings, name: str) -> Path:
    return s.rootdir / BASELINE_DIR / name


def results_dir(s: Settings) -> Path:
    return s.results / compat.ORT_VERSION
