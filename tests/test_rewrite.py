"""The Softmax rewrite: same values, only where onnxruntime's Softmax is slow, never at opset 12."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphs
from quantkit import quantize
from quantkit.quantization.rewrite import decompose_softmax


def _outputs(model: onnx.ModelProto, hw=(32, 32)) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(0, 3, (1, 3, *hw)).astype(np.float32)
    return sess.run(None, {sess.get_inputs()[0].name: x})


@pytest.mark.parametrize("opset", [13, 17, 18])  # ReduceMax takes its axes as an input from 18
def test_dfl_softmax_is_decomposed_with_the_same_values(opset):
    model = graphs.tiny_yolo(opset=opset)
    before = _outputs(model)
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    assert decompose_softmax(model) == [softmax.name]
    onnx.checker.check_model(model)
    assert not any(n.op_type == "Softmax" for n in model.graph.node)
    last = next(n for n in model.graph.node if n.name == softmax.name)  # head checks find the node by name
    assert last.op_type == "Div" and list(last.output) == list(softmax.output)
    for a, b in zip(before, _outputs(model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_last_axis_softmax_and_opset_12_are_left_alone():
    attention = graphs.yolo11(graphs.tiny_yolo())  # C2PSA's Softmax over the keys: the last axis
    dfl = next(n.name for n in attention.graph.node if n.op_type == "Softmax" and "psa" not in n.output[0])
    assert decompose_softmax(attention) == [dfl]
    assert sum(n.op_type == "Softmax" for n in attention.graph.node) == 1
    old = graphs.tiny_yolo(opset=12)  # Softmax-12 normalises the flattened dims from `axis` on: another function
    assert decompose_softmax(old) == [] and any(n.op_type == "Softmax" for n in old.graph.node)


def test_quantize_rewrites_the_float_head_and_says_so(tiny_model, calib_dir, tmp_path):
    fast = quantize(tiny_model, tmp_path / "fast.onnx", calib=calib_dir, progress=False)
    naive = quantize(tiny_model, tmp_path / "naive.onnx", preset="naive", calib=calib_dir, progress=False)
    meta = {p.key: p.value for p in onnx.load(fast.output).metadata_props}
    assert meta["quantkit_rewrites"].startswith("softmax:") and any(
        "Softmax over a non-last axis" in n for n in fast.notes
    )
    assert not any(n.op_type == "Softmax" for n in onnx.load(fast.output).graph.node)
    assert any(n.op_type == "Softmax" for n in onnx.load(naive.output).graph.node)  # naive: onnxruntime's defaults
