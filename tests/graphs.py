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


def tiny_yolo(
    hw: tuple[int, int] = (32, 32),
    dynamic: bool = False,
    metadata: dict | None = None,
    seed: int = 0,
    names: bool = True,
    opset: int = OPSET,
    batch: int = 1,
    scales: int = 1,
    widths: tuple[int, int] = (8, 16),
) -> onnx.ModelProto:
    """A YOLOv8-shaped detector; ``dynamic`` gives batch/H/W symbolic axes (shape ops stay static).

    ``opset=12`` builds the forms an opset-12 export has (valid at 12, wrong if merely relabelled 13):
    the DFL Softmax between Transposes (Softmax-12 flattens from ``axis``) and a Split with a ``split``
    attribute. ``batch`` fixes the batch dim, Reshape shapes included. ``scales=4`` is a P2/P6-style
    model: the box and class branches read four feature maps (strides 2, 4, 8, 16), concatenated.
    ``widths``: the two backbone Convs' output channels (the head's 1x1 Convs read the last).
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    widths = list(widths) + [widths[-1]] * (scales - 2)  # backbone Conv i has stride 2**(i+1)
    levels = list(range(len(widths)))[-scales:]  # the backbone levels the head reads
    grids = [(-(-h // 2 ** (i + 1)), -(-w // 2 ** (i + 1))) for i in levels]
    counts = [gh * gw for gh, gw in grids]
    n = sum(counts)
    tag = [""] if scales == 1 else [str(k) for k in range(scales)]
    inits, node = [], helper.make_node
    for i, (cin, cout) in enumerate(zip([3] + widths, widths)):
        inits += [
            _init(f"w{i + 1}", rng.normal(0, 0.3 if i == 0 else 0.2, (cout, cin, 3, 3)).astype(np.float32)),
            _init(f"b{i + 1}", np.zeros(cout, np.float32)),
        ]
    for t, level in zip(tag, levels):
        inits += [
            _init(f"wb{t}", rng.normal(0, 0.3, (4 * REG_MAX, widths[level], 1, 1)).astype(np.float32)),
            _init(f"wc{t}", rng.normal(0, 0.3, (NC, widths[level], 1, 1)).astype(np.float32)),
        ]
    inits.append(_init("wd", np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1)))
    for t, count in zip(tag, counts):
        inits += [
            _init(f"shape_box{t}", np.array([batch, 4 * REG_MAX, count], np.int64)),
            _init(f"shape_cls{t}", np.array([batch, NC, count], np.int64)),
        ]
    inits += [
        _init("shape_dfl", np.array([batch, 4, REG_MAX, n], np.int64)),
        _init("shape_d", np.array([batch, 4, n], np.int64)),
    ]
    if opset >= 13:
        inits += [
            _init("s0", np.array([0], np.int64)),
            _init("s2", np.array([2], np.int64)),
            _init("s4", np.array([4], np.int64)),
            _init("ax1", np.array([1], np.int64)),
        ]
    anchors = [np.stack(np.meshgrid(np.arange(gw), np.arange(gh)), 0).reshape(2, -1) + 0.5 for gh, gw in grids]
    strides = np.concatenate([np.full(c, 2.0 ** (i + 1), np.float32) for i, c in zip(levels, counts)]).reshape(1, 1, n)
    inits += [
        _init("anchors", np.concatenate(anchors, 1).reshape(1, 2, n).astype(np.float32)),
        _init("two", np.array(2.0, np.float32)),
        _init("stride", np.array(4.0, np.float32) if scales == 1 else strides),
    ]

    nodes, x = [], "images"
    for i in range(len(widths)):
        c, s, a = (f"c{i + 1}", f"s{i + 1}" if i == 0 else f"s{i + 1}_", f"a{i + 1}")
        nodes += [
            node("Conv", [x, f"w{i + 1}", f"b{i + 1}"], [c], strides=[2, 2], pads=[1, 1, 1, 1]),
            node("Sigmoid", [c], [s]),
            node("Mul", [c, s], [a]),
        ]
        x = a
    for t, level in zip(tag, levels):
        nodes += [
            node("Conv", [f"a{level + 1}", f"wb{t}"], [f"box{t}"]),
            node("Conv", [f"a{level + 1}", f"wc{t}"], [f"cls{t}"]),
        ]
    for t in tag:
        nodes += [
            node("Reshape", [f"box{t}", f"shape_box{t}"], [f"box_r{t}"]),
            node("Reshape", [f"cls{t}", f"shape_cls{t}"], [f"cls_r{t}"]),
        ]
    if scales > 1:
        nodes += [
            node("Concat", [f"box_r{t}" for t in tag], ["box_r"], axis=2),
            node("Concat", [f"cls_r{t}" for t in tag], ["cls_r"], axis=2),
        ]
    nodes += [
        node("Reshape", ["box_r", "shape_dfl"], ["dfl_r"]),
        node("Transpose", ["dfl_r"], ["dfl_t"], perm=[0, 2, 1, 3]),
    ]
    if opset >= 13:
        nodes.append(node("Softmax", ["dfl_t"], ["dfl_s"], axis=1))
    else:  # what torch exports for softmax(dim=1) at opset < 13: move the axis last, and back
        nodes += [
            node("Transpose", ["dfl_t"], ["dfl_l"], perm=[0, 3, 2, 1]),
            node("Softmax", ["dfl_l"], ["dfl_ls"], axis=3),
            node("Transpose", ["dfl_ls"], ["dfl_s"], perm=[0, 3, 2, 1]),
        ]
    nodes += [node("Conv", ["dfl_s", "wd"], ["dfl_c"]), node("Reshape", ["dfl_c", "shape_d"], ["dist"])]
    if opset >= 13:
        nodes += [
            node("Slice", ["dist", "s0", "s2", "ax1"], ["lt"]),
            node("Slice", ["dist", "s2", "s4", "ax1"], ["rb"]),
        ]
    else:
        nodes.append(node("Split", ["dist"], ["lt", "rb"], axis=1, split=[2, 2]))
    nodes += [
        node("Sub", ["anchors", "lt"], ["x1y1"]),
        node("Add", ["anchors", "rb"], ["x2y2"]),
        node("Add", ["x1y1", "x2y2"], ["sum"]),
        node("Div", ["sum", "two"], ["cxy"]),
        node("Sub", ["x2y2", "x1y1"], ["wh"]),
        node("Concat", ["cxy", "wh"], ["dbox"], axis=1),
        node("Mul", ["dbox", "stride"], ["boxes"]),
        node("Sigmoid", ["cls_r"], ["scores"]),
        node("Concat", ["boxes", "scores"], ["output0"], axis=1),
    ]
    if names:
        for i, nd in enumerate(nodes):
            nd.name = f"/model/{nd.op_type.lower()}_{i}"
    dims = ["batch", 3, "height", "width"] if dynamic else [batch, 3, h, w]
    graph = helper.make_graph(
        nodes,
        "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 4 + NC, n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="quantkit-tests")
    model.ir_version = 8 if opset >= 13 else 7
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
    model.graph.node.append(
        helper.make_node("Transpose", [out.name + "_cf"], [out.name], perm=[0, 2, 1], name="/out/transpose")
    )
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
        model.graph.initializer.append(
            _init(f"slow_w{i}", rng.normal(0, 0.1, (channels, cin, 3, 3)).astype(np.float32))
        )
        model.graph.node.append(
            helper.make_node("Conv", [x, f"slow_w{i}"], [f"slow_c{i}"], pads=[1, 1, 1, 1], name=f"/slow/conv{i}")
        )
        x, cin = f"slow_c{i}", channels
    model.graph.initializer.append(_init("slow_zero", np.array(0.0, np.float32)))
    for node in model.graph.node:
        node.output[:] = [name + "_fast" if name == out else name for name in node.output]
    model.graph.node.extend(
        [
            helper.make_node("ReduceMean", [x], ["slow_mean"], keepdims=0, name="/slow/mean"),
            helper.make_node("Mul", ["slow_mean", "slow_zero"], ["slow_nothing"], name="/slow/mul"),
            helper.make_node("Add", [out + "_fast", "slow_nothing"], [out], name="/slow/add"),
        ]
    )
    return model


def _insert_block(
    model: onnx.ModelProto, feature: str, nodes: list, inits: list, out: str, prefix: str
) -> onnx.ModelProto:
    """``model`` with ``nodes`` run on ``feature`` right after its producer, and ``feature``'s readers fed ``out``."""
    model = copy.deepcopy(model)
    for i, nd in enumerate(nodes):
        nd.name = f"{prefix}/{nd.op_type.lower()}_{i}"
    old = list(model.graph.node)
    at = next(i for i, nd in enumerate(old) if feature in nd.output) + 1
    for nd in old[at:]:
        nd.input[:] = [out if name == feature else name for name in nd.input]
    del model.graph.node[:]
    model.graph.node.extend(old[:at] + nodes + old[at:])
    model.graph.initializer.extend(inits)
    onnx.checker.check_model(model)
    return model


