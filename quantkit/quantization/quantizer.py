"""Presets and the quantizer: FP32 ONNX -> INT8 ONNX, static (calibrated) or dynamic.

Every file onnxruntime makes on the way (``-inferred.onnx``, ``-opt.onnx``, augmented calibration
models) lives in a private temporary folder with ASCII names; the source folder is only read, and
the output appears in one atomic rename.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import onnx
import onnxruntime as ort

from .. import cache, compat
from .calibration import DEFAULT_COUNT, RECOMMENDED_COUNT, CalibrationSet, load_calibration
from ..cpu import has_vnni
from ..errors import CalibrationError, ModelError, OutputError, QuantkitError, RuntimeLoadError
from .. import heads, tasks
from ..model import (
    SESSION_CONFIG_KEY,
    ModelInfo,
    fix_input_dims,
    inspect_model,
    load_model,
    model_bytes,
    name_nodes,
    refuse_quantized,
    resolve_imgsz,
    tensor_bytes,
    upcast_float16,
)
from .ranges import batch_size, fast_calibration
from .rewrite import REWRITES_KEY, decompose_softmax
from ..cache import default_cache_dir
from .weights import SESSION_CONFIG, quantize_weights
from ..files import copy_atomic
from ..workdir import private_dir
from ..progress import Progress

MODES = ("static", "dynamic", "weights")
STEPS = {"static": "onnxruntime quantize_static", "dynamic": "onnxruntime quantize_dynamic", "weights": "int8 weights"}
FORMATS = ("qdq", "qoperator")
CALIBRATE_METHODS = ("auto", "minmax", "entropy", "percentile")
TARGET_CPUS = ("auto", "vnni", "avx2")


def resolve_target(target_cpu: str) -> str:
    """ "vnni" or "avx2": ``auto`` is this machine's class."""
    return target_cpu if target_cpu != "auto" else ("vnni" if has_vnni() else "avx2")


@dataclass(frozen=True)
class QuantConfig:
    """One quantization recipe. ``reduce_range=None`` lets ``target_cpu`` decide: 7-bit weights for
    CPUs without VNNI ("avx2"), full 8-bit for VNNI/AMX ("vnni"), or as this machine ("auto")."""

    mode: str = "static"
    format: str = "qdq"
    per_channel: bool = True
    reduce_range: bool | None = None
    activation_type: str = "uint8"
    weight_type: str = "int8"
    calibrate_method: str = "auto"  # auto: the head family's choice (``HeadFamily.calibration``), minmax without a head
    keep_head_float: bool = True
    preprocess: bool = True  # onnxruntime's quant_pre_process (shape inference + optimization)
    # The CPU class the model is made for: avx2 (7-bit weights, safe everywhere), vnni, auto (this machine).
    # Default avx2: full-range weights made on a VNNI runner can saturate on a CPU without VNNI, where no gate
    # sees it, and 7-bit weights cost neither accuracy nor speed where measured (docs/quantization.md).
    target_cpu: str = "avx2"
    exclude: tuple[str, ...] = ()  # extra nodes kept in float (e.g. chosen by `quantkit tune`)
    fast_softmax: bool = (
        True  # the float head's Softmax on a non-last axis decomposed (rewrite.py: same values, faster)
    )
    op_types: tuple[str, ...] | None = None  # op types to quantize (None: onnxruntime's full list)
    # when set, every node of another op type stays float, excluded by node (still calibrated), as Ultralytics does
    quantize_only: tuple[str, ...] = ()
    # when set, a newer model's working copy is converted down to this opset first (onnx.version_converter)
    max_opset: int | None = None

    def validate(self) -> "QuantConfig":
        for name, value, allowed in (
            ("mode", self.mode, MODES),
            ("format", self.format, FORMATS),
            ("calibrate_method", self.calibrate_method, CALIBRATE_METHODS),
            ("activation_type", self.activation_type, ("uint8", "int8")),
            ("target_cpu", self.target_cpu, TARGET_CPUS),
            ("weight_type", self.weight_type, ("uint8", "int8")),
        ):
            if value not in allowed:
                raise QuantkitError(f"unknown {name} '{value}': choose one of {', '.join(allowed)}")
        return self


