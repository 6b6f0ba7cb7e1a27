"""The quantkit pytest plugin (entry point ``pytest11``): options, parametrization, shared pipelines.

Options (declared in ``quantkit/options.py``; each also readable from ``[tool.quantkit]`` in the pyproject.toml of
the folder pytest runs in — else the rootdir's —, without the ``quantkit-`` prefix and with underscores, e.g.
``manifest = "fixtures/manifest.toml"``):

  --quantkit-manifest PATH        cases x configs x thresholds (default fixtures/manifest.toml)
  --quantkit-model PATH           one case without a manifest, with --quantkit-calib,
  --quantkit-calib DIR              --quantkit-coco-images, --quantkit-coco-ann, --quantkit-imgsz
  --quantkit-val-images DIR       unlabelled validation images (parity and agreement gates; default without
                                    annotations: images held out of --quantkit-calib with a fixed seed)
  --quantkit-preset NAME          run every case under this one preset (``naive`` shows the gates bite)
  --quantkit-config IDS           only these comma-separated config ids of the manifest
  --quantkit-ep EP                execution provider for accuracy and latency gates (default cpu)
  --quantkit-class-map FILE       class index -> category id or name for --quantkit-model (default: by class name)
  --quantkit-latency-threads N,M  intra-op thread counts the latency gate times at (default 1,2)
  --quantkit-undecided fail|skip  a gate whose interval holds its threshold (too little evidence): a failing test
                                    with "accuracy not decided: ..." (default), or a skip a team opts into
  --quantkit-save-baseline NAME   save this run's pytest-benchmark record (latency rounds with each pair's record
                                    in extra_info) as run NAME in pytest-benchmark's storage, only when it passes
  --quantkit-compare NAME         fail when INT8 mAP, parity, size or (same CPU class) latency regress against it
  --quantkit-results DIR          write one results file per (case, config, EP) under DIR/<onnxruntime>/
  --quantkit-cache-dir DIR        where quantized models are cached (default $QUANTKIT_CACHE or ~/.cache/quantkit)

Fixtures for gate tests: ``qk_pair`` (one case x config: pipeline, spec, thresholds, id) and
``qk_case`` (one case: pipeline, thresholds, id). The gate modules live in ``quantkit.suite``:
``pytest --pyargs quantkit.suite --quantkit-model my.onnx ...`` runs them from any repository.

Settings are checked before any test runs: a missing model, calibration folder or annotation file,
or classes that match no category, stop the session with one usage error (exit 4) naming the
option or manifest key to fix. Latency is timed serially: under pytest-xdist the workers defer it
and the controller times every deferred pair after the workers are done, failing the run if a gate
fails or a pair could not be timed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from . import compat, gates, options, progress
from .errors import QuantkitError
from .manifest import ConfigSpec, Manifest, load_manifest, single_case
from .options import DEFAULT_MANIFEST
from .pipeline import CasePipeline
from .cache import default_cache_dir
from .files import write_text_atomic

DEFAULT_LATENCY_THREADS = (1, 2)
LATENCY_REQUEST, NOTES = "quantkit_latency_request", "quantkit_notes"  # user_properties keys
UNDECIDED_ACTIONS = ("fail", "skip")
BASELINE_DIR = ".quantkit/baselines"


def pytest_addoption(parser):
    group = parser.getgroup("quantkit", "quantkit INT8 validation gates")
    for option in options.plugin_options():
        dest = "quantkit_" + option.name
        group.addoption(options.pytest_flag(option.name), dest=dest, default=None, help=option.pytest_help)
        parser.addini(dest, option.pytest_help, default=None)


def _pyproject_settings(config) -> dict:
    """``[tool.quantkit]`` of the invocation folder's pyproject.toml, else of the rootdir's."""
    path = next(
        (d / "pyproject.toml" for d in (_home(config), Path(config.rootpath)) if (d / "pyproject.toml").is_file()), None
    )
    if path is None:
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
        value = state(config).pyproject.get(name)
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
    home: Path  # the folder pytest was started in: the team's repository, where baselines are saved and read
    latency_threads: tuple[int, ...] = DEFAULT_LATENCY_THREADS
    undecided: str = "fail"


def _threads(value) -> tuple[int, ...]:
    if not value:
        return DEFAULT_LATENCY_THREADS
    try:
        threads = tuple(int(v) for v in (value if isinstance(value, list) else str(value).split(",")))
    except ValueError:
        threads = ()
    if not threads or min(threads) < 1:
        raise QuantkitError(f"--quantkit-latency-threads {value!r}: give positive thread counts such as 1,2")
    return threads


def _resolve(config) -> Settings:
    rootdir = Path(config.rootpath)
    get = lambda name: _setting(config, name)  # noqa: E731
    if get("model"):
        manifest = single_case(**{o.name: get(o.name) for o in options.plugin_options() if o.case})
    else:
        path = Path(get("manifest") or DEFAULT_MANIFEST)
        manifest = load_manifest(path if path.is_absolute() else rootdir / path)
    if get("config"):
        ids = get("config") if isinstance(get("config"), list) else str(get("config")).split(",")
        manifest = manifest.select_configs([i.strip() for i in ids])
    preset = get("preset")
    if preset:
        manifest = manifest.with_preset(preset)
    results, undecided = get("results"), get("undecided") or "fail"
    if undecided not in UNDECIDED_ACTIONS:
        raise QuantkitError(f"--quantkit-undecided {undecided!r}: choose {' or '.join(UNDECIDED_ACTIONS)}")
    return Settings(
        manifest,
        get("ep") or "cpu",
        Path(get("cache_dir") or default_cache_dir()),
        preset,
        get("save_baseline"),
        get("compare"),
        Path(results) if results else None,
        rootdir,
        _home(config),
        _threads(get("latency_threads")),
        undecided,
    )


def _fix(s: Settings, case, key: str) -> str:
    """Where the user fixes ``key`` of ``case``: a --quantkit-* option, or the manifest's key."""
    if s.manifest.path is None:
        return options.pytest_flag(key)
    return f"`{key}` of case '{case.id}' in {s.manifest.path}"