def _silu(node, x: str, out: str) -> list:
    return [node("Sigmoid", [x], [out + "_sig"]), node("Mul", [x, out + "_sig"], [out])]


def yolo11(model: onnx.ModelProto, feature: str = "a2", channels: int = 16, seed: int = 1) -> onnx.ModelProto:
    """``model`` with a YOLO11 C2PSA-style attention block on ``feature``: q/k/v 1x1 Convs, MatMul,
    Softmax over the keys, MatMul, a depthwise positional Conv, a projection and the residual Add.
    Ops valid at opset 12 and 13+ alike (Softmax on the last axis means the same at both)."""
    rng = np.random.default_rng(seed)
    node, c = helper.make_node, channels
    inits = [_init(f"psa_w{k}", rng.normal(0, 0.2, (c, c, 1, 1)).astype(np.float32)) for k in "qkvp"]
    inits += [
        _init("psa_wpe", rng.normal(0, 0.2, (c, 1, 3, 3)).astype(np.float32)),
        _init("psa_heads", np.array([0, 1, c, -1], np.int64)),
        _init("psa_scale", np.array(c**-0.5, np.float32)),
    ]
    nodes = [node("Conv", [feature, f"psa_w{k}"], [f"psa_{k}"]) for k in "qkv"]
    nodes += [node("Reshape", [f"psa_{k}", "psa_heads"], [f"psa_{k}r"]) for k in "qkv"]
    nodes += [
        node("Transpose", ["psa_qr"], ["psa_qt"], perm=[0, 1, 3, 2]),
        node("MatMul", ["psa_qt", "psa_kr"], ["psa_att"]),
        node("Mul", ["psa_att", "psa_scale"], ["psa_atts"]),
        node("Softmax", ["psa_atts"], ["psa_attp"], axis=-1),
        node("Transpose", ["psa_attp"], ["psa_attt"], perm=[0, 1, 3, 2]),
        node("MatMul", ["psa_vr", "psa_attt"], ["psa_o"]),
        node("Shape", [feature], ["psa_shape"]),
        node("Reshape", ["psa_o", "psa_shape"], ["psa_o4"]),
        node("Conv", ["psa_v", "psa_wpe"], ["psa_pe"], group=c, pads=[1, 1, 1, 1]),
        node("Add", ["psa_o4", "psa_pe"], ["psa_sum"]),
        node("Conv", ["psa_sum", "psa_wp"], ["psa_proj"]),
        node("Add", [feature, "psa_proj"], ["psa_out"]),
    ]
    return _insert_block(model, feature, nodes, inits, "psa_out", "/model.10/psa")


