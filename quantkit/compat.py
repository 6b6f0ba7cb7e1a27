"""Everything that depends on the installed onnxruntime / onnx version, in one place.

Rather than trusting a table of releases, the module reads the installed functions' real
signatures and probes the runtime with tiny models (which IR versions load, whether an int8-weight
ConvInteger kernel exists), so a release nobody has tried yet still gets the right behaviour.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from .errors import ModelError
from .workdir import private_dir


ORT_VERSION = ort.__version__
ONNX_VERSION = onnx.__version__


def _filtered_kwargs(func: Callable, wanted: dict, what: str) -> tuple[dict, list[str]]:
    """Keep the keyword arguments ``func`` accepts; say which were translated or dropped."""
    params = inspect.signature(func).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(wanted), []
    kept, notes = {}, []
    for key, value in wanted.items():
        if key in params:
            kept[key] = value
        elif key == "optimize_model":  # gone in 1.16: quant_pre_process does the optimization
            if value:
                notes.append(
                    f"{what}: 'optimize_model' is gone in onnxruntime {ORT_VERSION}; quant_pre_process optimizes "
                    "instead"
                )
        else:
            notes.append(f"{what}: onnxruntime {ORT_VERSION} has no '{key}' option; dropped")
            warnings.warn(notes[-1], stacklevel=3)
    return kept, notes


def quantize_static(model_input: str, model_output: str, reader, preprocessed: bool = False, **options) -> list[str]:
    """Call onnxruntime's quantize_static with the options this release accepts; return notes.

    ``preprocessed``: quant_pre_process already optimized the model, so releases before 1.16 must
    not optimize it again (their ``optimize_model`` defaulted to True).
    """
    from onnxruntime.quantization import quantize_static as _quantize_static

    if preprocessed:
        options["optimize_model"] = False
    kwargs, notes = _filtered_kwargs(_quantize_static, options, "quantize_static")
    _quantize_static(model_input, model_output, reader, **kwargs)
    return notes


def quantize_dynamic(model_input: str, model_output: str, preprocessed: bool = False, **options) -> list[str]:
    """Call onnxruntime's quantize_dynamic with the options this release accepts; return notes."""
    from onnxruntime.quantization import quantize_dynamic as _quantize_dynamic

    if preprocessed:
        options["optimize_model"] = False
    kwargs, notes = _filtered_kwargs(_quantize_dynamic, options, "quantize_dynamic")
    _quantize_dynamic(model_input, model_output, **kwargs)
    return notes


_PRE_PROCESS = """
import json, sys
from onnxruntime.quantization.shape_inference import quant_pre_process
args = json.loads(sys.argv[1])
quant_pre_process(args["input"], args["output"], **args["options"])
"""


def quant_pre_process(model_input: str, model_output: str, workdir: str | Path, **options) -> list[str]:
    """onnxruntime's pre-processing, in a child process whose working directory and TMPDIR are ``workdir``.

    Whatever it writes there (``sym_shape_infer_temp.onnx`` and its external data when symbolic shape
    inference is incomplete, ``pre.quant.*`` folders) stays in ``workdir``, and its prints and logged
    tracebacks are captured; a process of its own keeps this safe under threads, where os.chdir is not.
    Raises RuntimeError with onnxruntime's last error line. The input's parameter name changed in 1.18,
    so the paths are passed positionally.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process as _pre

    kwargs, notes = _filtered_kwargs(_pre, options, "quant_pre_process")
    args = {"input": str(Path(model_input).resolve()), "output": str(Path(model_output).resolve()), "options": kwargs}
    env = {**os.environ, "TMPDIR": str(workdir), "TEMP": str(workdir), "TMP": str(workdir)}
    proc = subprocess.run(
        [sys.executable, "-c", _PRE_PROCESS, json.dumps(args)], cwd=workdir, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit code {proc.returncode}")
    return notes


def quant_pre_process_inline(model_input: str, model_output: str) -> None:
    """onnxruntime's pre-processing without symbolic shape inference, in this process: optimization
    (in a temporary folder of its own) and ONNX shape inference write nothing else anywhere.

    Raises RuntimeError where onnxruntime only logs a failure (a model its optimizer refuses)."""
    from onnxruntime.quantization import shape_inference

    errors: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: errors.append(record.getMessage())
    logger = logging.getLogger(shape_inference.__name__)
    propagate, logger.propagate = logger.propagate, False
    logger.addHandler(handler)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            shape_inference.quant_pre_process(model_input, model_output, skip_symbolic_shape=True)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    if errors:
        raise RuntimeError(errors[0].splitlines()[0])


def error_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short phrase for a one-line message: its first line without onnxruntime's
    '[ONNXRuntimeError] : 1 : FAIL : ' prefix, shortened at a word boundary with '...' when long."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", lines[0]) if lines else type(exc).__name__
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."


def quant_types():
    """(QuantType, QuantFormat, CalibrationMethod) enums of this release."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    return QuantType, QuantFormat, CalibrationMethod