# onnxruntime's own defaults, what the seed report ran: QDQ, per-tensor S8S8, MinMax, whole graph.
ORT_DEFAULTS = QuantConfig(
    calibrate_method="minmax",
    per_channel=False,
    reduce_range=False,
    activation_type="int8",
    keep_head_float=False,
    preprocess=False,
    fast_softmax=False,
)

PRESETS: dict[str, QuantConfig] = {
    "naive": ORT_DEFAULTS,
    # head in float, per-channel U8S8 weights: the CPU choice measured best (benchmarks/README.md).
    "default": QuantConfig(),
    "qoperator": QuantConfig(format="qoperator"),
    # uint8 weights: ConvInteger(u8, u8) runs on every onnxruntime, and faster than the int8-weight kernel
    # that 1.24+ added (benchmarks/README.md).
    "dynamic": QuantConfig(mode="dynamic", per_channel=False, weight_type="uint8"),
    # size only, at FP32 speed: per-channel symmetric int8 Conv weights behind DequantizeLinear,
    # activations float; sessions need session.disable_quant_qdq=1 (stamped in the model, weights.py)
    "weights": QuantConfig(mode="weights"),
    # Ultralytics' own `yolo export format=onnx int8=True` (ultralytics 8.4.x, ultralytics/utils/export/onnx.py):
    # quantize_static's defaults (QDQ, per-tensor S8S8, MinMax), every node but Conv/Gemm/MatMul excluded by
    # name, no pre-processing, at opset 20 or lower (best_onnx_opset(quantize=8) caps INT8 exports at 20:
    # onnxruntime's int8 QDQ models do not load above it, docs/layouts.md). Kept for contrast: the one-flag
    # export every Ultralytics user has.
    "ultralytics-ort": replace(ORT_DEFAULTS, quantize_only=("Conv", "Gemm", "MatMul"), max_opset=20),
}


def resolve_config(preset: str = "default", mode: str | None = None, **overrides) -> QuantConfig:
    """A preset, switched to the dynamic preset when ``mode='dynamic'``, with explicit overrides on top."""
    if preset not in PRESETS:
        raise QuantkitError(f"unknown preset '{preset}': choose one of {', '.join(PRESETS)}")
    config = PRESETS[preset]
    if mode is not None and mode != config.mode:
        config = PRESETS[mode] if mode in ("dynamic", "weights") else replace(PRESETS["default"], mode=mode)
    overrides = {
        k: (tuple(v) if k in ("exclude", "op_types", "quantize_only") else v)
        for k, v in overrides.items()
        if v is not None
    }
    return replace(config, **overrides).validate()


