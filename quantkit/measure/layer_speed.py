"""Per-Conv speed: is INT8 faster than FP32 for this layer, on this EP and thread count?

Every quantized Conv of a QDQ model is cut out twice, as it runs in the FP32 model (the Conv alone)
and as it runs in the INT8 one (QuantizeLinear -> Conv on dequantized weights -> QuantizeLinear ->
DequantizeLinear, which onnxruntime fuses into its QLinearConv kernel with the boundary it pays),
and both are timed interleaved on the same input. Layers whose INT8 kernel does not beat FP32
(pruned channel counts that fit the INT8 blocking badly, CPUs without VNNI, many threads) are
the ones a mixed-precision model keeps in float for speed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, utils

from ..manifest import THRESHOLDS
from .bench import timed_twice
from .session import Runner


@dataclass
class ConvTiming:
    name: str  # the Conv's node name in the INT8 (and FP32) model
    in_channels: int
    out_channels: int
    fp32_ms: float
    int8_ms: float
    spread: float = 0.0  # the two timing runs' relative difference of the INT8/FP32 ratio

    @property
    def ratio(self) -> float:
        return self.int8_ms / self.fp32_ms

    def row(self) -> dict:
        return {
            "conv": self.name,
            "channels": f"{self.in_channels}->{self.out_channels}",
            "fp32 ms": round(self.fp32_ms, 4),
            "int8 ms": round(self.int8_ms, 4),
            "int8/fp32": round(self.ratio, 3),
            "spread": round(self.spread, 3),
        }


def _quantized_convs(int8: onnx.ModelProto) -> list[tuple[onnx.NodeProto, str, str]]:
    """(Conv, float tensor its input was quantized from, dequantized tensor after its output's Q/DQ)."""
    producers = {o: n for n in int8.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in int8.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = []
    for conv in (n for n in int8.graph.node if n.op_type == "Conv"):
        dq_in, dq_w = producers.get(conv.input[0]), producers.get(conv.input[1])
        q_in = producers.get(dq_in.input[0]) if dq_in is not None and dq_in.op_type == "DequantizeLinear" else None
        if q_in is None or q_in.op_type != "QuantizeLinear" or dq_w is None or dq_w.op_type != "DequantizeLinear":
            continue
        q_out = next((c for c in consumers.get(conv.output[0], []) if c.op_type == "QuantizeLinear"), None)
        dq_out = (
            next((c for c in consumers.get(q_out.output[0], []) if c.op_type == "DequantizeLinear"), None)
            if q_out
            else None
        )
        if dq_out is not None:
            found.append((conv, q_in.input[0], dq_out.output[0]))
    return found


def _cut(model_path: Path, inputs: list[str], outputs: list[str], path: Path) -> Path:
    utils.extract_model(str(model_path), str(path), inputs, outputs, check_model=False)
    return path


def conv_timings(
    fp32_path: str | Path, int8_path: str | Path, ep: str = "cpu", threads: int | None = 1, rounds: int | None = None
) -> list[ConvTiming]:
    """FP32 and INT8 time of every quantized Conv of the QDQ model ``int8_path``, in graph order, each
    timed in two interleaved runs of ``rounds`` (THRESHOLDS' ``layer_rounds``) with their spread."""
    rounds = rounds or int(THRESHOLDS["layer_rounds"])
    int8 = onnx.shape_inference.infer_shapes(onnx.load(str(int8_path)))
    fp32 = onnx.load(str(fp32_path))
    fp32_convs = {n.output[0]: n for n in fp32.graph.node if n.op_type == "Conv"}
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*int8.graph.value_info, *int8.graph.input, *int8.graph.output]
    }
    weights = {i.name: i for i in int8.graph.initializer}
    timings = []
    with tempfile.TemporaryDirectory(prefix="quantkit-layers-") as tmp:
        inferred = Path(tmp) / "int8.onnx"
        onnx.save(int8, str(inferred))
        for i, (conv, x, y) in enumerate(_quantized_convs(int8)):
            source = fp32_convs.get(conv.output[0])
            shape = shapes.get(x)
            if source is None or not shape or min(shape) <= 0:
                continue
            a = _cut(Path(fp32_path), [source.input[0]], [source.output[0]], Path(tmp) / f"f{i}.onnx")
            b = _cut(inferred, [x], [y], Path(tmp) / f"q{i}.onnx")
            runners = {"fp32": Runner(a, ep, threads, spin=False), "int8": Runner(b, ep, threads, spin=False)}
            tensor = np.random.default_rng(i).random(shape, dtype=np.float32)
            ms, spread = timed_twice(runners, tensor, rounds)
            w_shape = _weight_shape(weights, int8, conv)
            timings.append(
                ConvTiming(
                    conv.name,
                    w_shape[1] * max(1, _group(conv)),
                    w_shape[0],
                    ms["fp32"],
                    ms["int8"],
                    spread["fp32"] + spread["int8"],
                )
            )
    return timings


def _group(conv: onnx.NodeProto) -> int:
    return next((a.i for a in conv.attribute if a.name == "group"), 1)


def _weight_shape(weights: dict, model: onnx.ModelProto, conv: onnx.NodeProto) -> tuple[int, ...]:
    dq = next(n for n in model.graph.node if conv.input[1] in n.output)
    return tuple(numpy_helper.to_array(weights[dq.input[0]]).shape)


def slow_in_int8(timings: list[ConvTiming], margin: float | None = None) -> list[str]:
    """Convs whose INT8 kernel is slower than FP32's by more than the timings' spread (and ``margin``,
    THRESHOLDS' ``layer_float_margin``): INT8 does not pay there. A tie stays INT8 (smaller, no boundary)."""
    margin = THRESHOLDS["layer_float_margin"] if margin is None else margin
    return sorted(t.name for t in timings if t.ratio > 1.0 + max(margin, t.spread))