def _session_loads(model: onnx.ModelProto) -> bool:
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return True
    except Exception:  # noqa: BLE001 - any refusal means "does not load"
        return False


@functools.lru_cache(maxsize=None)
def max_ir_version() -> int:
    """The newest ONNX IR version this onnxruntime loads (probed with a one-node model)."""
    for ir in range(12, 6, -1):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = ir
        if _session_loads(model):
            return ir
    return 7


def _min_ir_for_opset(opset: int) -> int | None:
    rows = [row for row in helper.VERSION_TABLE if row[2] is not None and row[2] >= opset]
    return min(row[1] for row in rows) if rows else None


def lower_ir_version(model: onnx.ModelProto) -> str | None:
    """Lower ``model.ir_version`` in place to what this onnxruntime loads; return a note, or None.

    Raises ModelError when the model's opset needs a newer IR than the runtime supports.
    """
    limit = max_ir_version()
    if model.ir_version <= limit:
        return None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=1)
    needed = _min_ir_for_opset(opset)
    if needed is None or needed > limit:
        raise ModelError(
            f"model uses opset {opset} (IR {model.ir_version}) but onnxruntime {ORT_VERSION} loads IR <= {limit}: "
            "upgrade onnxruntime or re-export the model with a lower opset"
        )
    old = model.ir_version
    model.ir_version = limit
    return f"IR version lowered {old} -> {limit} for onnxruntime {ORT_VERSION}"


@functools.lru_cache(maxsize=None)
def conv_integer_int8_weights() -> bool:
    """Whether this onnxruntime has a ConvInteger kernel for uint8 activations x int8 weights.

    Releases before ~1.24 raise NOT_IMPLEMENTED at session creation for such models.
    """
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 1, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, None)
    w = helper.make_tensor("w", TensorProto.INT8, [1, 1, 1, 1], [1])
    graph = helper.make_graph([helper.make_node("ConvInteger", ["x", "w"], ["y"])], "probe", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, max_ir_version())
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(None, {"x": np.ones((1, 1, 3, 3), np.uint8)})
        return True
    except Exception:  # noqa: BLE001
        return False


def older_than(version: str) -> bool:
    """True when the installed onnxruntime is older than ``version`` (e.g. '1.20')."""

    def key(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", text)[:3])

    return key(ORT_VERSION) < key(version)


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def model_opset(model: onnx.ModelProto) -> int:
    """The model's default-domain (ai.onnx) opset."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=1)


class _ProbeReader:
    def __init__(self):
        self._left = 2

    def get_next(self):
        self._left -= 1
        return {"x": np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 2, 4, 4)} if self._left >= 0 else None

    def rewind(self):
        self._left = 2


@functools.lru_cache(maxsize=None)
def quantized_loads_at(opset: int, mode: str, quant_format: str, per_channel: bool) -> bool:
    """Whether this onnxruntime's quantizer, given a Conv + MatMul model at ``opset``, makes a model
    that this onnxruntime loads (per-channel QDQ needs DequantizeLinear's ``axis``: opset 13)."""
    from onnxruntime.quantization import QuantFormat, QuantType
    from onnxruntime.quantization import quantize_dynamic as _dynamic, quantize_static as _static

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])
    rng = np.random.default_rng(0)
    inits = [
        helper.make_tensor("w", TensorProto.FLOAT, [2, 2, 1, 1], rng.normal(size=4).tolist()),
        helper.make_tensor("b", TensorProto.FLOAT, [2], [0.1, -0.1]),
        helper.make_tensor("m", TensorProto.FLOAT, [4, 4], rng.normal(size=16).tolist()),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
        helper.make_node("MatMul", ["c", "m"], ["y"], name="matmul"),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "probe", [x], [y], inits), opset_imports=[helper.make_opsetid("", opset)]
    )
    model.ir_version = min(max_ir_version(), _min_ir_for_opset(opset) or max_ir_version())
    with private_dir() as tmp:
        src, out = str(tmp / "probe.onnx"), str(tmp / "probe-q.onnx")
        onnx.save(model, src)
        try:
            if mode == "static":
                fmt = QuantFormat.QDQ if quant_format == "qdq" else QuantFormat.QOperator
                _static(
                    src,
                    out,
                    _ProbeReader(),
                    quant_format=fmt,
                    per_channel=per_channel,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                )
            else:
                _dynamic(src, out, per_channel=per_channel, weight_type=QuantType.QUInt8)
            ort.InferenceSession(out, providers=["CPUExecutionProvider"])
            return True
        except Exception:  # noqa: BLE001 - a quantizer or loader refusal both mean "not at this opset"
            return False


def convert_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """``model`` converted to ``opset`` by onnx.version_converter (its adapters rewrite what changed
    meaning, e.g. Split's sizes become an input at 13); raises whatever the converter raises."""
    from onnx import version_converter

    converted = version_converter.convert_version(model, opset)
    onnx.checker.check_model(converted)
    return converted