def validate(s: Settings, needs: set[str] = frozenset()) -> None:
    """Check every case's inputs before any test runs; raise QuantkitError naming what to fix.

    What is given must exist and load; ``needs`` ("calib"; "val": validation images of any kind — annotated,
    unlabelled, or held out of the calibration folder) must be given as well. The mAP gates ("coco") skip
    without annotations: agreement with FP32 judges accuracy then."""
    from .quantization.calibration import choose_files, split_folder
    from .measure.evaluate import coco_items, folder_items, model_hw, model_names
    from .measure.metrics import map_classes

    for case, specs in _cases_with_specs(s.manifest):
        if unsupported(case):  # its gates skip, saying why
            continue
        try:
            model_hw(case.model, case.imgsz)
        except QuantkitError as exc:
            raise QuantkitError(f"{exc} (fix {_fix(s, case, 'model')} or {_fix(s, case, 'imgsz')})") from None
        if case.calib or (any(_static(s, k) for k in specs) and "calib" in needs):
            if not case.calib:
                raise QuantkitError(
                    f"case '{case.id}': static quantization needs calibration images: pass {_fix(s, case, 'calib')}"
                )
            try:
                choose_files(case.calib)
            except QuantkitError as exc:
                raise QuantkitError(
                    f"{exc.args[0].split(':')[0]}: {case.calib}: fix {_fix(s, case, 'calib')}"
                ) from None
        if case.val_images:
            try:
                folder_items(case.val_images)
            except QuantkitError as exc:
                raise QuantkitError(f"case '{case.id}': {exc} (fix {_fix(s, case, 'val_images')})") from None
        unlabelled = case.val_images or (case.calib and split_folder(case.calib))
        if "val" in needs and not (case.coco_images or case.coco_ann or unlabelled):
            raise QuantkitError(
                f"case '{case.id}': the parity and agreement gates need validation images: pass "
                f"{_fix(s, case, 'val_images')} (any images, no annotations needed), "
                f"{_fix(s, case, 'calib')} with two or more images, or annotated images"
            )
        if case.coco_images or case.coco_ann:  # without both, the mAP gates skip: agreement judges accuracy
            missing = [k for k in ("coco_images", "coco_ann") if not getattr(case, k)]
            if missing:
                raise QuantkitError(
                    f"case '{case.id}': annotated images come in pairs: pass "
                    + " and ".join(_fix(s, case, k) for k in missing)
                    + " too (or neither: accuracy is then judged by agreement with FP32)"
                )
            try:
                coco, _ = coco_items(case.coco_ann, case.coco_images)
                map_classes(coco, model_names(case.model), case.class_map)
            except QuantkitError as exc:
                raise QuantkitError(
                    f"case '{case.id}': {exc} (fix {_fix(s, case, 'coco_ann')}, "
                    f"{_fix(s, case, 'coco_images')} or {_fix(s, case, 'class_map')})"
                ) from None