@dataclass
class QuantResult:
    """What a quantization produced, with the configuration actually used."""

    source: str
    output: str
    preset: str
    config: dict
    source_bytes: int
    output_bytes: int
    seconds: float
    onnxruntime: str = compat.ORT_VERSION
    float_nodes: list[str] = field(default_factory=list)  # the head (when kept float) and config.exclude
    head_nodes: list[str] = field(default_factory=list)  # the YOLOv8 head found, whether kept float or not
    head_family: str | None = None  # the head family it was found as (also in the model's metadata: heads.HEAD_KEY)
    calibration: dict | None = None
    notes: list[str] = field(default_factory=list)
    tensors: dict | None = None  # the INT8 model's tensor bytes by kind (model.tensor_bytes): the size gate reads them

    @property
    def compression(self) -> float:
        return self.source_bytes / self.output_bytes

    def weights(self) -> dict:
        """What quantization could shrink, from the INT8 graph: every weight but the head's own float constants,
        FP32 bytes (``fp32``: quantized tensors at 4 bytes an element, float ones as they are) against INT8 bytes
        (``int8``: integers, their scales and zero points, float ones as they are); ``compression`` (None without
        weights), ``float_share`` (of ``fp32``, float kept), ``head_float`` (bytes the head keeps float by design).
        A result cached before quantkit kept ``tensors`` reads them from its output once."""
        if self.tensors is None:
            self.tensors = tensor_bytes(onnx.load(self.output), self.head_nodes)
        t = self.tensors
        fp32, int8 = t["quantized_fp32"] + t["float"], t["quantized"] + t["scales"] + t["float"]
        return {
            "fp32": fp32,
            "int8": int8,
            "compression": fp32 / int8 if int8 else None,
            "float_share": t["float"] / fp32 if fp32 else None,
            "head_float": t["head_float"],
        }

    def summary(self) -> dict:
        """One row for the CLI and reports."""
        c = self.config
        used = (
            f"{c['mode']} {c['format'] if c['mode'] == 'static' else ''} "
            f"{'per-channel' if c['per_channel'] else 'per-tensor'} "
            f"A:{c['activation_type']} W:{c['weight_type']}{' reduce_range' if c['reduce_range'] else ''}"
        )
        return {
            "preset": self.preset,
            "source MB": round(self.source_bytes / 1e6, 2),
            "int8 MB": round(self.output_bytes / 1e6, 2),
            "compression": round(self.compression, 2),
            "weight compression": _rounded(self.weights()["compression"], 2),
            "float share": _rounded(self.weights()["float_share"], 4),
            "seconds": round(self.seconds, 2),
            "onnxruntime": self.onnxruntime,
            "config": " ".join(used.split()),
            "target CPU": c.get("target_cpu"),
            "float nodes": len(self.float_nodes),
        }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _check_output(src: Path, out: Path) -> None:
    """Refuse OUT == MODEL and unwritable folders before any work is done."""
    if out.resolve() == src.resolve() or (out.exists() and src.exists() and out.samefile(src)):
        raise OutputError(f"output {out} is the source model: choose another -o path (the source is never overwritten)")
    if out.is_dir():
        raise OutputError(f"output {out} is a folder: pass a file path such as {out / (src.stem + '-int8.onnx')}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}: create it first")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".quantkit-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"output folder {parent} is not writable ({exc.strerror}): choose another -o path") from None


@contextlib.contextmanager
def _quiet_logging():
    """onnxruntime logs advice such as 'consider pre-processing' on the root logger: the result's
    notes say what was done instead."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _pre_process(src: Path, dst: Path, notes: list[str], workdir: Path) -> None:
    """onnxruntime's quant_pre_process: in this process without symbolic shape inference where ONNX's
    own shape inference types every tensor (fixed input shapes: no sympy import, no child process);
    otherwise the full pre-processing in a child process inside ``workdir``; on its failure (symbolic
    shape inference on dynamic axes) once more without symbolic shape inference, then the model as given."""
    try:
        compat.quant_pre_process_inline(str(src), str(dst))
        if _every_tensor_typed(onnx.load(str(dst), load_external_data=False)):
            return
    except Exception:  # noqa: BLE001 - any failure here: the full pre-processing below decides
        pass
    try:
        notes += compat.quant_pre_process(str(src), str(dst), workdir)
        return
    except RuntimeError as exc:
        first = compat.error_line(exc, 120)
    try:
        notes += compat.quant_pre_process(str(src), str(dst), workdir, skip_symbolic_shape=True)
        notes.append(f"quant_pre_process: symbolic shape inference failed ({first}); ran without it")
    except RuntimeError as exc:
        notes.append(f"quant_pre_process failed ({compat.error_line(exc, 120)}); quantized the model as given")
        dst.write_bytes(src.read_bytes())


def _every_tensor_typed(model: onnx.ModelProto) -> bool:
    """Every node output has an element type: what onnxruntime's quantizer needs to quantize it."""
    graph = model.graph
    typed = {v.name for v in (*graph.value_info, *graph.output, *graph.input) if v.type.tensor_type.elem_type}
    return all(out in typed for node in graph.node for out in node.output if out)


