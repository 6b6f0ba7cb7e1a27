"""Real exports beyond the fixture: opsets below 13, fixed batch sizes, strides from the head,
external data (the layouts themselves are walked in test_layouts.py)."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphs
from quantkit import ModelError, compat, quantize
from quantkit.head import head_is_float
from quantkit.model import head_stride, inspect_model, model_bytes
from quantkit.session import Runner


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"images": x})[0]


def test_opset12_graph_converts_to_13_unchanged_and_cannot_be_relabelled():
    """Softmax and Split changed meaning at 13: the converter rewrites them, a relabelled copy is invalid."""
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    old = graphs.tiny_yolo(opset=12)
    converted = compat.convert_opset(old, 13)
    assert compat.model_opset(converted) == 13
    np.testing.assert_array_equal(_run(converted, x), _run(old, x))
    relabelled = onnx.ModelProto()
    relabelled.CopyFrom(old)
    relabelled.opset_import[0].version = 13
    with pytest.raises(Exception, match="Split"):
        _run(relabelled, x)


def test_quantizer_probe_knows_per_channel_qdq_needs_opset_13():
    assert not compat.quantized_loads_at(12, "static", "qdq", True)
    assert compat.quantized_loads_at(13, "static", "qdq", True)
    assert compat.quantized_loads_at(12, "static", "qoperator", True)
    assert compat.quantized_loads_at(12, "static", "qdq", False)


@pytest.mark.parametrize("preset, opset", [("default", 13), ("qoperator", 12)])
def test_opset12_converted_only_when_the_configuration_needs_it(preset, opset, tmp_path, calib_dir):
    src = Path(graphs.save(graphs.tiny_yolo(opset=12), tmp_path / "v8-opset12.onnx"))
    before = src.read_bytes()
    q = quantize(src, tmp_path / "int8.onnx", preset=preset, calib=calib_dir, progress=False)
    model = onnx.load(q.output)
    assert compat.model_opset(model) == opset and q.config["per_channel"] and q.config["format"] == preset.replace("default", "qdq")
    assert head_is_float(model, q.head_nodes)
    assert ("converted to 13" in " ".join(q.notes)) == (opset == 13) and src.read_bytes() == before


def _no_converter(model, opset):
    raise RuntimeError("No Adapter From Version $12 for Split")


def test_opset12_the_converter_cannot_take_falls_back_to_qoperator(tmp_path, calib_dir, monkeypatch):
    monkeypatch.setattr(compat, "convert_opset", _no_converter)
    src = graphs.save(graphs.tiny_yolo(opset=12), tmp_path / "v8-opset12.onnx")
    q = quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
    assert (q.config["format"], q.config["per_channel"]) == ("qoperator", True)
    assert "could not be converted to 13 (No Adapter From Version $12 for Split): quantized per-channel qoperator instead " \
           "of per-channel qdq, which does not load at opset 12; cost: no accuracy cost on the fixture" in " ".join(q.notes)
    assert compat.model_opset(onnx.load(q.output)) == 12 and head_is_float(onnx.load(q.output), q.head_nodes)
    Runner(q.output).run(np.zeros((1, 3, 32, 32), np.float32))


def test_opset12_stops_when_nothing_loads(tmp_path, calib_dir, monkeypatch):
    monkeypatch.setattr(compat, "convert_opset", _no_converter)
    monkeypatch.setattr(compat, "quantized_loads_at", lambda *key: False)
    src = graphs.save(graphs.tiny_yolo(opset=12), tmp_path / "v8-opset12.onnx")
    with pytest.raises(ModelError, match=r"opset 12 could not be converted to 13 .*re-export the model at opset 13 or newer"):
        quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
    assert not (tmp_path / "int8.onnx").exists()


def test_stride_from_the_head_on_dynamic_axes(tmp_path, calib_dir):
    """No 'stride' metadata: the head's deepest feature map decides (16 on this 4-scale graph, 4 on one scale)."""
    p6 = graphs.tiny_yolo(dynamic=True, scales=4)
    assert inspect_model(p6).stride == 16 and inspect_model(graphs.tiny_yolo(dynamic=True)).stride == 4
    assert inspect_model(graphs.tiny_yolo(dynamic=True, scales=4, metadata={"stride": "32"})).stride == 32
    headless = graphs.tiny_yolo(dynamic=True)
    next(n for n in headless.graph.node if n.op_type == "Softmax").op_type = "Relu"
    assert head_stride(headless, inspect_model(headless)) is None and inspect_model(headless).stride == 32
    src = graphs.save(p6, tmp_path / "p6.onnx")
    with pytest.raises(ModelError, match="--imgsz 40x40 is not a multiple of the stride 16: use 32x32"):
        quantize(src, tmp_path / "int8.onnx", calib=calib_dir, imgsz=(40, 40), progress=False)


def test_external_data_is_counted_and_must_sit_next_to_the_model(tmp_path, calib_dir):
    src = Path(graphs.save_external(graphs.tiny_yolo(), tmp_path / "external.onnx"))
    data = tmp_path / "external.onnx.data"
    assert model_bytes(src) == src.stat().st_size + data.stat().st_size > 2 * src.stat().st_size
    data.unlink()
    with pytest.raises(ModelError, match=r"keeps its weights in external data \(external.onnx.data\) that cannot be read"):
        quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