def unsupported(case) -> str | None:
    """Why the installed onnxruntime cannot run ``case`` (its manifest's ``onnxruntime`` minimum), or None."""
    if case.onnxruntime and compat.older_than(case.onnxruntime):
        return (
            f"case '{case.id}' needs onnxruntime >= {case.onnxruntime} (its model's opset); "
            f"{compat.ORT_VERSION} is installed"
        )
    return None


def _static(s: Settings, spec: ConfigSpec) -> bool:
    from .quantization.quantizer import resolve_config

    return resolve_config(s.preset or spec.preset, **({} if s.preset else spec.overrides)).mode == "static"


def _cases_with_specs(manifest: Manifest):
    pairs = manifest.pairs()
    return [(case, [k for c, k in pairs if c is case]) for case in manifest.cases]


def _explicit(config) -> bool:
    """True when any quantkit setting was given (command line, [tool.quantkit], ini)."""
    return any(
        config.getoption("quantkit_" + n) or state(config).pyproject.get(n) or config.getini("quantkit_" + n)
        for n in (o.name for o in options.plugin_options())
    )


@dataclass
class State:
    """Everything the plugin keeps for one pytest run, in one place: ``config.stash[STATE]``."""

    pyproject: dict  # [tool.quantkit] of pyproject.toml
    settings: Settings | None = None  # resolved on first use (``settings``)
    pipelines: dict = field(default_factory=dict)  # case id -> CasePipeline
    deferred: dict = field(
        default_factory=dict
    )  # latency requests deferred by xdist workers / benchmarks: id -> request
    notes: dict = field(default_factory=dict)  # pair id -> the quantizer's notes
    latency_lines: list = field(default_factory=list)  # the deferred latency gates' messages, for the summary
    baseline_lines: list = field(default_factory=list)  # whether the asked-for baseline was saved, and why not
    records: dict = field(default_factory=dict)  # pair id -> (results file name, record): made once per pair
    not_passed: int = 0  # tests that failed, or skipped as undecided: no baseline is saved from such a run


STATE = pytest.StashKey[State]()


def state(config) -> State:
    return config.stash[STATE]


def pytest_configure(config):
    for marker in (
        "slow: the longest checks",
        "gpu: needs a CUDA, TensorRT or DirectML execution provider",
        "benchmark: latency measurements",
        "quantkit_record: writes results/baselines; runs only with --quantkit-results/-save-baseline/-compare",
        "quantkit_needs(*inputs): the gate needs these case inputs ('calib', 'val', 'coco')",
        "quantkit_latency: a latency gate (timed last, serially)",
    ):
        config.addinivalue_line("markers", marker)
    config.stash[STATE] = State(_pyproject_settings(config))
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Collector(config), "quantkit-collector")
    if _explicit(config):  # given settings are checked now, before xdist starts workers
        try:
            validate(settings(config))
        except QuantkitError as exc:
            raise pytest.UsageError(f"quantkit: {exc}") from None


