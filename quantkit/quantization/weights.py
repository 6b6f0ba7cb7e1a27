"""Weight-only INT8: every Conv weight stored as per-output-channel symmetric int8 behind a
DequantizeLinear, activations left in float. The file shrinks ~4x; inference stays FP32.

onnxruntime fuses DequantizeLinear with the Conv after it into QDQ kernels unless the session sets
``session.disable_quant_qdq=1``; with that option it folds the weight DequantizeLinear at load and
runs the plain FP32 graph (`quantkit check` times both ways). The option travels in
the model's metadata (``SESSION_CONFIG_KEY``), which quantkit's own sessions apply.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..compat import model_opset
from ..errors import ModelError

SESSION_CONFIG = {"session.disable_quant_qdq": "1"}


def quantize_weights(model: onnx.ModelProto, exclude: set[str]) -> int:
    """Replace each Conv's float weight (outside ``exclude``) by int8 + DequantizeLinear, in place;
    return how many Convs were converted."""
    if model_opset(model) < 13:
        raise ModelError(
            f"weight-only INT8 needs opset >= 13 (per-channel DequantizeLinear), the model has "
            f"{model_opset(model)}: re-export at opset 13+ or use --mode dynamic"
        )
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    converted, new_nodes = 0, []
    for node in graph.node:
        weight = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if weight is None or node.name in exclude or weight.data_type != onnx.TensorProto.FLOAT:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(weight)
        scale = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.round(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
        base = weight.name if uses.get(weight.name, 0) == 1 else f"{weight.name}_{node.name}"
        graph.initializer.extend(
            [
                numpy_helper.from_array(q, base + "_quantized"),
                numpy_helper.from_array(scale.astype(np.float32), base + "_scale"),
                numpy_helper.from_array(np.zeros(w.shape[0], np.int8), base + "_zero_point"),
            ]
        )
        new_nodes.append(
            helper.make_node(
                "DequantizeLinear",
                [base + "_quantized", base + "_scale", base + "_zero_point"],
                [base + "_dequantized"],
                name=base + "_DequantizeLinear",
                axis=0,
            )
        )
        uses[weight.name] -= 1
        node.input[1] = base + "_dequantized"
        new_nodes.append(node)
        converted += 1
    del graph.node[:]
    graph.node.extend(new_nodes)
    unused = [i for i in graph.initializer if uses.get(i.name, 1) == 0]
    for init in unused:
        graph.initializer.remove(init)
    return converted