def yolov5u(model: onnx.ModelProto, feature: str = "a2", channels: int = 16, seed: int = 2) -> onnx.ModelProto:
    """``model`` with YOLOv5u's backbone blocks on ``feature``: a C3 (two 1x1 branches, a residual
    bottleneck, Concat, 1x1) and an SPPF (three chained 5x5 MaxPools, Concat, 1x1)."""
    rng = np.random.default_rng(seed)
    node, c, h = helper.make_node, channels, channels // 2

    def weight(name, shape):
        return _init(name, rng.normal(0, 0.2, shape).astype(np.float32))

    inits = [
        weight("c3_w1", (h, c, 1, 1)),
        weight("c3_w2", (h, c, 1, 1)),
        weight("c3_wm", (h, h, 3, 3)),
        weight("c3_w3", (c, c, 1, 1)),
        weight("sppf_w", (c, 4 * c, 1, 1)),
    ]
    nodes = [
        node("Conv", [feature, "c3_w1"], ["c3_1"]),
        *_silu(node, "c3_1", "c3_1a"),
        node("Conv", ["c3_1a", "c3_wm"], ["c3_m"], pads=[1, 1, 1, 1]),
        *_silu(node, "c3_m", "c3_ma"),
        node("Add", ["c3_1a", "c3_ma"], ["c3_b"]),
        node("Conv", [feature, "c3_w2"], ["c3_2"]),
        *_silu(node, "c3_2", "c3_2a"),
        node("Concat", ["c3_b", "c3_2a"], ["c3_cat"], axis=1),
        node("Conv", ["c3_cat", "c3_w3"], ["c3_3"]),
        *_silu(node, "c3_3", "c3_out"),
    ]
    pools = ["c3_out"]
    for i in range(3):
        nodes.append(node("MaxPool", [pools[-1]], [f"sppf_p{i}"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]))
        pools.append(f"sppf_p{i}")
    nodes += [
        node("Concat", pools, ["sppf_cat"], axis=1),
        node("Conv", ["sppf_cat", "sppf_w"], ["sppf_c"]),
        *_silu(node, "sppf_c", "sppf_out"),
    ]
    return _insert_block(model, feature, nodes, inits, "sppf_out", "/model.9/c3-sppf")