def settings(config) -> Settings:
    """The resolved settings, built on first use so a bad manifest fails only the gates that need it."""
    st = state(config)
    if st.settings is None:
        st.settings = _resolve(config)
    return st.settings


def pipeline(config, case) -> CasePipeline:
    s = settings(config)
    if case.id not in state(config).pipelines:
        state(config).pipelines[case.id] = CasePipeline(case, s.ep, s.cache_dir, preset=s.preset, progress=True)
    return state(config).pipelines[case.id]


class _PastCapture:
    """Where the gates' progress goes: stderr past pytest's capture, so a CI log says which case and config the
    suite is quantizing and how far a long step is (plain lines, ``quantkit.progress``), not dots alone."""

    def __init__(self, config):
        self.capture = config.pluginmanager.getplugin("capturemanager")

    def write(self, text: str) -> None:
        with self.capture.global_and_fixture_disabled() if self.capture else contextlib.nullcontext():
            sys.stderr.write(text)
            sys.stderr.flush()

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False  # plain lines: a bar would fight pytest's own output


@contextlib.contextmanager
def _progress_past_capture(config):
    """While a gate test runs, its pipeline's progress goes past pytest's capture (``_PastCapture``)."""
    previous, progress.STREAM = progress.STREAM, _PastCapture(config)
    try:
        yield
    finally:
        progress.STREAM = previous


@dataclass
class Pair:
    """One (case, config) gate target."""

    pipeline: CasePipeline
    spec: ConfigSpec
    thresholds: dict
    id: str
    undecided: str = "fail"

    def assert_passed(self, results) -> None:
        """Fail with every failed gate's numbers, and the quantizer's notes that may explain them; a gate not
        decided fails with "accuracy not decided: ..." (or skips, with ``--quantkit-undecided skip``). No result at
        all skips: none of the test's gates applies to the model's task (a classifier has no boxes, a detector no
        masks)."""
        if not results:
            pytest.skip(f"no gate of this test applies to {self.id} (task: {self.pipeline.task.name})")
        failed = gates.failures(results)
        if failed:
            notes = self.pipeline.quantized(self.spec).notes
            raise AssertionError("\n".join(failed + [f"quantizer note: {n}" for n in notes]))
        undecided = gates.undecided_lines(results)
        if undecided and self.undecided == "skip":
            pytest.skip("\n".join(undecided))
        if undecided:
            raise AssertionError("\n".join(undecided))

    def gate_results(self, *tags: str, **given) -> list[gates.GateResult]:
        """The pair's results of the registered gates carrying any of ``tags`` (``gates.select``); ``given``:
        measurements made here (timing, baseline)."""
        return self.pipeline.gate_results(self.spec, self.thresholds, self.id, *tags, given=given)


@dataclass
class CaseTarget:
    pipeline: CasePipeline
    thresholds: dict
    id: str

    def gate_results(self, *tags: str) -> list[gates.GateResult]:
        """The case's own gates (FP32, its images) carrying any of ``tags``."""
        return self.pipeline.gate_results(None, self.thresholds, self.id, *tags)


def pytest_generate_tests(metafunc):
    wants_pair, wants_case = "qk_pair" in metafunc.fixturenames, "qk_case" in metafunc.fixturenames
    if not (wants_pair or wants_case):
        return
    try:
        s = settings(metafunc.config)
    except QuantkitError as exc:
        raise pytest.UsageError(f"quantkit: {exc}") from None

    def marked(value, case, id_):
        marks = [getattr(pytest.mark, m) for m in case.marks]
        if unsupported(case):
            marks.append(pytest.mark.skip(reason=unsupported(case)))
        return pytest.param(value, marks=marks, id=id_)

    if wants_pair:
        params = [marked((c, k), c, f"{c.id}/{k.id}/{s.ep}") for c, k in s.manifest.pairs()]
        metafunc.parametrize("qk_pair", params, indirect=True)
    else:
        metafunc.parametrize("qk_case", [marked(c, c, f"{c.id}/{s.ep}") for c in s.manifest.cases], indirect=True)