def _ort_kwargs(config: QuantConfig, exclude: list[str], notes: list[str]) -> tuple[dict, dict]:
    QuantType, QuantFormat, CalibrationMethod = compat.quant_types()
    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    weight_type = config.weight_type
    if config.mode == "dynamic" and weight_type == "int8" and not compat.conv_integer_int8_weights():
        weight_type = "uint8"
        notes.append(
            f"dynamic: weights quantized to uint8: onnxruntime {compat.ORT_VERSION} has no ConvInteger kernel for "
            "int8 weights"
        )
    target = resolve_target(config.target_cpu)
    reduce_range = (target == "avx2") if config.reduce_range is None else config.reduce_range
    if config.mode == "weights":  # dequantized to float before any kernel: nothing can saturate
        reduce_range = False
    kwargs = {
        "per_channel": config.per_channel,
        "reduce_range": reduce_range,
        "weight_type": qtype[weight_type],
        "nodes_to_exclude": exclude,
    }
    if config.op_types is not None:
        kwargs["op_types_to_quantize"] = list(config.op_types)
    if config.mode == "static":
        kwargs.update(
            quant_format=QuantFormat.QDQ if config.format == "qdq" else QuantFormat.QOperator,
            activation_type=qtype[config.activation_type],
            calibrate_method={
                "minmax": CalibrationMethod.MinMax,
                "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile,
            }[config.calibrate_method],
        )
    return kwargs, {"weight_type": weight_type, "reduce_range": reduce_range, "target_cpu": target}


def _range_cache_dir(range_cache: str | Path | bool, notes: list[str]) -> Path | None:
    """The range cache's folder, or its temporary stand-in where it cannot take files (cache.py)."""
    if range_cache is False or range_cache is None:
        return None
    if range_cache is True:
        return cache.kind_folder(default_cache_dir(), "ranges", notes)
    return cache.folder(Path(range_cache), notes)


def _finish(path: Path, entries: dict[str, str], fast_softmax: bool, notes: list[str]) -> None:
    """The quantized model's last edits: the Softmax rewrite (``fast_softmax``) and what the model was
    made for, in its own metadata (``quantkit_target_cpu``, ...)."""
    model = onnx.load(str(path))
    if fast_softmax and (rewritten := decompose_softmax(model)):
        entries = {**entries, REWRITES_KEY: "softmax:" + ",".join(rewritten)}
        notes.append(
            f"Softmax over a non-last axis ({', '.join(rewritten)}) rewritten as ReduceMax, Sub, Exp, ReduceSum, Div: "
            "the same values, faster in onnxruntime's CPU kernels (quantkit.quantization.rewrite; check's 'FP32, "
            "Softmax "
            "rewritten' row times it on this model)"
        )
    keep = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


# Closest configurations to per-channel QDQ, nearest first: the note says what to expect, and the model's
# own accuracy gates measure what it cost.
OPSET_FALLBACKS = (
    ({"format": "qoperator"}, "the same quantization in another format; this model's accuracy gates measure it"),
    (
        {"per_channel": False},
        "one scale per weight tensor, usually some accuracy; this model's accuracy gates measure how much",
    ),
)


def _describe(config: QuantConfig) -> str:
    granularity = "per-channel" if config.per_channel else "per-tensor"
    return f"{granularity} {config.format if config.mode == 'static' else 'dynamic'}"


