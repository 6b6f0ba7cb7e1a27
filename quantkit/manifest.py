"""The manifest: model cases x quantization configs x thresholds, read from TOML.

``THRESHOLDS`` is the one table of thresholds: each gate's declared ones (``quantkit/gates/``: the EPs' latency
keys and the tasks' gates among them) and POLICY below, with their defaults. A manifest may override any
entry globally (``[thresholds]``), per case (``[case.thresholds]``) or per config
(``[config.thresholds]``); later levels win. Paths in a manifest are relative to the manifest.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import gates
from .errors import ManifestError
from .gates import Threshold

DEFAULT_CALIB_COUNT = 100  # calibration images drawn from a folder (seeded), like the seed's 100 of 600

# The thresholds that are no gate's own: how gates decide and time, what `check`, `tune` and `history` flag.
POLICY: tuple[Threshold, ...] = (
    Threshold(
        "decision_level",
        0.95,
        "two-sided level of every accuracy gate's per-image bootstrap interval: pass when all of it clears the "
        "threshold, fail when none does, not decided in between ([the decision rule](#the-decision-rule))",
    ),
    Threshold(
        "map_drop_gate_upper",
        0,
        "superseded by `decision_level`, kept so older manifests load: the drop is decided from its interval either "
        "way",
    ),
    Threshold(
        "latency_rounds",
        30,
        "timing policy: rounds of one interleaved FP32/INT8 run (gates, baselines, `check`'s table)",
    ),
    Threshold(
        "latency_retry_rounds",
        60,
        "timing policy: a ratio over its gate is timed once more with this many rounds, and that run decides",
    ),
    Threshold("layer_rounds", 20, "`quantkit tune`'s per-Conv timing: rounds of each of its two interleaved runs"),
    Threshold(
        "layer_float_margin",
        0.0,
        "`quantkit tune` keeps a Conv float for speed only when INT8 is slower by more than this and than the two runs'"
        " spread",
    ),
    Threshold("history_map_drop_change_pt", 0.5, "`quantkit history` flag: mAP drop moved by more than this"),
    Threshold(
        "history_latency_ratio_change", 0.2, "`quantkit history` flag: latency ratio moved by more than this fraction"
    ),
    Threshold(
        "history_compression_change", 0.02, "`quantkit history` flag: compression moved by more than this fraction"
    ),
    Threshold(
        "same_speed_ratio",
        1.05,
        'verdict wording: a size-only row within this of FP32\'s latency reads "the same speed", not "slower"',
    ),
    Threshold(
        "max_other_load_per_core",
        0.5,
        "`check` flags 'deploy ms' and throughput as unreliable when other processes' load per core exceeds this",
    ),
)


@functools.cache
def declared() -> tuple[Threshold, ...]:
    """Every key of the threshold table: the gates' (``gates.thresholds``, the EPs' latency keys among them), then
    POLICY. Read on first use, so that gates declared by ``quantkit.tasks`` are in (``gates.registry``)."""
    table = gates.thresholds() + POLICY
    keys = [t.key for t in table]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"threshold(s) {twice} declared twice: by a gate and in POLICY")
    return table


def threshold_table() -> str:
    """docs/thresholds.md's table of every threshold, its default and why, built from ``declared``."""
    rows = [f"| `{t.key}` | {t.default!r} | {t.why} |" for t in declared()]
    return "\n".join(["| threshold | default | gate |", "|---|---|---|", *rows])


def __getattr__(name: str):
    """``THRESHOLDS``: every key of ``declared`` with its default, built when first read."""
    if name == "THRESHOLDS":
        return _defaults()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _defaults() -> dict[str, float]:
    return {t.key: t.default for t in declared()}


DEFAULT_CONFIGS = (
    {"id": "static-qdq", "preset": "default"},
    {"id": "static-qoperator", "preset": "qoperator"},
    {"id": "weights", "preset": "weights", "size_only": True},
    {"id": "dynamic", "preset": "dynamic", "size_only": True},
)
CONFIG_KEYS = {
    "format",
    "per_channel",
    "reduce_range",
    "activation_type",
    "weight_type",
    "calibrate_method",
    "keep_head_float",
    "preprocess",
    "exclude",
    "op_types",
    "mode",
    "target_cpu",
    "quantize_only",
}


@dataclass
class Case:
    """One model with its calibration images and annotated evaluation set."""

    id: str
    model: Path
    calib: Path | None = None
    coco_images: Path | None = None
    coco_ann: Path | None = None
    imgsz: tuple[int, ...] | None = None
    thresholds: dict = field(default_factory=dict)
    configs: tuple[str, ...] | None = None  # config ids to run on this case (None: all)
    class_map: dict | list | None = None  # class index -> category id or name (None: match by class name)
    conf: float = 0.25  # the deployed operating point: confidence threshold ...
    iou: float = 0.7  # ... and NMS IoU, where precision, recall and F1 are reported and gated
    nms: str = "best_class"  # candidate decoding: best_class or multi_label (as `yolo val`), see heads/boxes.py
    val_images: Path | None = None  # unlabelled validation images (without them and annotations: held out of calib)
    task: str | None = None  # a task of quantkit/tasks/: checked against the model's head (None: taken from it)
    marks: tuple[str, ...] = ()  # pytest markers on every gate of this case, e.g. ("slow",) for a long one
    calib_count: int = DEFAULT_CALIB_COUNT  # calibration images drawn from calib (seeded); the rest may validate
    onnxruntime: str | None = (
        None  # the oldest onnxruntime that loads the case's model (e.g. "1.20"): older ones skip it
    )