@pytest.fixture
def qk_pair(request) -> Iterator[Pair]:
    case, spec = request.param
    s = settings(request.config)
    with _progress_past_capture(request.config):
        pipe = pipeline(request.config, case)
        th = s.manifest.thresholds_for(case, spec, pipe.task.name)
        yield Pair(pipe, spec, th, f"{case.id}/{spec.id}/{s.ep}", s.undecided)


@pytest.fixture
def qk_case(request) -> Iterator[CaseTarget]:
    case = request.param
    s = settings(request.config)
    with _progress_past_capture(request.config):
        pipe = pipeline(request.config, case)
        yield CaseTarget(pipe, s.manifest.thresholds_for(case, task=pipe.task.name), f"{case.id}/{s.ep}")


@pytest.fixture
def qk_settings(request) -> Settings:
    return settings(request.config)


@pytest.hookimpl(trylast=True)  # after -k / -m deselection
def pytest_collection_modifyitems(config, items):
    """Baseline/results tests run only when asked for (--quantkit-save-baseline/-compare/-results);
    latency gates run last; the selected gates' inputs are checked before any of them runs."""
    wanted = any(_setting(config, n) for n in ("save_baseline", "compare", "results"))
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("quantkit_record") and not wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = sorted(keep, key=lambda item: bool(item.get_closest_marker("quantkit_latency")))
    gates_selected = [item for item in items if {"qk_pair", "qk_case"} & set(getattr(item, "fixturenames", ()))]
    if gates_selected:
        needs = {need for item in gates_selected for mark in item.iter_markers("quantkit_needs") for need in mark.args}
        if any(
            _static(settings(config), item.callspec.params["qk_pair"][1])
            for item in gates_selected
            if "qk_pair" in getattr(getattr(item, "callspec", None), "params", {})
        ):
            needs.add("calib")
        try:
            validate(settings(config), needs)
        except QuantkitError as exc:
            raise pytest.UsageError(f"quantkit: {exc}") from None


class _Collector:
    """Gathers, on the controller (or in a serial run), what workers and benchmarks left for the end."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        st = state(self.config)
        st.not_passed += report.failed or (report.skipped and "accuracy not decided" in str(report.longrepr))
        for key, value in report.user_properties:
            if key == LATENCY_REQUEST:
                st.deferred[value["id"]] = value
            elif key == NOTES and value["notes"]:
                st.notes[value["id"]] = value["notes"]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Time the deferred latency pairs serially, now that no test shares the CPU (fail closed); then save the
    baseline asked for, only when the whole run passed."""
    config = session.config
    if hasattr(config, "workerinput"):
        return
    _time_deferred(session)
    _save_baseline(session)


