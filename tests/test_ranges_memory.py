"""Calibration in bounded memory: collected a batch (MinMax) or an image (histograms) at a time, the ranges are
exactly those onnxruntime's own calibrator computes holding every intermediate output at once."""

import importlib

import numpy as np
import pytest
from onnxruntime.quantization import calibrate

import graphs
from quantkit.quantization import ranges
from quantkit.quantization.calibration import load_calibration
from quantkit.preprocess import list_images, preprocess, read_image

ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")  # the package's `quantize` is a function


@pytest.fixture
def calib(tmp_path):
    folder = graphs.write_images(tmp_path / "calib", count=12)
    return load_calibration(folder, (32, 32), progress=False)


def _ranges(data) -> dict:
    """{tensor: [arrays]} of a calibrator's result, any release (TensorsData from 1.16, a dict of tuples before)."""
    items = data.data.items() if hasattr(data, "data") else data.items()
    return {
        name: [np.asarray(v) for v in ((getattr(t, k) for k in t._attrs) if hasattr(t, "_attrs") else t)]
        for name, t in items
    }


def _compute(calibrator):
    return _ranges((getattr(calibrator, "compute_data", None) or calibrator.compute_range)())


def _assert_identical(got: dict, expected: dict) -> None:
    assert set(got) == set(expected) and len(got) > 10
    for name, values in expected.items():
        assert len(got[name]) == len(values), name
        for a, b in zip(got[name], values):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), (name, a, b)


def test_calibration_pixels_are_the_preprocessed_tensors(tmp_path, calib):
    """uint8 pixels made float a batch at a time: bit for bit what preprocess() gives each image."""
    files = list_images(tmp_path / "calib")
    expected = np.concatenate([preprocess(read_image(f), (32, 32))[0] for f in files])
    assert calib.pixels.dtype == np.uint8 and np.array_equal(calib.tensors, expected)
    assert np.array_equal(np.concatenate(list(calib.batches(5))), expected)
    assert np.array_equal(calib.reader("images", batch=5).get_next()["images"], expected[:5])


@pytest.mark.parametrize("extra", [{}, {"symmetric": True}])
def test_minmax_merged_batch_by_batch_equals_one_call(tmp_path, calib, extra):
    """The same batches through the same augmented model: onnxruntime's single collect_data call (every output
    held) and quantkit's call per batch (merged into running minima and maxima) give identical ranges."""
    model = graphs.save(graphs.tiny_yolo(), tmp_path / "tiny.onnx")
    free = ranges.batch_free_copy(graphs.tiny_yolo(), "images")
    batched = graphs.save(free, tmp_path / "free.onnx")
    method = calibrate.CalibrationMethod.MinMax
    one = calibrate.create_calibrator(batched, None, str(tmp_path / "one.onnx"), method, extra_options=extra)
    one.collect_data(ranges._Batches({"images": b} for b in calib.batches(5)))
    ours = calibrate.create_calibrator(batched, None, str(tmp_path / "ours.onnx"), method, extra_options=extra)
    calls = []
    real = ours.collect_data
    ours.collect_data = lambda reader: calls.append(1) or real(reader)
    collecting = ranges._Collecting(ours, ranges._Source(calib), "images", 5, None, None)
    collecting.collect_data(None)
    assert len(calls) == 3 and not ours.intermediate_outputs  # 12 images in 3 calls; nothing held after
    _assert_identical(_compute(collecting), _compute(one))
    # and through quantize's path (optimized session, batch-free copy) the ranges agree with one image a call
    alone = calibrate.create_calibrator(model, None, str(tmp_path / "alone.onnx"), method, extra_options=extra)
    alone.collect_data(calib.reader("images"))
    events = []
    with ranges.fast_calibration(calib, "images", None, events):
        fast = ort_quantize.create_calibrator(model, None, str(tmp_path / "fast.onnx"), method, extra_options=extra)
        fast.collect_data(calib.reader("images"))
    assert events == ["batched"]
    expected, got = _compute(alone), _compute(fast)
    assert set(got) == set(expected)
    for name, values in expected.items():
        assert all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(got[name], values)), name


@pytest.mark.parametrize(
    "method, extra",
    [
        ("Percentile", {}),  # symmetric: a histogram of |value| over [min |value|, max |value|]
        ("Percentile", {"symmetric": False, "num_bins": 512}),
        ("Entropy", {}),
        ("Entropy", {"num_bins": 64, "num_quantized_bins": 16}),
    ],
)
def test_histograms_image_by_image_equal_one_call(tmp_path, calib, method, extra):
    """Entropy and percentile through quantkit (two passes, one image in memory) against onnxruntime's own
    calibrator holding every image's outputs: the same histograms, bit for bit, so the same ranges."""
    model = graphs.save(graphs.tiny_yolo(), tmp_path / "tiny.onnx")
    method = calibrate.CalibrationMethod[method]
    one = calibrate.create_calibrator(model, None, str(tmp_path / "one.onnx"), method, extra_options=extra)
    one.collect_data(calib.reader("images"))
    events = []
    with ranges.fast_calibration(calib, "images", None, events):
        ours = ort_quantize.create_calibrator(model, None, str(tmp_path / "ours.onnx"), method, extra_options=extra)
        ours.collect_data(calib.reader("images"))
    assert events == ["per image"] and not ours.intermediate_outputs
    expected, got = one.collector.histogram_dict, ours.collector.histogram_dict
    assert set(got) == set(expected)
    for name, hist in expected.items():
        assert len(got[name]) == len(hist)
        for a, b in zip(got[name], hist):
            assert np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b), name
    _assert_identical(_compute(ours), _compute(one))


def test_histograms_collected_naively_image_by_image_would_differ(tmp_path, calib):
    """Why two passes: onnxruntime's collector fed one image at a time grows its range as it goes and re-bins,
    so its histograms (and ranges) are not those of one call; the test above would catch that path."""
    model = graphs.save(graphs.tiny_yolo(), tmp_path / "tiny.onnx")
    method = calibrate.CalibrationMethod.Percentile
    one = calibrate.create_calibrator(model, None, str(tmp_path / "one.onnx"), method)
    one.collect_data(calib.reader("images"))
    naive = calibrate.create_calibrator(model, None, str(tmp_path / "naive.onnx"), method)
    reader = calib.reader("images")
    for feed in iter(reader.get_next, None):
        naive.collect_data(ranges._One(feed))
    expected, got = one.collector.histogram_dict, naive.collector.histogram_dict
    assert any(not np.array_equal(got[n][0], expected[n][0]) for n in expected)