def _fit_opset(
    proto: onnx.ModelProto, config: QuantConfig, name: str, notes: list[str]
) -> tuple[onnx.ModelProto, QuantConfig]:
    """The model and configuration to quantize with, so that the result loads in this onnxruntime.

    Below opset 13, a configuration onnxruntime's quantizer cannot serve at the model's opset (per-channel
    QDQ: DequantizeLinear's ``axis`` is opset 13) gets the working copy converted to 13; a model the
    converter cannot take gets the closest configuration that loads (OPSET_FALLBACKS), else ModelError.
    """
    proto = _cap_opset(proto, config, name, notes)
    opset = compat.model_opset(proto)
    if opset >= 13:
        return proto, config

    def key(c: QuantConfig) -> tuple:
        return (opset, c.mode, c.format if c.mode == "static" else "", c.per_channel)

    with contextlib.redirect_stdout(io.StringIO()), _quiet_logging():
        if compat.quantized_loads_at(*key(config)):
            return proto, config
        try:
            converted = compat.convert_opset(proto, 13)
        except Exception as exc:  # noqa: BLE001 - no adapter, unknown op, shapes the converter needs
            reason = compat.error_line(exc, 120)
        else:
            notes.append(
                f"opset {opset} converted to 13 in quantkit's working copy (onnx.version_converter): onnxruntime "
                f"{compat.ORT_VERSION} makes no loadable {_describe(config)} model below opset 13; {name} is untouched"
            )
            return converted, config
        for change, cost in OPSET_FALLBACKS:
            candidate = replace(config, **change)
            if key(candidate) != key(config) and compat.quantized_loads_at(*key(candidate)):
                notes.append(
                    f"opset {opset} could not be converted to 13 ({reason}): quantized {_describe(candidate)} instead "
                    f"of {_describe(config)}, which does not load at opset {opset}; cost: {cost}"
                )
                return proto, candidate
    raise ModelError(
        f"{name}: opset {opset} could not be converted to 13 ({reason}) and onnxruntime {compat.ORT_VERSION} makes "
        f"no loadable {_describe(config)} model at opset {opset}: re-export the model at opset 13 or newer"
    )


def _cap_opset(proto: onnx.ModelProto, config: QuantConfig, name: str, notes: list[str]) -> onnx.ModelProto:
    """The working copy converted down to ``config.max_opset`` where the model is newer (the ``ultralytics-ort``
    preset: Ultralytics' INT8 export runs at opset 20 or lower); ModelError where the converter cannot."""
    opset, cap = compat.model_opset(proto), config.max_opset
    if cap is None or opset <= cap:
        return proto
    try:
        with contextlib.redirect_stdout(io.StringIO()), _quiet_logging():
            converted = compat.convert_opset(proto, cap)
    except Exception as exc:  # noqa: BLE001 - no down adapter for an op, shapes the converter needs
        raise ModelError(
            f"{name}: opset {opset} could not be converted to {cap} ({compat.error_line(exc, 120)}), the opset this "
            f"preset quantizes at as Ultralytics' INT8 export does: re-export the model with opset={cap}"
        ) from None
    notes.append(
        f"opset {opset} converted to {cap} in quantkit's working copy (onnx.version_converter): Ultralytics' INT8 "
        f"export quantizes at opset {cap} or lower; {name} is untouched"
    )
    return converted


# onnxruntime's session optimizer re-quantizes a DequantizeLinear's output after a float Reshape / Transpose /
# Squeeze / Slice / MaxPool (QDQPropagationTransformer: from opset 21 the inserted QuantizeLinear carries an explicit
# output_dtype, microsoft/onnxruntime#28144), then on x86 turns int8 Q/DQ zero points to uint8 without touching
# output_dtype (QDQS8ToU8Transformer, microsoft/onnxruntime#25526): int8 activations at opset >= 21 do not load.
_OUTPUT_DTYPE_DEFECT = re.compile(r"output_dtype (\w+) does not match y_zero_point type (\w+)")