def _save_baseline(session) -> None:
    """``--quantkit-save-baseline NAME``: this run's pytest-benchmark record (the latency rounds, each pair's record in
    their ``extra_info``) saved as run NAME in pytest-benchmark's storage — only when every test passed. Otherwise
    nothing is written, the summary says why and the run ends non-zero (a baseline from a failing or undecided run
    would let every later run pass against it)."""
    config, st = session.config, state(session.config)
    name = _setting(config, "save_baseline")
    if not name:
        return
    bs = getattr(config, "_benchmarksession", None)
    ours = [b for b in (bs.benchmarks if bs else []) if b and b.fullname.startswith(BENCHMARK_PREFIX)]
    if session.exitstatus != 0 or st.not_passed:
        why = f"{st.not_passed or 'some'} tests failed or were not decided"
    elif not ours:
        why = (
            "no latency gate recorded its rounds (deselected, or pytest-benchmark disabled: under xdist or "
            "--benchmark-disable; save without -n)"
        )
    else:
        commit_info = config.hook.pytest_benchmark_generate_commit_info(config=config)
        config.hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
        output = config.hook.pytest_benchmark_generate_json(
            config=config,
            benchmarks=bs.benchmarks,
            include_data=True,
            machine_info=bs.get_machine_info(),
            commit_info=commit_info,
        )
        config.hook.pytest_benchmark_update_json(config=config, benchmarks=bs.benchmarks, output_json=output)
        bs.storage.save(output, name)
        st.baseline_lines.append(f"baseline '{name}' saved: {len(ours)} latency records in {bs.storage}")
        return
    st.baseline_lines.append(f"baseline '{name}' NOT saved: {why}; a baseline is saved only from a passing run")
    if session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def load_baseline(config, name: str) -> tuple[dict, str]:
    """Baseline ``name``'s records by (case, config, EP) and where they came from: the newest pytest-benchmark run
    saved as ``name`` (``--quantkit-save-baseline``), the record of each pair's fewest-threads INT8 latency
    benchmark; or, where a team committed one, an older ``.quantkit/baselines/<name>/`` folder of JSON files."""
    legacy = baseline_dir(settings(config), name)
    if legacy.is_dir():
        records = [json.loads(p.read_text()) for p in sorted(legacy.glob("*.json"))]
        return {(r["case"], r["config"], r["ep"]): r for r in records}, str(legacy)
    bs = getattr(config, "_benchmarksession", None)
    runs = sorted(bs.storage.path.glob(f"*/[0-9][0-9][0-9][0-9]_{name}.json"), key=lambda p: p.name) if bs else []
    if not runs:
        return {}, f"{bs.storage if bs else 'pytest-benchmark storage'} (no run saved as '{name}')"
    records: dict = {}
    for bench in json.loads(runs[-1].read_text())["benchmarks"]:
        record = (bench.get("extra_info") or {}).get("quantkit_record")
        if record and bench["name"].endswith("/int8"):
            key = (record["case"], record["config"], record["ep"])
            if key not in records or record["latency"]["threads"] < records[key]["latency"]["threads"]:
                records[key] = record
    return records, str(runs[-1])


def _time_deferred(session) -> None:
    config = session.config
    if not state(config).deferred:
        return
    s = settings(config)
    cases = {c.id: c for c in s.manifest.cases}
    failed = False
    for request in sorted(state(config).deferred.values(), key=lambda r: r["id"]):
        try:
            case = cases[request["case"]]
            spec = s.manifest.spec(request["config"]) if not s.preset else s.manifest.configs[0]
            ep = request.get("ep", s.ep)
            pipe = pipeline(config, case) if ep == s.ep else CasePipeline(case, ep, s.cache_dir, preset=s.preset)
            th = s.manifest.thresholds_for(case, spec, pipe.task.name)
            result, _ = pipe.latency_gate(spec, request["threads"], th, request["id"])
            line = result.message()
            failed |= not result.passed
        except Exception as exc:  # noqa: BLE001 - an untimed pair is a failure, never a silent pass
            line = f"latency gate FAILED: {request['id']} could not be timed ({type(exc).__name__}: {exc})"
            failed = True
        state(config).latency_lines.append(line)
    if failed and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    for title, lines in (
        ("quantkit latency gates (timed after the tests, serially)", state(config).latency_lines),
        ("quantkit baseline", state(config).baseline_lines),
    ):
        if lines:
            terminalreporter.write_sep("-", title)
            for line in lines:
                terminalreporter.write_line(line, red="FAILED" in line or "NOT saved" in line)
    if state(config).notes:
        terminalreporter.write_sep("-", "quantkit: what the quantizer noted")
        for pair_id, notes in sorted(state(config).notes.items()):
            for note in notes:
                terminalreporter.write_line(f"{pair_id}: {note}")


BENCHMARK_PREFIX = "quantkit.suite::"  # the fullname of every latency record: stable across installs and runners


