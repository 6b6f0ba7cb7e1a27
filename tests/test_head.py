"""The YOLOv8 head is found by graph structure, whatever the nodes are called."""

import onnx
import pytest

import graphs
from quantkit import quantize
from quantkit.errors import ModelError
from quantkit.heads import find as find_head, head_is_float
from quantkit.model import load_model, name_nodes
from quantkit.preprocess import to_tensor
from quantkit.measure.session import Runner

HEAD_OPS = {"Concat", "Sigmoid", "Softmax", "Transpose", "Reshape", "Slice", "Sub", "Add", "Div", "Mul", "Conv"}


def _ops(model, names):
    by_name = {n.name: n.op_type for n in model.graph.node}
    return {by_name[n] for n in names}


def test_tiny_head_found():
    model = graphs.tiny_yolo()
    head = find_head(model)
    assert head is not None
    assert _ops(model, head.nodes) == HEAD_OPS
    assert len(head.feeding_convs) == 2  # the box and class Convs stay quantizable
    backbone = [n.name for n in model.graph.node if n.op_type in ("Conv", "Mul", "Sigmoid")][:6]
    assert not set(backbone) & set(head.nodes)


def test_head_found_without_names():
    """Pruned or re-exported models name nodes differently (or not at all)."""
    model = graphs.tiny_yolo(names=False)
    name_nodes(model)
    head = find_head(model)
    assert head is not None and len(head.nodes) == len(find_head(graphs.tiny_yolo()).nodes)


def test_no_head_in_a_classifier():
    assert find_head(graphs.classifier()) is None


def test_no_yolov8_head_without_dfl():
    """A final Concat with a Sigmoid but no Softmax+Conv (DFL) is not a YOLOv8 head: structurally it is YOLO26's
    (box Conv -> decode), whose walk ends at that Conv."""
    model = graphs.tiny_yolo()
    for node in model.graph.node:
        if node.op_type == "Softmax":
            node.op_type = "Relu"
            del node.attribute[:]
    assert find_head(model).family == "detect26"
    assert find_head(graphs.headless(graphs.tiny_yolo())) is None  # no Sigmoid class branch: no family's


def test_head_is_float_catches_a_quantized_output():
    model = graphs.tiny_yolo()
    head = find_head(model)
    assert head_is_float(model, head.nodes)
    sig = next(n for n in model.graph.node if n.name in head.nodes and n.op_type == "Sigmoid")
    model.graph.node.append(onnx.helper.make_node("QuantizeLinear", [sig.output[0], "s", "z"], ["q"], name="planted_q"))
    assert not head_is_float(model, head.nodes)


def test_fixture_model_head(fixture_case):
    model = load_model(fixture_case.model)
    name_nodes(model)
    head = find_head(model)
    assert head is not None, "the trained fixture must have a YOLOv8 head"
    assert len(head.feeding_convs) == 6  # box + class Conv at each of the three scales
    assert head.family == "dfl-detect"
    assert [n.op_type for n in model.graph.node if n.name in head.nodes].count("Conv") == 1  # the DFL's, kept float


def test_dynamic_export_head_is_found_through_its_shape_ops(fixture_case):
    """The dynamic export sizes its anchors from feature-map shapes (Shape, Range, Expand, ...):
    the walk must stop at Shape nodes, not run into the backbone."""
    heads = []
    for name in ("shapes-v8n-192x320.onnx", "shapes-v8n-dynamic.onnx"):
        model = load_model(fixture_case.model.with_name(name))
        name_nodes(model)
        heads.append((model, find_head(model)))
    (fixed, fixed_head), (dynamic, dynamic_head) = heads
    assert dynamic_head is not None and len(dynamic_head.nodes) > len(fixed_head.nodes)
    assert dynamic_head.feeding_convs == fixed_head.feeding_convs
    for model, head in heads:  # one Sigmoid (class scores), one Conv (the DFL's): no backbone SiLU got in
        ops = [n.op_type for n in model.graph.node if n.name in set(head.nodes)]
        assert ops.count("Sigmoid") == 1 and ops.count("Conv") == 1, sorted(ops)
    assert "Shape" in _ops(dynamic, dynamic_head.nodes)


def test_head_found_through_a_trailing_transpose():
    """`[1, anchors, 4+nc]` exports end with a Transpose after the head's Concat: it belongs to the head."""
    model = graphs.transposed(graphs.tiny_yolo())
    head = find_head(model)
    assert head is not None and "/out/transpose" in head.nodes
    assert len(head.nodes) == len(find_head(graphs.tiny_yolo()).nodes) + 1


def test_quantize_stops_when_a_head_aware_preset_finds_no_head(tmp_path, calib_dir):
    model = graphs.headless(graphs.tiny_yolo())
    path = graphs.save(model, tmp_path / "nohead.onnx")
    with pytest.raises(
        ModelError,
        match=r"no supported YOLO head found \(quantkit knows: .*YOLOv8, YOLO11.*YOLO26.*"
        r"--exclude NODE .*--preset naive",
    ):
        quantize(path, tmp_path / "q.onnx", calib=calib_dir, progress=False)
    assert not (tmp_path / "q.onnx").exists()
    # the user's way out: name the head's nodes, or quantize everything knowingly
    head = [n.name for n in model.graph.node if n.op_type in ("Relu", "Concat")][-3:]
    assert quantize(path, tmp_path / "q.onnx", calib=calib_dir, exclude=head, progress=False).notes
    assert quantize(path, tmp_path / "q2.onnx", calib=calib_dir, preset="naive", progress=False).head_nodes == []


def test_transposed_fixture_keeps_its_head_float(fixture_case, fixture_pipeline, tmp_path):
    """(fixture) The seed's failure on a `[1, 1260, 10]` export: the head is found and kept float,
    so INT8's best class score per image stays within 0.1 of FP32's."""
    src = graphs.save(graphs.transposed(onnx.load(str(fixture_case.model))), tmp_path / "transposed.onnx")
    q = quantize(src, tmp_path / "q.onnx", calib=fixture_case.calib, calib_count=20, progress=False)
    assert "/out/transpose" in q.head_nodes and head_is_float(onnx.load(q.output), q.head_nodes)
    fp32, int8 = Runner(src), Runner(q.output)
    for boxed in fixture_pipeline.images.boxed[:8]:
        x = to_tensor(boxed)
        a, b = fp32.run(x)[0, :, 4:].max(axis=1), int8.run(x)[0, :, 4:].max(axis=1)
        assert abs(float(a.max()) - float(b.max())) < 0.1