def _check_loads(path: Path) -> None:
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        first = compat.error_line(exc)
        if defect := _OUTPUT_DTYPE_DEFECT.search(str(exc)):
            opset = compat.model_opset(onnx.load(str(path), load_external_data=False))
            raise RuntimeLoadError(
                f"onnxruntime {compat.ORT_VERSION} writes QuantizeLinear output_dtype {defect[1]} with a "
                f"{defect[2]} zero point at opset {opset} when it loads int8 activations kept around a float "
                "Reshape/Transpose (microsoft/onnxruntime#25526): quantize with uint8 activations (--preset default) "
                "or a model exported at opset 20 or lower"
            ) from None
        raise RuntimeLoadError(
            f"the quantized model does not load in onnxruntime {compat.ORT_VERSION} ({first}): "
            "try another --format or --mode"
        ) from None


@dataclass
class Prepared:
    """What a mode quantizes: the pre-processed float model in the private folder, and the choices made on it."""

    path: Path  # the model to quantize (pre-processed, nodes named)
    proto: onnx.ModelProto
    input_name: str
    batch: int | str | None  # the input's batch dim (the calibration reader's batch)
    float_nodes: list[str]  # kept float: the head (when kept), config.exclude, the non-quantize_only nodes
    kwargs: dict  # onnxruntime quantizer keyword arguments (``_ort_kwargs``)
    progress: bool = False  # calibration's progress on stderr (``quantkit.progress``)


def _weights_mode(prepared: Prepared, out: Path, config: QuantConfig, calib_set, range_dir, notes: list[str]) -> None:
    converted = quantize_weights(prepared.proto, set(prepared.float_nodes))
    onnx.save(prepared.proto, str(out))
    notes.append(
        f"{converted} Conv weights stored as int8; run with "
        + ", ".join(f"{k}={v}" for k, v in SESSION_CONFIG.items())
        + " (quantkit's sessions read it from the model's metadata) or it runs slower than FP32"
    )


def _static_mode(prepared: Prepared, out: Path, config: QuantConfig, calib_set, range_dir, notes: list[str]) -> None:
    events: list[str] = []
    with fast_calibration(calib_set, prepared.input_name, range_dir, events, notes, prepared.progress):
        reader = calib_set.reader(prepared.input_name, batch=prepared.batch)
        notes += compat.quantize_static(
            str(prepared.path), str(out), reader, preprocessed=config.preprocess, **prepared.kwargs
        )
    notes.append(
        {
            "cached": "calibration: activation ranges reused from the range cache (no inference)",
            "batched": f"calibration: {len(calib_set)} images in batches of {batch_size(calib_set.pixels.shape)}",
            "per image": f"calibration: {len(calib_set.files)} images, one per inference",
        }.get(events[0] if events else "", "calibration: ranges from onnxruntime")
    )


def _dynamic_mode(prepared: Prepared, out: Path, config: QuantConfig, calib_set, range_dir, notes: list[str]) -> None:
    notes += compat.quantize_dynamic(str(prepared.path), str(out), preprocessed=config.preprocess, **prepared.kwargs)


MODE_RUNNERS = {"static": _static_mode, "dynamic": _dynamic_mode, "weights": _weights_mode}  # QuantConfig.mode -> how


def _float_nodes(
    proto: onnx.ModelProto, head: heads.Head | None, config: QuantConfig, name: str, notes: list[str]
) -> list[str]:
    """The nodes kept float: the head a family finds (when kept float), config.exclude, and every node outside
    ``quantize_only``. A head-keeping preset without a head and without --exclude stops here."""
    if config.keep_head_float and head is None:
        if not config.exclude:
            raise ModelError(
                f"{name}: no supported YOLO head found (quantkit knows: {heads.supported()}); quantizing "
                "the head collapses class scores: pass --exclude NODE ... to keep your head's nodes "
                "in float, or --preset naive to quantize the whole graph knowingly"
            )
        notes.append(
            f"no supported YOLO head found by graph structure: only the {len(config.exclude)} excluded nodes stay float"
        )
    kept = set(head.nodes if (head and config.keep_head_float) else []) | set(config.exclude)
    if config.quantize_only:
        kept |= {n.name for n in proto.graph.node if n.op_type not in config.quantize_only}
    return sorted(kept)