@dataclass
class ConfigSpec:
    """A named quantization recipe: a preset plus QuantConfig overrides."""

    id: str
    preset: str = "default"
    overrides: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    size_only: bool = False  # buys size, not speed: its latency is capped and reported "no gain", never "pass"


@dataclass
class Manifest:
    cases: list[Case]
    configs: list[ConfigSpec]
    thresholds: dict = field(default_factory=dict)
    path: Path | None = None

    def pairs(self) -> list[tuple[Case, ConfigSpec]]:
        """Every (case, config) to run, honouring each case's explicit config list."""
        return [(c, k) for c in self.cases for k in self.configs if c.configs is None or k.id in c.configs]

    def thresholds_for(self, case: Case, config: ConfigSpec | None = None, task: str | None = None) -> dict:
        """The table's defaults, then ``task``'s own (``Task.defaults``: an oriented-box model's agreement), the
        manifest's, the case's and the config's; later levels win."""
        from .tasks import get

        defaults = _defaults()
        own = get(task or case.task).defaults
        merged = {**defaults, **own, **self.thresholds, **case.thresholds, **(config.thresholds if config else {})}
        unknown = set(merged) - set(defaults)
        if unknown:
            raise ManifestError(f"unknown threshold(s) {sorted(unknown)}: known are {sorted(defaults)}")
        return merged

    def with_preset(self, preset: str) -> "Manifest":
        """Every case under one config that is exactly ``preset`` (e.g. 'naive' to show the gates bite);
        the manifest's own configs, their thresholds and the cases' config lists are set aside."""
        cases = [Case(**{**c.__dict__, "configs": None}) for c in self.cases]
        return Manifest(
            cases, [ConfigSpec(preset, preset, size_only=preset in ("dynamic", "weights"))], self.thresholds, self.path
        )

    def select_configs(self, ids: list[str]) -> "Manifest":
        """Only the configs named in ``ids``."""
        unknown = sorted(set(ids) - {k.id for k in self.configs})
        if unknown:
            raise ManifestError(f"unknown config id(s) {unknown}: the manifest has {[k.id for k in self.configs]}")
        cases = [
            Case(**{**c.__dict__, "configs": tuple(k for k in (c.configs or ids) if k in ids)}) for c in self.cases
        ]
        return Manifest(cases, [k for k in self.configs if k.id in ids], self.thresholds, self.path)

    def spec(self, config_id: str) -> ConfigSpec | None:
        return next((k for k in self.configs if k.id == config_id), None)


def parse_imgsz(value) -> tuple[int, int] | None:
    """640, [640], [192, 320], "192,320" or "192x320" -> (H, W); None stays None."""
    if value is None or value == "":
        return None
    parts = value if isinstance(value, (list, tuple)) else str(value).replace("x", ",").split(",")
    try:
        dims = [int(v) for v in ([parts] if isinstance(parts, int) else parts)]
    except (TypeError, ValueError):
        dims = []
    if len(dims) not in (1, 2) or min(dims) <= 0:
        raise ManifestError(f"imgsz {value!r} is not a size: write H, [H, W] or 'H,W'")
    return dims[0], dims[-1]


def _unique(ids: list[str], what: str, path) -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ManifestError(f"{path}: duplicate {what} id(s) {duplicates}: give each {what} its own id")


def _config_specs(raw: list[dict]) -> list[ConfigSpec]:
    specs = []
    for entry in raw:
        entry = dict(entry)
        if "id" not in entry:
            raise ManifestError(f"a [[config]] entry has no id: {entry}")
        cid, preset, thresholds = entry.pop("id"), entry.pop("preset", "default"), entry.pop("thresholds", {})
        size_only = entry.pop("size_only", False)
        unknown = set(entry) - CONFIG_KEYS
        if unknown:
            raise ManifestError(
                f"config '{cid}': unknown key(s) {sorted(unknown)}: known are "
                f"{sorted(CONFIG_KEYS | {'size_only', 'thresholds'})}"
            )
        if not isinstance(size_only, bool):
            raise ManifestError(f"config '{cid}': size_only must be true or false, got {size_only!r}")
        specs.append(ConfigSpec(cid, preset, entry, thresholds, size_only))
    return specs


