"""Real exports beyond the fixture: opsets below 13, fixed batch sizes, strides from the head,
external data (the layouts themselves are walked in test_layouts.py)."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphs
from quantkit import ModelError, compat
from quantkit import quantize
from quantkit.quantization.calibration import CalibrationReader
from quantkit.measure.evaluate import ImageSet, folder_items, predict
from quantkit.heads import head_is_float
from quantkit.model import head_stride, inspect_model, model_bytes, upcast_float16
from quantkit.measure.session import Runner
from quantkit.tune import conv_sensitivity


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
    assert (
        compat.model_opset(model) == opset
        and q.config["per_channel"]
        and q.config["format"] == preset.replace("default", "qdq")
    )
    assert head_is_float(model, q.head_nodes)
    assert ("converted to 13" in " ".join(q.notes)) == (opset == 13) and src.read_bytes() == before


def _no_converter(model, opset):
    raise RuntimeError("No Adapter From Version $12 for Split")


def test_opset12_the_converter_cannot_take_falls_back_to_qoperator(tmp_path, calib_dir, monkeypatch):
    monkeypatch.setattr(compat, "convert_opset", _no_converter)
    src = graphs.save(graphs.tiny_yolo(opset=12), tmp_path / "v8-opset12.onnx")
    q = quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
    assert (q.config["format"], q.config["per_channel"]) == ("qoperator", True)
    assert (
        "could not be converted to 13 (No Adapter From Version $12 for Split): quantized per-channel qoperator instead "
        "of per-channel qdq, which does not load at opset 12; cost: the same quantization in another format"
        in " ".join(q.notes)
    )
    assert compat.model_opset(onnx.load(q.output)) == 12 and head_is_float(onnx.load(q.output), q.head_nodes)
    Runner(q.output).run(np.zeros((1, 3, 32, 32), np.float32))


def test_opset12_stops_when_nothing_loads(tmp_path, calib_dir, monkeypatch):
    monkeypatch.setattr(compat, "convert_opset", _no_converter)
    monkeypatch.setattr(compat, "quantized_loads_at", lambda *key: False)
    src = graphs.save(graphs.tiny_yolo(opset=12), tmp_path / "v8-opset12.onnx")
    with pytest.raises(
        ModelError, match=r"opset 12 could not be converted to 13 .*re-export the model at opset 13 or newer"
    ):
        quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
    assert not (tmp_path / "int8.onnx").exists()


def test_calibration_fills_the_last_batch_with_real_images():
    tensors = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1)
    reader = CalibrationReader(tensors, "images", batch=2)
    for _ in range(2):  # and again after rewind
        batches = list(iter(reader.get_next, None))
        assert [b["images"].ravel().tolist() for b in batches] == [[0, 1], [2, 0]]
        reader.rewind()


def test_fixed_batch_calibrates_and_runs_like_batch_one(tmp_path):
    """Five images in batches of 2: the padding adds no range, so both INT8 models compute the same
    (and `tune` ranks their Convs the same)."""
    calib = graphs.write_images(tmp_path / "calib", count=5)
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    outs, ranks = [], []
    for batch in (1, 2):
        src = graphs.save(graphs.tiny_yolo(batch=batch), tmp_path / f"b{batch}.onnx")
        q = quantize(src, tmp_path / f"b{batch}-int8.onnx", calib=calib, progress=False)
        runner = Runner(q.output)
        assert runner.batch == batch and inspect_model(onnx.load(q.output)).input_shape[0] == batch
        outs.append(runner.run(x[:1]))
        ranks.append(conv_sensitivity(Path(src), Path(q.output), x))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    assert [n for n, _ in ranks[0]] == [n for n, _ in ranks[1]]
    np.testing.assert_allclose([e for _, e in ranks[0]], [e for _, e in ranks[1]], rtol=1e-4)


def test_fixed_batch_is_evaluated_in_batches_scoring_only_real_images(tmp_path):
    images = ImageSet.load(folder_items(graphs.write_images(tmp_path / "val", count=3)), (32, 32))
    preds = [
        predict(Runner(graphs.save(graphs.tiny_yolo(batch=b), tmp_path / f"b{b}.onnx")), images, conf=0.25)
        for b in (1, 2)
    ]
    assert sorted(preds[1].dets) == images.ids
    for image_id in images.ids:
        one, two = preds[0].dets[image_id], preds[1].dets[image_id]
        assert len(one) > 0 and np.array_equal(one.classes, two.classes)
        np.testing.assert_allclose(one.boxes, two.boxes, atol=1e-4)


def test_stride_from_the_head_on_dynamic_axes(tmp_path, calib_dir):
    """No 'stride' metadata: the head's deepest feature map decides (16 on this 4-scale graph, 4 on one scale)."""
    p6 = graphs.tiny_yolo(dynamic=True, scales=4)
    assert inspect_model(p6).stride == 16 and inspect_model(graphs.tiny_yolo(dynamic=True)).stride == 4
    assert inspect_model(graphs.tiny_yolo(dynamic=True, scales=4, metadata={"stride": "32"})).stride == 32
    headless = graphs.headless(graphs.tiny_yolo(dynamic=True))
    assert head_stride(headless, inspect_model(headless)) is None and inspect_model(headless).stride == 32
    src = graphs.save(p6, tmp_path / "p6.onnx")
    with pytest.raises(ModelError, match="--imgsz 40x40 is not a multiple of the stride 16: use 32x32"):
        quantize(src, tmp_path / "int8.onnx", calib=calib_dir, imgsz=(40, 40), progress=False)


def test_external_data_is_counted_and_must_sit_next_to_the_model(tmp_path, calib_dir):
    src = Path(graphs.save_external(graphs.tiny_yolo(), tmp_path / "external.onnx"))
    data = tmp_path / "external.onnx.data"
    assert model_bytes(src) == src.stat().st_size + data.stat().st_size > 2 * src.stat().st_size
    data.unlink()
    with pytest.raises(
        ModelError, match=r"keeps its weights in external data \(external.onnx.data\) that cannot be read"
    ):
        quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)


def test_float16_upcast_leaves_a_float32_model_that_matches():
    """Weights, Casts and a float16 output (no Cast before it) all become float32; results stay within float16's
    error."""
    model = graphs.float16(graphs.tiny_yolo())
    model.graph.node.pop()  # drop the output Cast: the graph now ends in float16
    model.graph.node[-1].output[0] = "output0"
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    assert upcast_float16(model) == 10 + 1 + 1 and upcast_float16(model) == 0  # 10 weights, the input Cast, the output
    onnx.checker.check_model(model)
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    out = _run(model, x)
    assert out.dtype == np.float32 and np.abs(out - _run(graphs.tiny_yolo(), x)).max() < 0.01