def _calibration(config: QuantConfig, head: heads.Head | None) -> QuantConfig:
    """``calibrate_method='auto'`` of a static config resolved: the head family's choice, minmax without a head."""
    if config.calibrate_method != "auto" or config.mode != "static":
        return config
    return replace(config, calibrate_method=heads.family(head.family).calibration if head else "minmax")


def _working_copy(
    src: Path, imgsz: tuple[int, ...] | None, config: QuantConfig, notes: list[str]
) -> tuple[onnx.ModelProto, ModelInfo, tuple[int, int], QuantConfig]:
    """The source loaded (an already-INT8 model refused), its input dims fixed, float16 upcast, the opset fitted
    (``config`` with it) and its nodes named: (model, its input, (H, W), config)."""
    proto = load_model(src, notes)
    refuse_quantized(proto, src)
    info = inspect_model(proto, src)
    hw = resolve_imgsz(info, imgsz, src)
    if fix_input_dims(proto, info, hw):
        notes.append(f"dynamic input axes fixed to {'x'.join(map(str, info.input_shape))}")
    if upcast_float16(proto):
        notes.append(
            "float16 weights upcast to float32 in quantkit's working copy (onnxruntime quantizes float32); "
            "the compression is against the float16 source"
        )
    proto, config = _fit_opset(proto, config, src.name, notes)
    name_nodes(proto)
    return proto, info, hw, config