def record_latency(benchmark, pair: Pair, gate_id: str, result: gates.GateResult, measured: dict) -> None:
    """The rounds the latency gate judged, as two pytest-benchmark benchmarks named ``<gate_id>/fp32`` and
    ``<gate_id>/int8`` (grouped as ``gate_id``), each with the pair's record in ``extra_info``: sizes, parity,
    agreement with its interval, annotated mAP where measured, the pair's verdict, CPU class and versions.

    pytest-benchmark has no public call that records rounds timed elsewhere (interleaved here, which its own
    timing cannot do); ``_make_stats`` is the fixture's own step after timing, in every release since 3.x."""
    benchmark._mode = "quantkit: rounds timed interleaved by the latency gate"  # used, though not by its own timer
    if not benchmark.enabled:
        return
    from . import __version__
    from .cpu import fingerprint

    p, spec = pair.pipeline, pair.spec
    threads = measured["threads"]
    judged = p.gate_results(spec, pair.thresholds, pair.id, "size", "accuracy") + [result]
    failed, open_ = sorted({r.gate for r in judged if r.failed}), sorted({r.gate for r in gates.undecided(judged)})
    verdict = f"FAIL: {', '.join(failed)}" if failed else f"not decided: {', '.join(open_)}" if open_ else "pass"
    record = {
        **p.record(spec),
        "latency": {k: v for k, v in measured.items() if k != "samples"},
        "machine": fingerprint(threads),
        "quantkit": __version__,
        "verdict": verdict,
    }
    benchmark.group = gate_id
    for precision in ("fp32", "int8"):
        benchmark.name = f"{gate_id}/{precision}"
        benchmark.fullname = BENCHMARK_PREFIX + benchmark.name
        benchmark.extra_info = {"precision": precision, "quantkit_record": record}
        stats = benchmark._make_stats(1)
        for seconds in measured["samples"][precision]:
            stats.update(seconds)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    """What decides INT8 speed, in every saved run: onnxruntime, its EPs, the CPU's INT8 flags and class."""
    from .cpu import cpu_class, cpu_info
    from .measure.session import available_eps

    info = cpu_info()
    machine_info["quantkit"] = {
        "onnxruntime": compat.ORT_VERSION,
        "onnx": compat.ONNX_VERSION,
        "providers": compat.available_providers(),
        "eps": available_eps(),
        "cpu_brand": info["brand"],
        "cpu_int8_flags": info["flags"],
        "cpu_class": cpu_class(),
    }


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark):
    """Latency compares only within one CPU class: a stored run's quantkit records from another class are left
    out of the comparison (and ``--benchmark-compare-fail``), with a warning that says so."""
    then = (compared_benchmark.get("machine_info") or {}).get("quantkit", {}).get("cpu_class")
    now = machine_info.get("quantkit", {}).get("cpu_class")
    if then == now:
        return
    stored = compared_benchmark["benchmarks"]
    kept = [b for b in stored if not b["fullname"].startswith(BENCHMARK_PREFIX)]
    if len(kept) < len(stored):
        benchmarksession.logger.warning(
            f"quantkit: {len(stored) - len(kept)} latency records of the stored run were timed on CPU class "
            f"{then!r}, this run on {now!r}: not compared (latency compares only within one CPU class; save a "
            "run on this class)"
        )
        stored[:] = kept


def write_json(path: Path, data: dict) -> None:
    """Atomic JSON write (safe when several workers write side by side)."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def _home(config) -> Path:
    """The folder pytest was started in: never the installed package's (``--pyargs quantkit.suite`` can make
    pytest's rootdir the quantkit checkout or site-packages)."""
    return Path(config.invocation_params.dir)


def baseline_dir(s: Settings, name: str) -> Path:
    """Where an older baseline ``name`` was committed: ``.quantkit/baselines/<name>`` in the folder pytest was
    started in (read by ``load_baseline``; new baselines are pytest-benchmark runs)."""
    return s.home / BASELINE_DIR / name


def results_dir(s: Settings) -> Path:
    return s.results / compat.ORT_VERSION