def load_class_map(value, base: Path | None = None):
    """A class map given inline (table or list) or as a JSON/TOML file of class index -> category id or name."""
    if value is None or isinstance(value, (dict, list)):
        return value
    path = Path(value) if base is None else (base / value)
    if not path.is_file():
        raise ManifestError(
            f"class map file not found: {path}: pass a JSON or TOML file of class index -> category id or name"
        )
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(
            f"class map {path} is not valid {path.suffix.lstrip('.').upper() or 'TOML'} ({exc}): fix the file"
        ) from None
    if not isinstance(data, (dict, list)) or not data:
        raise ManifestError(f'class map {path} holds no mapping: write {{"0": 1, "1": "person"}} (index -> id or name)')
    try:
        return {int(k): v for k, v in data.items()} if isinstance(data, dict) else data
    except ValueError:
        raise ManifestError(
            f"class map {path}: keys must be class indices (0, 1, ...), got {sorted(data)[:5]}"
        ) from None


def _operating_point(entry: dict) -> dict:
    """A case's conf, iou (numbers in [0, 1]) and nms mode, defaults where absent."""
    from .heads.boxes import nms_mode

    out = {}
    for key in ("conf", "iou"):
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ManifestError(f"case '{entry['id']}': {key} = {value!r} is not a number in [0, 1]")
            out[key] = float(value)
    if "nms" in entry:
        try:
            out["nms"] = nms_mode(entry["nms"])
        except ValueError as exc:
            raise ManifestError(f"case '{entry['id']}': {exc}") from None
    return out


def _task(entry: dict) -> str | None:
    """A case's declared task, one of the task registry's, or None (taken from the model's head and metadata)."""
    from .tasks import NAMES

    task = entry.get("task")
    if task is not None and task not in NAMES:
        raise ManifestError(
            f"case '{entry['id']}': task = {task!r} is not one of {', '.join(NAMES)} (or leave it out: "
            "the model's head says)"
        )
    return task


def _marks(entry: dict) -> tuple[str, ...]:
    """A case's pytest markers: a list of marker names (``marks = ["slow"]``)."""
    marks = entry.get("marks", [])
    if not isinstance(marks, list) or not all(isinstance(m, str) and m.isidentifier() for m in marks):
        raise ManifestError(f"case '{entry['id']}': marks = {marks!r} is not a list of marker names, e.g. [\"slow\"]")
    return tuple(marks)


def _min_runtime(entry: dict) -> str | None:
    value = entry.get("onnxruntime")
    if value is not None and not (isinstance(value, str) and value.replace(".", "").isdigit()):
        raise ManifestError(f"case '{entry['id']}': onnxruntime = {value!r} is not a version such as \"1.20\"")
    return value


def _calib_count(entry: dict) -> int:
    count = entry.get("calib_count", DEFAULT_CALIB_COUNT)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ManifestError(f"case '{entry['id']}': calib_count = {count!r} is not a positive number of images")
    return count


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}: pass --quantkit-manifest PATH or --quantkit-model")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"manifest {path} is not valid TOML ({exc}): fix the file") from None
    base = path.parent

    def rel(value):
        return (base / value).resolve() if value else None

    cases = []
    for entry in raw.get("case", []):
        if "id" not in entry or "model" not in entry:
            raise ManifestError(f"a [[case]] in {path} lacks 'id' or 'model': {entry}")
        cases.append(
            Case(
                entry["id"],
                rel(entry["model"]),
                rel(entry.get("calib")),
                rel(entry.get("coco_images")),
                rel(entry.get("coco_ann")),
                parse_imgsz(entry.get("imgsz")),
                entry.get("thresholds", {}),
                tuple(entry["configs"]) if entry.get("configs") else None,
                load_class_map(entry.get("class_map"), base),
                **_operating_point(entry),
                val_images=rel(entry.get("val_images")),
                task=_task(entry),
                marks=_marks(entry),
                calib_count=_calib_count(entry),
                onnxruntime=_min_runtime(entry),
            )
        )
    if not cases:
        raise ManifestError(f"manifest {path} has no [[case]]: add at least one")
    configs = _config_specs(raw.get("config", DEFAULT_CONFIGS))
    _unique([c.id for c in cases], "case", path)
    _unique([k.id for k in configs], "config", path)
    known = {k.id for k in configs}
    for case in cases:
        unknown = sorted(set(case.configs or ()) - known)
        if unknown:
            raise ManifestError(
                f"{path}: case '{case.id}' names unknown config(s) {unknown}: known are {sorted(known)}"
            )
    manifest = Manifest(cases, configs, raw.get("thresholds", {}), path)
    for case in cases:
        for config in configs:
            manifest.thresholds_for(case, config)  # fail early on unknown names
    return manifest


def single_case(
    model,
    calib=None,
    coco_images=None,
    coco_ann=None,
    imgsz=None,
    class_map=None,
    val_images=None,
    calib_count=DEFAULT_CALIB_COUNT,
) -> Manifest:
    """A manifest for one model given on the command line, with the default configs."""
    model = Path(model)
    case = Case(
        model.stem,
        model.resolve(),
        *(Path(p).resolve() if p else None for p in (calib, coco_images, coco_ann)),
        parse_imgsz(imgsz),
        class_map=load_class_map(class_map),
        val_images=Path(val_images).resolve() if val_images else None,
        calib_count=calib_count,
    )
    return Manifest([case], _config_specs(list(DEFAULT_CONFIGS)))
