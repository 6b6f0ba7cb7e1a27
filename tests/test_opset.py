"""Models newer than opset 20 (issue #34): the default preset quantizes them as they are; the ultralytics-ort row
quantizes at opset 20, as Ultralytics' INT8 export does (best_onnx_opset caps INT8 exports there), because
onnxruntime's session optimizer cannot load int8 activations around a float Reshape at opset >= 21 on x86."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphs
from quantkit import PRESETS, ModelError, compat, quantize
from quantkit.errors import RuntimeLoadError
from quantkit.heads import head_is_float
from quantkit.measure.session import Runner

# Opset 21/22 graphs: onnx's converter makes them from 1.17, onnxruntime loads opset 22 from 1.21 (tox's older
# environments pin older ones).
pytestmark = pytest.mark.skipif(
    compat.older_than("1.21"), reason=f"opset 21/22 need onnxruntime >= 1.21; {compat.ORT_VERSION} is installed"
)

X = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)


def _saved(tmp_path: Path, opset: int) -> str:
    model = graphs.tiny_yolo() if opset == graphs.OPSET else compat.convert_opset(graphs.tiny_yolo(), opset)
    return graphs.save(model, tmp_path / f"v8-opset{opset}.onnx")


def _runtime_defect(opset: int) -> str | None:
    """The error this onnxruntime gives a plain session on Q(int8) -> DQ -> Reshape -> Sigmoid at ``opset``
    (the quantizer's pattern around a float Reshape, four nodes), or None where it loads."""
    inits = [
        numpy_helper.from_array(np.array(0.1, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.int8), "z"),
        numpy_helper.from_array(np.array([1, -1], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        helper.make_node("Reshape", ["d", "shape"], ["r"]),
        helper.make_node("Sigmoid", ["r"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(
        helper.make_graph(nodes, "probe", [x], [y], inits), opset_imports=[helper.make_opsetid("", opset)]
    )
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - the message is the answer
        return str(exc)
    return None


def _quantize(src, out, calib, **kwargs):
    return quantize(src, out, calib=calib, progress=False, range_cache=False, **kwargs)


@pytest.mark.parametrize("opset", [21, 22])
def test_default_preset_quantizes_at_the_models_opset(opset, tmp_path, calib_dir):
    q = _quantize(_saved(tmp_path, opset), tmp_path / "int8.onnx", calib_dir)
    model = onnx.load(q.output)
    assert compat.model_opset(model) == opset and q.config["activation_type"] == "uint8"
    assert head_is_float(model, q.head_nodes)
    ref = _quantize(_saved(tmp_path, graphs.OPSET), tmp_path / "int8-17.onnx", calib_dir)
    np.testing.assert_array_equal(Runner(q.output).run(X)[0], Runner(ref.output).run(X)[0])


@pytest.mark.parametrize("opset", [21, 22])
def test_ultralytics_ort_quantizes_at_opset_20_as_ultralytics_does(opset, tmp_path, calib_dir):
    src = _saved(tmp_path, opset)
    before = Path(src).read_bytes()
    q = _quantize(src, tmp_path / "int8.onnx", calib_dir, preset="ultralytics-ort")
    assert compat.model_opset(onnx.load(q.output)) == 20 and Path(src).read_bytes() == before
    assert f"opset {opset} converted to 20 in quantkit's working copy" in " ".join(q.notes)
    # the same INT8 model, to the bit, as the recipe makes from the opset-17 export
    ref = _quantize(_saved(tmp_path, graphs.OPSET), tmp_path / "int8-17.onnx", calib_dir, preset="ultralytics-ort")
    assert compat.model_opset(onnx.load(ref.output)) == graphs.OPSET and not any("converted" in n for n in ref.notes)
    np.testing.assert_array_equal(Runner(q.output).run(X)[0], Runner(ref.output).run(X)[0])


def test_the_recipe_left_at_opset_22_names_the_onnxruntime_defect(tmp_path, calib_dir):
    """Without the cap, Ultralytics' recipe at opset 22: where this onnxruntime cannot load the four-node pattern,
    one line names the cause (not 'does not load'); where it can, the model loads at 22."""
    uncapped = replace(PRESETS["ultralytics-ort"], max_opset=None)
    src, out = _saved(tmp_path, 22), tmp_path / "int8.onnx"
    if _runtime_defect(22) is None:
        assert compat.model_opset(onnx.load(_quantize(src, out, calib_dir, config=uncapped).output)) == 22
        return
    assert "output_dtype INT8 does not match y_zero_point type UINT8" in _runtime_defect(22)
    with pytest.raises(RuntimeLoadError) as info:
        _quantize(src, out, calib_dir, config=uncapped)
    message = str(info.value)
    assert "\n" not in message and not out.exists()
    assert (
        f"onnxruntime {compat.ORT_VERSION} writes QuantizeLinear output_dtype INT8 with a UINT8 zero point at opset 22"
        in message
    )
    assert "microsoft/onnxruntime#25526" in message and "--preset default" in message and "opset 20" in message


def test_the_defect_is_onnxruntimes_alone():
    """The four-node pattern loads at opset 20 everywhere: the cap is where Ultralytics' export puts it."""
    assert _runtime_defect(20) is None


def test_a_model_the_converter_cannot_take_down_stops_with_one_line(tmp_path, calib_dir, monkeypatch):
    def no_adapter(model, opset):
        raise RuntimeError("No Adapter From Version $22 for Foo")

    src = _saved(tmp_path, 22)
    monkeypatch.setattr(compat, "convert_opset", no_adapter)
    with pytest.raises(ModelError, match=r"opset 22 could not be converted to 20 \(No Adapter From .*opset=20"):
        _quantize(src, tmp_path / "int8.onnx", calib_dir, preset="ultralytics-ort")
    assert not (tmp_path / "int8.onnx").exists()