def _run_mode(
    prepared: Prepared,
    quant: Path,
    config: QuantConfig,
    calib_set: CalibrationSet | None,
    ranges: Path | None,
    name: str,
    notes: list[str],
) -> None:
    """The config's mode (``MODE_RUNNERS``) on the prepared model; onnxruntime's failures as one line."""
    step = Progress(f"{STEPS[config.mode]} of {name}", enabled=prepared.progress, announce=True)  # ours: on stderr
    try:  # onnxruntime's calibrators print progress to stdout and log advice: keep both off ours
        with step, contextlib.redirect_stdout(io.StringIO()), _quiet_logging():
            MODE_RUNNERS[config.mode](prepared, quant, config, calib_set, ranges, notes)
    except QuantkitError:
        raise
    except ImportError as exc:
        raise QuantkitError(
            f"onnxruntime {compat.ORT_VERSION} needs the Python package '{exc.name}' for this "
            f"configuration: pip install {exc.name}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - surface onnxruntime's failure as one line
        raise ModelError(
            f"onnxruntime {compat.ORT_VERSION} failed to quantize {name} ({type(exc).__name__}: "
            f"{compat.error_line(exc)}): check the model runs in onnxruntime as FP32 first"
        ) from None


def _stamps(used: dict, preset: str, head: heads.Head | None, config: QuantConfig) -> dict[str, str]:
    """What the quantized model was made for and how, in its own metadata."""
    stamps = {
        "quantkit_target_cpu": used["target_cpu"],
        "quantkit_reduce_range": str(used["reduce_range"]).lower(),
        "quantkit_preset": preset,
        "quantkit_onnxruntime": compat.ORT_VERSION,
    }
    if head is not None:  # the family found here decodes the INT8 model's outputs (heads.for_outputs)
        stamps[heads.HEAD_KEY] = head.family
    if config.mode == "weights":
        stamps[SESSION_CONFIG_KEY] = json.dumps(SESSION_CONFIG)
    return stamps


def _calibration_summary(calib_set: CalibrationSet | None, notes: list[str]) -> dict | None:
    """The calibration images used, skipped and available (with a note below the advised count)."""
    if calib_set is None:
        return None
    if len(calib_set.files) < RECOMMENDED_COUNT:
        notes.append(
            f"calibrated on {len(calib_set.files)} images ({calib_set.available} in the folder): "
            f"{RECOMMENDED_COUNT} or more are advised for INT8 (--calib-count N)"
        )
    return {"images": len(calib_set.files), "skipped": len(calib_set.skipped), "available": calib_set.available}


def quantize(
    model: str | Path,
    output: str | Path,
    *,
    preset: str = "default",
    mode: str | None = None,
    calib: str | Path | CalibrationSet | None = None,
    calib_count: int = DEFAULT_COUNT,
    imgsz: tuple[int, ...] | None = None,
    seed: int = 0,
    progress: bool = True,
    config: QuantConfig | None = None,
    range_cache: str | Path | bool = True,
    **overrides,
) -> QuantResult:
    """Quantize ``model`` to ``output`` and return what was done.

    ``overrides`` are QuantConfig fields (format, per_channel, calibrate_method, ...) applied on top
    of ``preset``; pass ``config`` instead to use a full QuantConfig as is. ``calib`` is an image
    folder or an already loaded CalibrationSet (static mode only). ``range_cache``: where activation
    ranges are kept and reused (True: the quantkit cache folder's ``ranges``; False: not kept).

    Steps: check the output path; load, refuse an already-INT8 model, fix dims and dtypes, fit the opset;
    in a private folder pre-process and pick the float nodes, run the config's mode (``MODE_RUNNERS``),
    stamp and check the result; write it atomically.
    """
    started = time.perf_counter()
    src, out = Path(model), Path(output)
    config = (config or resolve_config(preset, mode, **overrides)).validate()
    _check_output(src, out)
    notes: list[str] = []
    proto, info, hw, config = _working_copy(src, imgsz, config, notes)
    calib_set = None
    if config.mode == "static":
        if calib is None:
            raise CalibrationError("static quantization needs calibration images: pass --calib DIR (or --mode dynamic)")
        if not isinstance(calib, CalibrationSet):  # fitted to the input as the model's task fits its images
            head = heads.find(proto)
            fit = tasks.get(heads.family(head.family).task if head else None).fit
            calib = load_calibration(calib, hw, calib_count, seed, progress, fit=fit)
        calib_set = calib

    with private_dir() as tmp:
        fixed, prepared_path, quant = tmp / "model.onnx", tmp / "prepared.onnx", tmp / "quant.onnx"
        onnx.save(proto, str(fixed))
        if config.preprocess:
            with Progress("pre-processing (quant_pre_process)", enabled=progress):  # a line only when it is long
                _pre_process(fixed, prepared_path, notes, tmp)
        else:
            prepared_path = fixed
        prepared_proto = onnx.load(str(prepared_path))
        name_nodes(prepared_proto)
        onnx.save(prepared_proto, str(prepared_path))
        head = heads.find(prepared_proto)
        float_nodes = _float_nodes(prepared_proto, head, config, src.name, notes)
        head_nodes = head.nodes if head else []
        config = _calibration(config, head)
        kwargs, used = _ort_kwargs(config, float_nodes, notes)
        prepared = Prepared(
            prepared_path, prepared_proto, info.input_name, info.input_shape[0], float_nodes, kwargs, progress
        )
        _run_mode(prepared, quant, config, calib_set, _range_cache_dir(range_cache, notes), src.name, notes)
        _finish(quant, _stamps(used, preset, head, config), config.fast_softmax, notes)
        _check_loads(quant)
        copy_atomic(quant, out)
    return QuantResult(
        source=str(src),
        output=str(out),
        preset=preset,
        config={**asdict(config), **used},
        source_bytes=model_bytes(src),
        output_bytes=out.stat().st_size,
        seconds=time.perf_counter() - started,
        float_nodes=float_nodes,
        head_nodes=head_nodes,
        head_family=head.family if head else None,
        calibration=_calibration_summary(calib_set, notes),
        notes=notes,
        tensors=tensor_bytes(onnx.load(str(out)), head_nodes),
    )