def nhwc(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` taking ``[N, H, W, 3]`` images, transposed to NCHW inside the graph."""
    model = copy.deepcopy(model)
    image = model.graph.input[0]
    n, c, h, w = (d.dim_value for d in image.type.tensor_type.shape.dim)
    for nd in model.graph.node:
        nd.input[:] = [name + "_nchw" if name == image.name else name for name in nd.input]
    model.graph.node.insert(
        0,
        helper.make_node(
            "Transpose", [image.name], [image.name + "_nchw"], perm=[0, 3, 1, 2], name="/model/nhwc_to_nchw"
        ),
    )
    model.graph.input.remove(image)
    model.graph.input.append(helper.make_tensor_value_info(image.name, TensorProto.FLOAT, [n, h, w, c]))
    onnx.checker.check_model(model)
    return model


def float16(model: onnx.ModelProto, io: bool = False) -> onnx.ModelProto:
    """``model`` with float16 weights and compute, as converters make it: float32 inputs and outputs
    with a Cast after each input and before each output (``keep_io_types``), or float16 I/O (``io``)."""
    model = copy.deepcopy(model)
    for i, init in enumerate(model.graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            model.graph.initializer[i].CopyFrom(_init(init.name, numpy_helper.to_array(init).astype(np.float16)))
    if io:
        for value in [*model.graph.input, *model.graph.output]:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
        return model
    image, out = model.graph.input[0].name, model.graph.output[0].name
    for nd in model.graph.node:
        nd.input[:] = [name + "_fp16" if name == image else name for name in nd.input]
        nd.output[:] = [name + "_fp16" if name == out else name for name in nd.output]
    model.graph.node.insert(
        0, helper.make_node("Cast", [image], [image + "_fp16"], to=TensorProto.FLOAT16, name="/cast_in")
    )
    model.graph.node.append(helper.make_node("Cast", [out + "_fp16"], [out], to=TensorProto.FLOAT, name="/cast_out"))
    onnx.checker.check_model(model)
    return model


def save_external(model: onnx.ModelProto, path) -> str:
    """Save ``model`` with its weights (tensors of 1 kB or more) in ``<name>.data`` next to it."""
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=f"{path.name}.data")
    return str(path)


def _with_extra_part(
    model: onnx.ModelProto, nodes: list, inits: list, part: str, channels: int, prefix: str, outputs: tuple = ()
) -> onnx.ModelProto:
    """``tiny_yolo`` with ``part`` ([1, channels, N]) as a third input of the head's final Concat (as onnxslim
    merges Ultralytics' nested one) and any extra graph ``outputs``; the added nodes named under ``prefix``."""
    model = copy.deepcopy(model)
    final = next(nd for nd in model.graph.node if "output0" in nd.output)
    final.input.append(part)
    for i, nd in enumerate(nodes):
        nd.name = f"{prefix}/{nd.op_type.lower()}_{i}"
    at = list(model.graph.node).index(final)
    for nd in reversed(nodes):
        model.graph.node.insert(at, nd)
    model.graph.initializer.extend(inits)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    dims[1].dim_value += channels
    model.graph.output.extend(outputs)
    onnx.checker.check_model(model)
    return model


def tiny_seg(
    hw: tuple[int, int] = (32, 32), nm: int = 32, seed: int = 0, metadata: dict | None = None
) -> onnx.ModelProto:
    """A YOLOv8/11-seg in miniature: ``tiny_yolo`` whose output0 also carries ``nm`` mask coefficients per anchor
    (a 1x1 Conv on the head's feature map), and output1, ``nm`` prototypes at stride 4 from a Proto branch
    (Conv stride 2 + SiLU, ConvTranspose x2, 1x1 Conv + SiLU) that shares the head's feature map."""
    model = tiny_yolo(hw, seed=seed, metadata=metadata)
    rng = np.random.default_rng(seed + 10)
    h, w = hw
    n = model.graph.output[0].type.tensor_type.shape.dim[2].dim_value
    node = helper.make_node
    inits = [
        _init("wm", rng.normal(0, 0.3, (nm, 16, 1, 1)).astype(np.float32)),
        _init("bm", np.full(nm, 0.3, np.float32)),  # coefficients mostly positive: masks of some size
        _init("shape_coef", np.array([1, nm, n], np.int64)),
        _init("wp1", rng.normal(0, 0.2, (16, 16, 3, 3)).astype(np.float32)),
        _init("wpt", rng.normal(0, 0.2, (16, 16, 2, 2)).astype(np.float32)),
        _init("wp2", rng.normal(0, 0.3, (nm, 16, 1, 1)).astype(np.float32)),
    ]
    nodes = [
        node("Conv", ["a2", "wm", "bm"], ["coef"]),
        node("Reshape", ["coef", "shape_coef"], ["coef_r"]),
        node("Conv", ["a2", "wp1"], ["p1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        *_silu(node, "p1", "p1a"),
        node("ConvTranspose", ["p1a", "wpt"], ["p2"], strides=[2, 2]),
        node("Conv", ["p2", "wp2"], ["p3"]),
        *_silu(node, "p3", "output1"),
    ]
    protos = helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, nm, -(-h // 4), -(-w // 4)])
    return _with_extra_part(model, nodes, inits, "coef_r", nm, "/model/segment", (protos,))


def tiny_pose(
    hw: tuple[int, int] = (32, 32), k: int = 5, seed: int = 0, metadata: dict | None = None
) -> onnx.ModelProto:
    """A YOLOv8/11-pose in miniature: ``tiny_yolo`` whose output0 also carries K keypoints per anchor, decoded in
    the graph as Ultralytics exports them: x, y = (raw * 2 + anchor - 0.5) * stride, visibility = Sigmoid(raw)."""
    model = tiny_yolo(hw, seed=seed, metadata=metadata)
    rng = np.random.default_rng(seed + 20)
    n = model.graph.output[0].type.tensor_type.shape.dim[2].dim_value
    anchors = next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == "anchors")
    node = helper.make_node
    inits = [
        _init("wk", rng.normal(0, 0.3, (3 * k, 16, 1, 1)).astype(np.float32)),
        _init("shape_k4", np.array([1, k, 3, n], np.int64)),
        _init("shape_k3", np.array([1, 3 * k, n], np.int64)),
        _init("k_s0", np.array([0], np.int64)),
        _init("k_s2", np.array([2], np.int64)),
        _init("k_s3", np.array([3], np.int64)),
        _init("k_ax2", np.array([2], np.int64)),
        _init("k_anchor", (anchors - 0.5).reshape(1, 1, 2, n).astype(np.float32)),
    ]
    nodes = [
        node("Conv", ["a2", "wk"], ["kraw"]),
        node("Reshape", ["kraw", "shape_k4"], ["k4"]),
        node("Slice", ["k4", "k_s0", "k_s2", "k_ax2"], ["kxy"]),
        node("Slice", ["k4", "k_s2", "k_s3", "k_ax2"], ["kv"]),
        node("Mul", ["kxy", "two"], ["kxy2"]),
        node("Add", ["kxy2", "k_anchor"], ["kxya"]),
        node("Mul", ["kxya", "stride"], ["kpx"]),
        node("Sigmoid", ["kv"], ["kvs"]),
        node("Concat", ["kpx", "kvs"], ["kcat"], axis=2),
        node("Reshape", ["kcat", "shape_k3"], ["kpts"]),
    ]
    return _with_extra_part(model, nodes, inits, "kpts", 3 * k, "/model/pose")


# --- YOLO26 one-to-many, end-to-end, NMS inside the graph, and heads no family serves ------------------------------


def _tiny_backbone(rng, h: int, w: int) -> tuple[list, list, str, int]:
    """Two SiLU Convs (stride 2 each) as in ``tiny_yolo``: (nodes, initializers, feature map 'a2' [1, 16, h/4, w/4],
    N)."""
    node, nodes, inits, x = helper.make_node, [], [], "images"
    for i, (cin, cout) in enumerate(((3, 8), (8, 16))):
        inits += [
            _init(f"w{i + 1}", rng.normal(0, 0.3 if i == 0 else 0.2, (cout, cin, 3, 3)).astype(np.float32)),
            _init(f"b{i + 1}", np.zeros(cout, np.float32)),
        ]
        nodes += [
            node("Conv", [x, f"w{i + 1}", f"b{i + 1}"], [f"c{i + 1}"], strides=[2, 2], pads=[1, 1, 1, 1]),
            *_silu(node, f"c{i + 1}", f"a{i + 1}"),
        ]
        x = f"a{i + 1}"
    return nodes, inits, x, -(-h // 4) * -(-w // 4)


def _finish(
    nodes: list, inits: list, outputs: list, name: str, names: bool = True, opset: int = OPSET
) -> onnx.ModelProto:
    if names:
        for i, nd in enumerate(nodes):
            nd.name = nd.name or f"/model/{nd.op_type.lower()}_{i}"
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])], outputs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="quantkit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def tiny_yolo26(seed: int = 0, xyxy: bool = False, angle: bool = False, names: bool = True) -> onnx.ModelProto:
    """A YOLO26 detector in miniature, one-to-many export: box and class 1x1 Convs on a stride-4 map, the
    box Conv giving the 4 side distances directly (reg_max 1: no Softmax, no DFL Conv), decoded with the
    anchors (Slice, Sub, Add; then Add/Div/Sub to cx, cy, w, h, or kept x1, y1, x2, y2 with ``xyxy``, as the
    end-to-end head decodes), times the stride; class scores through Sigmoid; Concat -> [1, 4 + nc, 64].
    ``angle`` adds an angle-like branch, (Sigmoid - 0.25), as a third Concat input that the box decode does not read:
    no export's head (YOLO26-obb's box decode reads its angle: ``tiny_yolo26_obb``), which quantkit refuses."""
    rng = np.random.default_rng(seed)
    node = helper.make_node
    nodes, inits, feat, n = _tiny_backbone(rng, 32, 32)
    inits += [
        _init("wb", rng.normal(0, 0.3, (4, 16, 1, 1)).astype(np.float32)),
        _init("bb", np.full(4, 1.0, np.float32)),
        _init("wc", rng.normal(0, 0.3, (NC, 16, 1, 1)).astype(np.float32)),
        _init("shape_box", np.array([1, 4, n], np.int64)),
        _init("shape_cls", np.array([1, NC, n], np.int64)),
        _init("s0", np.array([0], np.int64)),
        _init("s2", np.array([2], np.int64)),
        _init("s4", np.array([4], np.int64)),
        _init("ax1", np.array([1], np.int64)),
        _init(
            "anchors", (np.stack(np.meshgrid(np.arange(8), np.arange(8)), 0).reshape(1, 2, n) + 0.5).astype(np.float32)
        ),
        _init("stride", np.array(4.0, np.float32)),
    ]
    nodes += [
        node("Conv", [feat, "wb", "bb"], ["box"]),
        node("Conv", [feat, "wc"], ["cls"]),
        node("Reshape", ["box", "shape_box"], ["dist"]),
        node("Reshape", ["cls", "shape_cls"], ["cls_r"]),
        node("Slice", ["dist", "s0", "s2", "ax1"], ["lt"]),
        node("Slice", ["dist", "s2", "s4", "ax1"], ["rb"]),
        node("Sub", ["anchors", "lt"], ["x1y1"]),
        node("Add", ["anchors", "rb"], ["x2y2"]),
    ]
    if xyxy:
        nodes.append(node("Concat", ["x1y1", "x2y2"], ["dbox"], axis=1))
    else:
        inits.append(_init("two", np.array(2.0, np.float32)))
        nodes += [
            node("Add", ["x1y1", "x2y2"], ["sum"]),
            node("Div", ["sum", "two"], ["cxy"]),
            node("Sub", ["x2y2", "x1y1"], ["wh"]),
            node("Concat", ["cxy", "wh"], ["dbox"], axis=1),
        ]
    nodes += [node("Mul", ["dbox", "stride"], ["boxes"]), node("Sigmoid", ["cls_r"], ["scores"])]
    parts, channels = ["boxes", "scores"], 4 + NC
    if angle:
        inits += [
            _init("wa", rng.normal(0, 0.3, (1, 16, 1, 1)).astype(np.float32)),
            _init("shape_ang", np.array([1, 1, n], np.int64)),
            _init("quarter", np.array(0.25, np.float32)),
        ]
        nodes += [
            node("Conv", [feat, "wa"], ["ang"]),
            node("Reshape", ["ang", "shape_ang"], ["ang_r"]),
            node("Sigmoid", ["ang_r"], ["ang_s"]),
            node("Sub", ["ang_s", "quarter"], ["angle"]),
        ]
        parts, channels = parts + ["angle"], channels + 1
    nodes.append(node("Concat", parts, ["output0"], axis=1))
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, channels, n])
    return _finish(nodes, inits, [out], "tiny_yolo26", names)


def tiny_yolo26_obb(seed: int = 0, names: bool = True) -> onnx.ModelProto:
    """A YOLO26-obb in miniature, one-to-many export, as Ultralytics 8.4 writes it (``OBB26``): box, class and angle
    1x1 Convs (with biases) on a stride-4 map; the angle is the raw Conv output in radians (no Sigmoid); the box Conv
    gives the 4 side distances directly (reg_max 1: no DFL), rotated by the angle (``dist2rbox``: Split, Sub, Div,
    Split, Cos, Sin, Mul, Sub/Add, Concat, + anchors; w, h = l + r, t + b) and times the stride; class scores through
    Sigmoid; Concat(boxes, scores, angle) -> [1, 4 + nc + 1, 64]."""
    rng = np.random.default_rng(seed)
    node = helper.make_node
    nodes, inits, feat, n = _tiny_backbone(rng, 32, 32)
    inits += [
        _init("wb", rng.normal(0, 0.3, (4, 16, 1, 1)).astype(np.float32)),
        _init("bb", np.full(4, 1.0, np.float32)),
        _init("wc", rng.normal(0, 0.3, (NC, 16, 1, 1)).astype(np.float32)),
        _init("bc", np.zeros(NC, np.float32)),
        _init("wa", rng.normal(0, 0.3, (1, 16, 1, 1)).astype(np.float32)),
        _init("ba", np.zeros(1, np.float32)),
        _init("shape_box", np.array([1, 4, n], np.int64)),
        _init("shape_cls", np.array([1, NC, n], np.int64)),
        _init("shape_ang", np.array([1, 1, n], np.int64)),
        _init("split2", np.array([2, 2], np.int64)),
        _init("split1", np.array([1, 1], np.int64)),
        _init("two", np.array(2.0, np.float32)),
        _init(
            "anchors", (np.stack(np.meshgrid(np.arange(8), np.arange(8)), 0).reshape(1, 2, n) + 0.5).astype(np.float32)
        ),
        _init("stride", np.array(4.0, np.float32)),
    ]
    nodes += [
        node("Conv", [feat, "wb", "bb"], ["box"]),
        node("Conv", [feat, "wc", "bc"], ["cls"]),
        node("Conv", [feat, "wa", "ba"], ["ang"]),
        node("Reshape", ["box", "shape_box"], ["dist"]),
        node("Reshape", ["cls", "shape_cls"], ["cls_r"]),
        node("Reshape", ["ang", "shape_ang"], ["angle"]),
        node("Split", ["dist", "split2"], ["lt", "rb"], axis=1),
        node("Cos", ["angle"], ["cos"]),
        node("Sin", ["angle"], ["sin"]),
        node("Sub", ["rb", "lt"], ["half2"]),
        node("Add", ["lt", "rb"], ["wh"]),
        node("Div", ["half2", "two"], ["half"]),
        node("Split", ["half", "split1"], ["xf", "yf"], axis=1),
        node("Mul", ["xf", "cos"], ["xc"]),
        node("Mul", ["yf", "sin"], ["ys"]),
        node("Mul", ["xf", "sin"], ["xs"]),
        node("Mul", ["yf", "cos"], ["yc"]),
        node("Sub", ["xc", "ys"], ["x"]),
        node("Add", ["xs", "yc"], ["y"]),
        node("Concat", ["x", "y"], ["xy"], axis=1),
        node("Add", ["xy", "anchors"], ["cxy"]),
        node("Concat", ["cxy", "wh"], ["dbox"], axis=1),
        node("Mul", ["dbox", "stride"], ["boxes"]),
        node("Sigmoid", ["cls_r"], ["scores"]),
        node("Concat", ["boxes", "scores", "angle"], ["output0"], axis=1),
    ]
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + NC + 1, n])
    return _finish(nodes, inits, [out], "tiny_yolo26_obb", names)


def _rename_output(model: onnx.ModelProto, new: str) -> tuple[onnx.ModelProto, list, int, int]:
    """A copy of ``model`` whose output tensor is renamed ``new`` and dropped from the outputs: (model, dims, C, N)."""
    model = copy.deepcopy(model)
    out = model.graph.output[0]
    dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
    for nd in model.graph.node:
        nd.output[:] = [new if name == out.name else name for name in nd.output]
    model.graph.output.remove(out)
    return model, dims, dims[1], dims[2]


def end_to_end(model: onnx.ModelProto, k: int = 20, xywh: bool = True, extra_output: bool = False) -> onnx.ModelProto:
    """``model`` ([1, 4 + nc, N], boxes as cx, cy, w, h unless ``xywh=False``) behind the selection Ultralytics'
    ``Detect.postprocess`` exports for an end-to-end head: Transpose, Split, ReduceMax, TopK over anchors,
    GatherElements of their class scores, Flatten, TopK over anchor x class, Mod/Div for class and anchor,
    GatherElements of the boxes, Concat -> [1, k, 6] rows x1, y1, x2, y2, score, class. ``tiny_yolo``
    (with its DFL) behind it is a YOLOv10-style model; ``tiny_yolo26(xyxy=True)`` with ``xywh=False`` a YOLO26 one.
    ``extra_output`` adds the feature map as a second output, as a segmentation export's prototypes."""
    model, _, c, n = _rename_output(model, "o2m")
    nc, node = c - 4, helper.make_node
    model.graph.initializer.extend(
        [
            _init("e2e_split", np.array([4, nc], np.int64)),
            _init("e2e_k", np.array([k], np.int64)),
            _init("e2e_ax2", np.array([2], np.int64)),
            _init("e2e_nc", np.array(nc, np.int64)),
            _init("e2e_exp_nc", np.array([1, 1, nc], np.int64)),
            _init("e2e_exp_4", np.array([1, 1, 4], np.int64)),
        ]
    )
    nodes = [
        node("Transpose", ["o2m"], ["e2e_t"], perm=[0, 2, 1]),
        node("Split", ["e2e_t", "e2e_split"], ["e2e_box", "e2e_sc"], axis=-1),
    ]
    if xywh:  # cx, cy, w, h -> x1, y1, x2, y2 (YOLO26 decodes xyxy in its head already)
        model.graph.initializer.extend(
            [
                _init("e2e_s0", np.array([0], np.int64)),
                _init("e2e_s2", np.array([2], np.int64)),
                _init("e2e_s4", np.array([4], np.int64)),
                _init("e2e_half", np.array(0.5, np.float32)),
            ]
        )
        nodes += [
            node("Slice", ["e2e_box", "e2e_s0", "e2e_s2", "e2e_ax2"], ["e2e_cxy"]),
            node("Slice", ["e2e_box", "e2e_s2", "e2e_s4", "e2e_ax2"], ["e2e_wh"]),
            node("Mul", ["e2e_wh", "e2e_half"], ["e2e_hwh"]),
            node("Sub", ["e2e_cxy", "e2e_hwh"], ["e2e_xy1"]),
            node("Add", ["e2e_cxy", "e2e_hwh"], ["e2e_xy2"]),
            node("Concat", ["e2e_xy1", "e2e_xy2"], ["e2e_xyxy"], axis=2),
        ]
    else:
        nodes.append(node("Identity", ["e2e_box"], ["e2e_xyxy"]))
    nodes += [
        node("ReduceMax", ["e2e_sc"], ["e2e_best"], axes=[-1], keepdims=0),
        node("TopK", ["e2e_best", "e2e_k"], ["e2e_v1", "e2e_i1"], axis=1),
        node("Unsqueeze", ["e2e_i1", "e2e_ax2"], ["e2e_i1u"]),
        node("Expand", ["e2e_i1u", "e2e_exp_nc"], ["e2e_i1e"]),
        node("GatherElements", ["e2e_sc", "e2e_i1e"], ["e2e_sck"], axis=1),
        node("Flatten", ["e2e_sck"], ["e2e_flat"], axis=1),
        node("TopK", ["e2e_flat", "e2e_k"], ["e2e_score", "e2e_i2"], axis=1),
        node("Mod", ["e2e_i2", "e2e_nc"], ["e2e_cls"]),
        node("Div", ["e2e_i2", "e2e_nc"], ["e2e_which"]),
        node("GatherElements", ["e2e_i1", "e2e_which"], ["e2e_anchor"], axis=1),
        node("Unsqueeze", ["e2e_anchor", "e2e_ax2"], ["e2e_au"]),
        node("Expand", ["e2e_au", "e2e_exp_4"], ["e2e_ae"]),
        node("GatherElements", ["e2e_xyxy", "e2e_ae"], ["e2e_boxes"], axis=1),
        node("Unsqueeze", ["e2e_score", "e2e_ax2"], ["e2e_scores"]),
        node("Unsqueeze", ["e2e_cls", "e2e_ax2"], ["e2e_clsu"]),
        node("Cast", ["e2e_clsu"], ["e2e_clsf"], to=TensorProto.FLOAT),
        node("Concat", ["e2e_boxes", "e2e_scores", "e2e_clsf"], ["output0"], axis=-1),
    ]
    for i, nd in enumerate(nodes):
        nd.name = f"/model/e2e/{nd.op_type.lower()}_{i}"
    model.graph.node.extend(nodes)
    model.graph.output.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, k, 6]))
    if extra_output:
        model.graph.output.append(helper.make_tensor_value_info("a2", TensorProto.FLOAT, [1, 16, 8, 8]))
    onnx.checker.check_model(model)
    return model


def end_to_end_obb(model: onnx.ModelProto, k: int = 20) -> onnx.ModelProto:
    """``model`` (an OBB one-to-many output [1, 4 + nc + 1, N]: cx, cy, w, h, scores, angle) behind the selection
    Ultralytics 8.4 exports for YOLO26-obb with ``nms=False``: Transpose, Slices of boxes, scores and angle, the
    two TopKs of ``end_to_end``, GatherElements of the boxes and of the angle, Concat -> [1, k, 7] rows cx, cy, w,
    h, score, class, angle."""
    model, _, c, _ = _rename_output(model, "o2m")
    nc, node = c - 5, helper.make_node
    model.graph.initializer.extend(
        [
            _init("e2e_k", np.array([k], np.int64)),
            _init("e2e_ax", np.array([-1], np.int64)),
            _init("e2e_ax2", np.array([2], np.int64)),
            _init("e2e_0", np.array([0], np.int64)),
            _init("e2e_4", np.array([4], np.int64)),
            _init("e2e_sc_end", np.array([4 + nc], np.int64)),
            _init("e2e_end", np.array([5 + nc], np.int64)),
            _init("e2e_nc", np.array(nc, np.int64)),
            _init("e2e_exp_nc", np.array([1, 1, nc], np.int64)),
            _init("e2e_exp_4", np.array([1, 1, 4], np.int64)),
        ]
    )
    nodes = [
        node("Transpose", ["o2m"], ["e2e_t"], perm=[0, 2, 1]),
        node("Slice", ["e2e_t", "e2e_0", "e2e_4", "e2e_ax"], ["e2e_box"]),
        node("Slice", ["e2e_t", "e2e_4", "e2e_sc_end", "e2e_ax"], ["e2e_sc"]),
        node("Slice", ["e2e_t", "e2e_sc_end", "e2e_end", "e2e_ax"], ["e2e_ang"]),
        node("ReduceMax", ["e2e_sc"], ["e2e_best"], axes=[-1], keepdims=0),
        node("TopK", ["e2e_best", "e2e_k"], ["e2e_v1", "e2e_i1"], axis=1),
        node("Unsqueeze", ["e2e_i1", "e2e_ax2"], ["e2e_i1u"]),
        node("Expand", ["e2e_i1u", "e2e_exp_nc"], ["e2e_i1e"]),
        node("GatherElements", ["e2e_sc", "e2e_i1e"], ["e2e_sck"], axis=1),
        node("Flatten", ["e2e_sck"], ["e2e_flat"], axis=1),
        node("TopK", ["e2e_flat", "e2e_k"], ["e2e_score", "e2e_i2"], axis=1),
        node("Unsqueeze", ["e2e_score", "e2e_ax2"], ["e2e_scores"]),
        node("Mod", ["e2e_i2", "e2e_nc"], ["e2e_cls"]),
        node("Div", ["e2e_i2", "e2e_nc"], ["e2e_which"]),
        node("Unsqueeze", ["e2e_cls", "e2e_ax2"], ["e2e_clsu"]),
        node("GatherElements", ["e2e_i1", "e2e_which"], ["e2e_anchor"], axis=1),
        node("Cast", ["e2e_clsu"], ["e2e_clsf"], to=TensorProto.FLOAT),
        node("Unsqueeze", ["e2e_anchor", "e2e_ax2"], ["e2e_au"]),
        node("Expand", ["e2e_au", "e2e_exp_4"], ["e2e_ae"]),
        node("GatherElements", ["e2e_ang", "e2e_au"], ["e2e_angle"], axis=1),
        node("GatherElements", ["e2e_box", "e2e_ae"], ["e2e_boxes"], axis=1),
        node("Concat", ["e2e_boxes", "e2e_scores", "e2e_clsf", "e2e_angle"], ["output0"], axis=-1),
    ]
    for i, nd in enumerate(nodes):
        nd.name = f"/model/e2e/{nd.op_type.lower()}_{i}"
    model.graph.node.extend(nodes)
    model.graph.output.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, k, 7]))
    onnx.checker.check_model(model)
    return model


def nms_inside(
    model: onnx.ModelProto, max_det: int = 10, conf: float = 0.25, iou: float = 0.7, extra: int = 0
) -> onnx.ModelProto:
    """``model`` ([1, 4 + nc, N], cx, cy, w, h) behind NMS inside the graph, as Ultralytics' ``nms=True`` export
    builds it: rows of the batch, boxes to x1, y1, x2, y2, class-wise NonMaxSuppression at ``iou`` over scores
    above ``conf``, the kept boxes, scores (GatherND) and classes gathered and concatenated, zero-padded to
    ``max_det`` rows -> [1, max_det, 6]. ``extra`` > 0 appends that many mask coefficients per anchor (a 1x1
    Conv on the feature map, gathered into each row) and a prototype output: a segmentation export."""
    model, _, c, n = _rename_output(model, "o2m")
    nc, node, width = c - 4, helper.make_node, 6 + extra
    inits = [
        _init("nms_i0", np.array(0, np.int64)),
        _init("nms_i1", np.array(1, np.int64)),
        _init("nms_i2", np.array(2, np.int64)),
        _init("nms_ax1", np.array([1], np.int64)),
        _init("nms_s0", np.array([0], np.int64)),
        _init("nms_s2", np.array([2], np.int64)),
        _init("nms_s4", np.array([4], np.int64)),
        _init("nms_sc_end", np.array([4 + nc], np.int64)),
        _init("nms_half", np.array(0.5, np.float32)),
        _init("nms_max_out", np.array([max_det], np.int64)),
        _init("nms_iou", np.array([iou], np.float32)),
        _init("nms_conf", np.array([conf], np.float32)),
        _init("nms_max_det", np.array(max_det, np.int64)),
        _init("nms_width", np.array(width, np.int64)),
        _init("nms_flat", np.array([-1], np.int64)),
        _init("nms_rows", np.array([1, max_det, width], np.int64)),
        _init("nms_ax0", np.array([0], np.int64)),
        _init("nms_end", np.array([max_det], np.int64)),
    ]
    nodes = []
    pre = "o2m"
    if extra:
        inits += [
            _init("nms_wm", np.random.default_rng(7).normal(0, 0.3, (extra, 16, 1, 1)).astype(np.float32)),
            _init("nms_shape_coef", np.array([1, extra, n], np.int64)),
            _init("nms_wp", np.random.default_rng(8).normal(0, 0.3, (extra, 16, 1, 1)).astype(np.float32)),
        ]
        nodes += [
            node("Conv", ["a2", "nms_wm"], ["nms_coef"]),
            node("Reshape", ["nms_coef", "nms_shape_coef"], ["nms_coef_r"]),
            node("Concat", ["o2m", "nms_coef_r"], ["nms_pre"], axis=1),
            node("Conv", ["a2", "nms_wp"], ["output1"]),
        ]
        pre = "nms_pre"
    nodes += [
        node("Transpose", [pre], ["nms_t"], perm=[0, 2, 1]),
        node("Gather", ["nms_t", "nms_i0"], ["nms_p"], axis=0),
        node("Slice", ["nms_p", "nms_s0", "nms_s2", "nms_ax1"], ["nms_cxy"]),
        node("Slice", ["nms_p", "nms_s2", "nms_s4", "nms_ax1"], ["nms_wh"]),
        node("Slice", ["nms_p", "nms_s4", "nms_sc_end", "nms_ax1"], ["nms_sc"]),
        node("Mul", ["nms_wh", "nms_half"], ["nms_hwh"]),
        node("Sub", ["nms_cxy", "nms_hwh"], ["nms_xy1"]),
        node("Add", ["nms_cxy", "nms_hwh"], ["nms_xy2"]),
        node("Concat", ["nms_xy1", "nms_xy2"], ["nms_xyxy"], axis=1),
        node("Unsqueeze", ["nms_xyxy", "nms_ax0"], ["nms_boxes"]),
        node("Transpose", ["nms_sc"], ["nms_sct"], perm=[1, 0]),
        node("Unsqueeze", ["nms_sct", "nms_ax0"], ["nms_scores"]),
        node("NonMaxSuppression", ["nms_boxes", "nms_scores", "nms_max_out", "nms_iou", "nms_conf"], ["nms_sel"]),
        node("Gather", ["nms_sel", "nms_i1"], ["nms_cls_all"], axis=1),
        node("Gather", ["nms_sel", "nms_i2"], ["nms_anchor_all"], axis=1),
        node("Slice", ["nms_cls_all", "nms_s0", "nms_end"], ["nms_cls"]),
        node("Slice", ["nms_anchor_all", "nms_s0", "nms_end"], ["nms_anchor"]),
        node("Gather", ["nms_xyxy", "nms_anchor"], ["nms_kbox"], axis=0),
        node("Unsqueeze", ["nms_anchor", "nms_ax1"], ["nms_au"]),
        node("Unsqueeze", ["nms_cls", "nms_ax1"], ["nms_cu"]),
        node("Concat", ["nms_au", "nms_cu"], ["nms_idx"], axis=1),
        node("GatherND", ["nms_sc", "nms_idx"], ["nms_kscore"]),
        node("Unsqueeze", ["nms_kscore", "nms_ax1"], ["nms_kscore_u"]),
        node("Cast", ["nms_cu"], ["nms_kcls"], to=TensorProto.FLOAT),
    ]
    parts = ["nms_kbox", "nms_kscore_u", "nms_kcls"]
    if extra:
        inits += [_init("nms_e0", np.array([4 + nc], np.int64)), _init("nms_e1", np.array([4 + nc + extra], np.int64))]
        nodes += [
            node("Slice", ["nms_p", "nms_e0", "nms_e1", "nms_ax1"], ["nms_ex"]),
            node("Gather", ["nms_ex", "nms_anchor"], ["nms_kex"], axis=0),
        ]
        parts.append("nms_kex")
    nodes += [
        node("Concat", parts, ["nms_kept"], axis=1),
        node("Shape", ["nms_kept"], ["nms_shape"]),
        node("Gather", ["nms_shape", "nms_i0"], ["nms_count"], axis=0),
        node("Sub", ["nms_max_det", "nms_count"], ["nms_missing"]),
        node("Mul", ["nms_missing", "nms_width"], ["nms_padn"]),
        node("Unsqueeze", ["nms_padn", "nms_ax0"], ["nms_padu"]),
        node("Concat", ["nms_s0", "nms_padu"], ["nms_pads"], axis=0),
        node("Reshape", ["nms_kept", "nms_flat"], ["nms_kflat"]),
        node("Pad", ["nms_kflat", "nms_pads"], ["nms_padded"]),
        node("Reshape", ["nms_padded", "nms_rows"], ["output0"]),
    ]
    for i, nd in enumerate(nodes):
        nd.name = f"/model/nms/{nd.op_type.lower()}_{i}"
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(inits)
    model.graph.output.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, max_det, width]))
    if extra:
        model.graph.output.append(helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, extra, 8, 8]))
    onnx.checker.check_model(model)
    return model


def tiny_yolox(seed: int = 0) -> onnx.ModelProto:
    """A YOLOX-style head in miniature: box, objectness and class 1x1 Convs; xy = (xy + grid) * stride,
    wh = exp(wh) * stride; Concat(box, Sigmoid(obj), Sigmoid(cls)) -> Transpose -> [1, N, 5 + nc]."""
    rng = np.random.default_rng(seed)
    node = helper.make_node
    nodes, inits, feat, n = _tiny_backbone(rng, 32, 32)
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8)), 0).reshape(1, 2, n).astype(np.float32)
    inits += [
        _init("wr", rng.normal(0, 0.3, (4, 16, 1, 1)).astype(np.float32)),
        _init("wo", rng.normal(0, 0.3, (1, 16, 1, 1)).astype(np.float32)),
        _init("wc", rng.normal(0, 0.3, (NC, 16, 1, 1)).astype(np.float32)),
        _init("shape_reg", np.array([1, 4, n], np.int64)),
        _init("shape_obj", np.array([1, 1, n], np.int64)),
        _init("shape_cls", np.array([1, NC, n], np.int64)),
        _init("grid", grid),
        _init("stride", np.array(4.0, np.float32)),
        _init("split", np.array([2, 2], np.int64)),
    ]
    nodes += [
        node("Conv", [feat, "wr"], ["reg"]),
        node("Conv", [feat, "wo"], ["obj"]),
        node("Conv", [feat, "wc"], ["cls"]),
        node("Reshape", ["reg", "shape_reg"], ["reg_r"]),
        node("Reshape", ["obj", "shape_obj"], ["obj_r"]),
        node("Reshape", ["cls", "shape_cls"], ["cls_r"]),
        node("Split", ["reg_r", "split"], ["xy", "wh"], axis=1),
        node("Add", ["xy", "grid"], ["xy_g"]),
        node("Mul", ["xy_g", "stride"], ["xy_p"]),
        node("Exp", ["wh"], ["wh_e"]),
        node("Mul", ["wh_e", "stride"], ["wh_p"]),
        node("Sigmoid", ["obj_r"], ["obj_s"]),
        node("Sigmoid", ["cls_r"], ["cls_s"]),
        node("Concat", ["xy_p", "wh_p", "obj_s", "cls_s"], ["cat"], axis=1),
        node("Transpose", ["cat"], ["output0"], perm=[0, 2, 1]),
    ]
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, n, 5 + NC])
    return _finish(nodes, inits, [out], "tiny_yolox")


def headless(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with the Sigmoid that feeds its final Concat (the class scores) turned into a Relu: a head no
    family knows (no Sigmoid class branch), for the 'no supported head' paths."""
    model = copy.deepcopy(model)
    by_output = {o: nd for nd in model.graph.node for o in nd.output}
    final = next(nd for nd in model.graph.node if model.graph.output[0].name in nd.output)
    sigmoid = next(by_output[i] for i in final.input if i in by_output and by_output[i].op_type == "Sigmoid")
    sigmoid.op_type = "Relu"
    return model
