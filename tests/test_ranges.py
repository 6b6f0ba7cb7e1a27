"""Activation ranges: batched collection equals one image at a time, and the range cache is reused."""

import importlib

import numpy as np
import onnx
from onnxruntime.quantization import calibrate

import graphs
from quantkit import quantize
from quantkit.quantization.calibration import load_calibration
from quantkit.quantization.ranges import fast_calibration


def _ranges(calibrator):
    """{tensor: (min, max)} from a calibrator of any release (TensorsData from 1.16, a dict before)."""
    data = (getattr(calibrator, "compute_data", None) or calibrator.compute_range)()
    items = data.data.items() if hasattr(data, "data") else data.items()
    return {
        name: tuple(np.asarray(v).ravel() for v in (t.range_value if hasattr(t, "range_value") else t)[:2])
        for name, t in items
    }


def test_batched_ranges_equal_per_image_ranges(tmp_path):
    model = graphs.save(graphs.tiny_yolo(), tmp_path / "tiny.onnx")
    calib = load_calibration(graphs.write_images(tmp_path / "calib", count=20), (32, 32), progress=False)
    alone = calibrate.create_calibrator(model, None, augmented_model_path=str(tmp_path / "alone.onnx"))
    alone.collect_data(calib.reader("images"))
    events = []
    ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")
    with fast_calibration(calib.tensors, "images", None, events):
        batched = ort_quantize.create_calibrator(
            model, None, str(tmp_path / "batched.onnx"), calibrate.CalibrationMethod.MinMax
        )
        batched.collect_data(None)
    assert events == ["batched"]
    expected, got = _ranges(alone), _ranges(batched)
    assert set(got) == set(expected) and len(got) > 10
    for name, (low, high) in expected.items():
        assert np.allclose(got[name][0], low, rtol=1e-5, atol=1e-6) and np.allclose(
            got[name][1], high, rtol=1e-5, atol=1e-6
        ), name


def test_second_configuration_reuses_the_ranges(tiny_model, calib_dir, tmp_path):
    cache = tmp_path / "ranges"
    first = quantize(tiny_model, tmp_path / "a.onnx", calib=calib_dir, range_cache=cache, progress=False)
    again = quantize(tiny_model, tmp_path / "b.onnx", calib=calib_dir, range_cache=cache, progress=False)
    other = quantize(
        tiny_model, tmp_path / "c.onnx", calib=calib_dir, range_cache=cache, format="qoperator", progress=False
    )
    assert any("batches of 16" in n or "one per inference" in n for n in first.notes)
    assert all(any("reused from the range cache" in n for n in q.notes) for q in (again, other))
    assert onnx.load(first.output).graph == onnx.load(again.output).graph  # same ranges, same model
    (entry,) = cache.glob("*.npz")  # one entry: the ranges as arrays, and their record
    assert sorted(cache.iterdir()) == [entry, entry.with_name(entry.name + ".meta.json")]
