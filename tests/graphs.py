"""Tiny ONNX graphs built in the tests with onnx.helper (no files, no downloads).

``tiny_yolo`` is a YOLOv8 detector in miniature: two SiLU Convs, a box branch through the DFL
(Reshape, Transpose, Softmax, 1x1 Conv with arange weights) and box decoding, a class branch
through Sigmoid, and the final Concat -> [1, 4 + nc, N]. Same structure, a few kB.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
REG_MAX, NC = 4, 2


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def tiny_yolo(hw: tuple[int, int] = (32, 32), dynamic: bool = False, metadata: dict | None = None,
              seed: int = 0, names: bool = True) -> onnx.ModelProto:
    """A YOLOv8-shaped detector; ``dynamic`` gives batch/H/W symbolic axes (shape ops stay static)."""
    rng = np.random.default_rng(seed)
    h, w = hw
    gh, gw = h // 4, w // 4
    n = gh * gw
    inits = [
        _init("w1", rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)), _init("b1", np.zeros(8, np.float32)),
        _init("w2", rng.normal(0, 0.2, (16, 8, 3, 3)).astype(np.float32)), _init("b2", np.zeros(16, np.float32)),
        _init("wb", rng.normal(0, 0.3, (4 * REG_MAX, 16, 1, 1)).astype(np.float32)),
        _init("wc", rng.normal(0, 0.3, (NC, 16, 1, 1)).astype(np.float32)),
        _init("wd", np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1)),
        _init("shape_box", np.array([1, 4 * REG_MAX, n], np.int64)),
        _init("shape_cls", np.array([1, NC, n], np.int64)),
        _init("shape_dfl", np.array([1, 4, REG_MAX, n], np.int64)),
        _init("shape_d", np.array([1, 4, n], np.int64)),
        _init("s0", np.array([0], np.int64)), _init("s2", np.array([2], np.int64)),
        _init("s4", np.array([4], np.int64)), _init("ax1", np.array([1], np.int64)),
        _init("anchors", (np.stack(np.meshgrid(np.arange(gw), np.arange(gh)), 0).reshape(1, 2, n) + 0.5).astype(np.float32)),
        _init("two", np.array(2.0, np.float32)), _init("stride", np.array(4.0, np.float32)),
    ]
    node = helper.make_node
    nodes = [
        node("Conv", ["images", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        node("Sigmoid", ["c1"], ["s1"]), node("Mul", ["c1", "s1"], ["a1"]),
        node("Conv", ["a1", "w2", "b2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        node("Sigmoid", ["c2"], ["s2_"]), node("Mul", ["c2", "s2_"], ["a2"]),
        node("Conv", ["a2", "wb"], ["box"]), node("Conv", ["a2", "wc"], ["cls"]),
        node("Reshape", ["box", "shape_box"], ["box_r"]), node("Reshape", ["cls", "shape_cls"], ["cls_r"]),
        node("Reshape", ["box_r", "shape_dfl"], ["dfl_r"]), node("Transpose", ["dfl_r"], ["dfl_t"], perm=[0, 2, 1, 3]),
        node("Softmax", ["dfl_t"], ["dfl_s"], axis=1), node("Conv", ["dfl_s", "wd"], ["dfl_c"]),
        node("Reshape", ["dfl_c", "shape_d"], ["dist"]),
        node("Slice", ["dist", "s0", "s2", "ax1"], ["lt"]), node("Slice", ["dist", "s2", "s4", "ax1"], ["rb"]),
        node("Sub", ["anchors", "lt"], ["x1y1"]), node("Add", ["anchors", "rb"], ["x2y2"]),
        node("Add", ["x1y1", "x2y2"], ["sum"]), node("Div", ["sum", "two"], ["cxy"]),
        node("Sub", ["x2y2", "x1y1"], ["wh"]), node("Concat", ["cxy", "wh"], ["dbox"], axis=1),
        node("Mul", ["dbox", "stride"], ["boxes"]), node("Sigmoid", ["cls_r"], ["scores"]),
        node("Concat", ["boxes", "scores"], ["output0"], axis=1),
    ]
    if names:
        for i, nd in enumerate(nodes):
            nd.name = f"/model/{nd.op_type.lower()}_{i}"
    dims = ["batch", 3, "height", "width"] if dynamic else [1, 3, h, w]
    graph = helper.make_graph(nodes, "tiny_yolo", [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + NC, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="quantkit-tests")
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def classifier() -> onnx.ModelProto:
    """A model with a [1, 10] input: no image input for quantkit to find."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "clf", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


def write_images(folder, count: int = 6, hw: tuple[int, int] = (40, 56), seed: int = 0) -> str:
    """A folder of small random JPEGs for calibration."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(str(folder / f"img_{i}.jpg"), rng.integers(0, 255, (*hw, 3), dtype=np.uint8))
    return str(folder)


def transposed(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with a Transpose after its output: ``[1, anchors, 4+nc]``, as some exports ship it."""
    model = copy.deepcopy(model)
    out = model.graph.output[0]
    n, c = (d.dim_value for d in out.type.tensor_type.shape.dim[1:])
    for node in model.graph.node:
        node.output[:] = [name + "_cf" if name == out.name else name for name in node.output]
    model.graph.node.append(helper.make_node("Transpose", [out.name + "_cf"], [out.name], perm=[0, 2, 1], name="/out/transpose"))
    model.graph.output.remove(out)
    model.graph.output.append(helper.make_tensor_value_info(out.name, TensorProto.FLOAT, [1, c, n]))
    return model


def slowed(model: onnx.ModelProto, channels: int = 48, layers: int = 2) -> onnx.ModelProto:
    """``model`` plus a side branch of full-resolution Convs whose result is multiplied by 0 and
    added to the output: same detections, several times the compute (a planted latency fault)."""
    model = copy.deepcopy(model)
    rng = np.random.default_rng(0)
    image, out = model.graph.input[0].name, model.graph.output[0].name
    x, cin = image, 3
    for i in range(layers):
        model.graph.initializer.append(_init(f"slow_w{i}", rng.normal(0, 0.1, (channels, cin, 3, 3)).astype(np.float32)))
        model.graph.node.append(helper.make_node("Conv", [x, f"slow_w{i}"], [f"slow_c{i}"], pads=[1, 1, 1, 1], name=f"/slow/conv{i}"))
        x, cin = f"slow_c{i}", channels
    model.graph.initializer.append(_init("slow_zero", np.array(0.0, np.float32)))
    for node in model.graph.node:
        node.output[:] = [name + "_fast" if name == out else name for name in node.output]
    model.graph.node.extend([
        helper.make_node("ReduceMean", [x], ["slow_mean"], keepdims=0, name="/slow/mean"),
        helper.make_node("Mul", ["slow_mean", "slow_zero"], ["slow_nothing"], name="/slow/mul"),
        helper.make_node("Add", [out + "_fast", "slow_nothing"], [out], name="/slow/add"),
    ])
    return model
