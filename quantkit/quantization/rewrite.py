"""Float graph rewrites that keep every value (to float rounding) and cost onnxruntime less time.

onnxruntime's Softmax on an axis other than the last transposes its input to the last axis and
back around a kernel over short rows, as the YOLOv8 DFL's Softmax over 16 bins (axis 1 of
[1, 16, 4, N]) does. The same values come from ReduceMax, Sub, Exp, ReduceSum and Div along that
axis, which onnxruntime runs without the transposes (measured in benchmarks/README.md, "Closing the gap").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .. import cache
from ..compat import model_opset

REWRITES_KEY = "quantkit_rewrites"  # metadata of a model quantkit rewrote: "softmax:<node>,..."
FAST_FP32 = "fp32-fast-softmax"  # the FP32 reference with the rewrite, in check's and tune's timings


def _rank(model: onnx.ModelProto, tensor: str) -> int | None:
    for value in (*model.graph.value_info, *model.graph.input, *model.graph.output):
        if value.name == tensor and value.type.tensor_type.HasField("shape"):
            return len(value.type.tensor_type.shape.dim)
    return None


def decompose_softmax(model: onnx.ModelProto) -> list[str]:
    """Replace, in place, every Softmax over a non-last axis by its max-subtracted decomposition
    (opset 13 and newer, where Softmax normalises along one axis). The last node keeps the Softmax's
    name and output, so consumers and head checks see the same graph. Returns the replaced nodes."""
    opset = model_opset(model)
    if opset < 13:  # Softmax-1/11 normalise over the flattened dims from `axis` on: another function
        return []
    ranks = onnx.shape_inference.infer_shapes(model)
    replaced, nodes = [], []
    for node in model.graph.node:
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), -1)
        rank = _rank(ranks, node.input[0]) if node.op_type == "Softmax" else None
        if rank is None or axis % rank == rank - 1:
            nodes.append(node)
            continue
        axis %= rank
        name, x, y = node.name or node.output[0], node.input[0], node.output[0]
        axes = numpy_helper.from_array(np.array([axis], np.int64), f"{name}/axes")
        model.graph.initializer.append(axes)
        # ReduceMax takes its axes as an input from opset 18, ReduceSum from 13
        reduce_max = (
            helper.make_node("ReduceMax", [x, axes.name], [f"{name}/max"], name=f"{name}/ReduceMax", keepdims=1)
            if opset >= 18
            else helper.make_node("ReduceMax", [x], [f"{name}/max"], name=f"{name}/ReduceMax", axes=[axis], keepdims=1)
        )
        nodes += [
            reduce_max,
            helper.make_node("Sub", [x, f"{name}/max"], [f"{name}/shifted"], name=f"{name}/Sub"),
            helper.make_node("Exp", [f"{name}/shifted"], [f"{name}/exp"], name=f"{name}/Exp"),
            helper.make_node(
                "ReduceSum", [f"{name}/exp", axes.name], [f"{name}/sum"], name=f"{name}/ReduceSum", keepdims=1
            ),
            helper.make_node("Div", [f"{name}/exp", f"{name}/sum"], [y], name=node.name),
        ]
        replaced.append(name)
    if replaced:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return replaced


def carries_rewrite(model_path: str | Path) -> bool:
    """Whether quantkit rewrote this (quantized) model's Softmax: its metadata says so."""
    model = onnx.load(str(model_path), load_external_data=False)
    return any(p.key == REWRITES_KEY for p in model.metadata_props)


def rewritten_copy(model_path: str | Path, cache_dir: Path, notes: list[str] | None = None) -> Path | None:
    """``model_path`` with the Softmax rewrite, made once under ``cache_dir``/rewritten (by content, a
    verified cache.py entry); None when it has no Softmax to rewrite. The FP32 reference for a rewritten
    INT8 model: timing INT8 against it measures what quantization does, not what the rewrite does."""
    proto = onnx.load(str(model_path))
    if not decompose_softmax(proto):
        return None
    data = proto.SerializeToString()
    name = f"{Path(model_path).stem}-fast-softmax-{hashlib.sha256(data).hexdigest()[:16]}.onnx"
    out = cache.kind_folder(Path(cache_dir), "rewritten", notes) / name
    return out if cache.read(out, notes) else cache.store_bytes(out, data, notes)
