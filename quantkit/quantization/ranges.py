"""Activation ranges for static quantization: collected in batches, and cached by content.

onnxruntime's calibrator runs its augmented model (the model plus a ReduceMin/ReduceMax per
tensor) once per calibration image. quantkit hands it a copy of the model whose batch axis is
free, so MinMax ranges come from batches of up to ``BATCH`` images (fewer for large inputs,
``batch_size``): the same minima and maxima (a reduction over the batch is the reduction over the
images), a fraction of the session calls.

Memory stays flat in the number of images: onnxruntime's calibrators keep every intermediate output
of a ``collect_data`` call until it ends, so quantkit calls it once per batch and lets MinMax merge
its running minima and maxima after each one (``merge_range``). Histogram methods (entropy,
percentile) keep one image per call and get the histograms onnxruntime makes from all images at once,
without holding them: one pass finds each tensor's range, a second fills onnxruntime's own
HistogramCollector image by image, seeded with that range so no bin ever moves (``_histograms``).

The ranges are stored under a key of everything that decides them (the model onnxruntime
calibrates, the calibration tensors, the method and its options, the op types, onnxruntime's
version), so a second configuration of the same model and data, a repeated ``quantize`` or a
``tune`` run skips calibration entirely. They are stored as .npz arrays read with allow_pickle=False
and a JSON index (never pickle: a cache restored from elsewhere must not run code), as cache.py entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import io
import json
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from .. import cache, compat
from ..progress import Progress

BATCH = 16
# Images per MinMax batch at most, as pixels: 16 at the fixture's 192x320, 2 at 640x640. Larger batches of large
# images only grow onnxruntime's arena (8 GB at 16 x 640x640) and run no faster (benchmarks/calibration_memory.py).
BATCH_PIXELS = BATCH * 192 * 320
_PATCH_LOCK = threading.Lock()


def batch_free_copy(model: onnx.ModelProto, input_name: str) -> onnx.ModelProto | None:
    """``model`` with its batch axis free, or None where it cannot be freed safely.

    The image input and every intermediate shape get a symbolic batch; Reshape targets that pin
    the batch to 1 take it from their input instead (0). The caller verifies the copy.
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    image = next((i for i in graph.input if i.name == input_name), None)
    if image is None or image.type.tensor_type.shape.dim[0].dim_value != 1:
        return None
    for value in [image, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_value == 1:
            dims[0].Clear()
            dims[0].dim_param = "calibration_batch"
    shapes = {n.input[1] for n in graph.node if n.op_type == "Reshape" and len(n.input) > 1}
    for init in graph.initializer:
        if init.name in shapes:
            target = onnx.numpy_helper.to_array(init)
            if target.ndim == 1 and target.size > 1 and target[0] == 1:
                target = target.copy()
                target[0] = 0  # Reshape: 0 copies the input's dim (the batch)
                init.CopyFrom(onnx.numpy_helper.from_array(target, init.name))
    return copy


def batch_size(shape) -> int:
    """Images per calibration batch for inputs of ``shape`` ([n, C, H, W]): ``BATCH``, fewer where they are large."""
    pixels = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return max(1, min(BATCH, BATCH_PIXELS // max(pixels, 1)))


class _Source:
    """The calibration images as quantkit reads them: a CalibrationSet (uint8 pixels made float a batch at a
    time) or a float array; ``batches(size)`` in order, ``digest`` of the content."""

    def __init__(self, tensors):
        self._set = tensors if hasattr(tensors, "batches") else None
        self._array = None if self._set is not None else np.asarray(tensors)
        self.shape = (self._set.pixels if self._set is not None else self._array).shape

    def batches(self, size: int):
        if self._set is not None:
            yield from self._set.batches(size)
        else:
            for start in range(0, len(self._array), size):
                yield self._array[start : start + size]

    def digest(self) -> str:
        if self._set is not None:
            return _digest(self.shape, self._set.digest())
        # the tensors' bytes hashed in place (a memoryview, not a tobytes() copy): the same digest, less time
        return _digest(self.shape, hashlib.sha256(memoryview(np.ascontiguousarray(self._array)).cast("B")).digest())


def _batches_agree(original: str, batched: str, input_name: str, tensors: np.ndarray) -> bool:
    """The batch-free copy gives, on two images at once, what the model gives on each alone. Quiet: a copy that
    cannot run two images (NMS inside the graph reshapes to a fixed batch of 1) is an expected answer, not an error."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # fatal only: onnxruntime logs a failed Reshape as an error before raising it
    try:
        one = ort.InferenceSession(original, opts, providers=["CPUExecutionProvider"])
        two = ort.InferenceSession(batched, opts, providers=["CPUExecutionProvider"])
        pair = tensors[:2]
        joint = two.run(None, {input_name: pair})
        for i in range(len(pair)):
            alone = one.run(None, {input_name: pair[i : i + 1]})
            if any(not np.allclose(a[0], j[i], rtol=1e-4, atol=1e-4) for a, j in zip(alone, joint)):
                return False
        return True
    except Exception:  # noqa: BLE001 - any refusal means: calibrate one image at a time
        return False


class _One:
    """A CalibrationDataReader of one feed: one ``collect_data`` call per batch keeps one batch's outputs in memory."""

    def __init__(self, feed: dict):
        self._feed = feed

    def get_next(self) -> dict | None:
        feed, self._feed = self._feed, None
        return feed

    def rewind(self) -> None:  # pragma: no cover - onnxruntime does not rewind
        pass


class _Cached:
    """A calibrator that already knows its ranges: onnxruntime's quantize_static asks it for them."""

    def __init__(self, ranges):
        self._ranges = ranges

    def collect_data(self, data_reader) -> None:
        pass

    def compute_data(self):
        return self._ranges

    compute_range = compute_data  # the name before onnxruntime 1.16

    def __getattr__(self, name):  # clear_collected_data and the like: nothing to do
        return lambda *args, **kwargs: None


def encode_ranges(ranges) -> bytes:
    """onnxruntime's ranges (TensorsData from 1.16, a dict of tuples before) as .npz bytes: arrays only, with
    the tensor names, attribute names and method in a JSON string."""
    data = getattr(ranges, "data", ranges)
    index, arrays = (
        {
            "method": str(getattr(ranges, "calibration_method", "")),
            "tuples": not hasattr(ranges, "data"),
            "tensors": [],
        },
        {},
    )
    for i, (name, value) in enumerate(data.items()):
        attrs = (
            {str(k): v for k, v in enumerate(value)}
            if isinstance(value, tuple)
            else {k: getattr(value, k) for k in value._attrs}
        )
        index["tensors"].append([name, list(attrs)])
        arrays.update({f"{i}/{k}": np.asarray(v) for k, v in attrs.items()})
    buffer = io.BytesIO()
    np.savez(buffer, __index__=np.array(json.dumps(index)), **arrays)
    return buffer.getvalue()


def decode_ranges(blob: bytes):
    """``encode_ranges`` reversed, with allow_pickle=False: a crafted file is refused, never run."""
    from onnxruntime.quantization import calibrate

    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        index = json.loads(str(npz["__index__"]))
        values = {name: {k: npz[f"{i}/{k}"] for k in attrs} for i, (name, attrs) in enumerate(index["tensors"])}
    if index["tuples"]:
        return {name: tuple(v[str(k)] for k in range(len(v))) for name, v in values.items()}
    method = calibrate.CalibrationMethod[index["method"].rsplit(".", 1)[-1]]
    return calibrate.TensorsData(method, {name: calibrate.TensorData(**v) for name, v in values.items()})


def _cached_ranges(path: Path, notes: list[str] | None):
    """The ranges stored at ``path`` when the entry verifies and decodes; else None (discarded, noted)."""
    if cache.read(path, notes) is None:
        return None
    try:
        return decode_ranges(path.read_bytes())
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a record that matches, data that is not ours
        cache.discard(path)
        cache.note(notes, f"cache: ranges/{path.name} is not quantkit's range data ({exc}): discarded and rebuilt")
        return None


def _digest(*parts) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part if isinstance(part, bytes) else repr(part).encode())
        sha.update(b"|")
    return sha.hexdigest()[:24]


@contextlib.contextmanager
def fast_calibration(
    tensors,
    input_name: str,
    cache_dir: Path | None,
    events: list[str],
    notes: list[str] | None = None,
    progress: bool = False,
):
    """While active, onnxruntime's ``quantize_static`` calibrates through quantkit: batched where
    exact, in memory flat in the number of images, and from ``cache_dir`` where these ranges were collected
    before. ``tensors``: a CalibrationSet or a float array [n, C, H, W]. ``events`` receives
    "cached" or "batched"/"per image" for the caller's notes; ``notes`` what the cache had to say; ``progress``:
    calibration's progress on stderr (``quantkit.progress``)."""
    ort_quantize = importlib.import_module(
        "onnxruntime.quantization.quantize"
    )  # the package's `quantize` is a function
    real = ort_quantize.create_calibrator
    source = _Source(tensors)
    calib_digest = source.digest()

    def create_calibrator(
        model,
        op_types_to_calibrate=None,
        augmented_model_path="augmented_model.onnx",
        calibrate_method=None,
        *args,
        **kwargs,
    ):
        if isinstance(model, onnx.ModelProto):  # onnxruntime before 1.16 hands over the loaded model
            model_path = Path(augmented_model_path).with_name("calibration-source.onnx")
            onnx.save(model, str(model_path))
        else:
            model_path = Path(model)
        options = (sorted(op_types_to_calibrate or []), str(calibrate_method), args, sorted(kwargs.items(), key=str))
        key = _digest(model_path.read_bytes(), calib_digest, options, compat.ORT_VERSION)
        cached = cache_dir / f"{key}.npz" if cache_dir else None
        ranges = _cached_ranges(cached, notes) if cached else None
        if ranges is not None:
            events.append("cached")
            return _Cached(ranges)
        method_name = str(calibrate_method).rsplit(".", 1)[-1]
        target, size = model, None  # None: the caller's reader, at the model's own batch
        if method_name == "MinMax":
            free = batch_free_copy(onnx.load(str(model_path)), input_name)
            if free is not None:
                batched = model_path.with_name(model_path.stem + "-batch-free.onnx")
                onnx.save(free, str(batched))
                if _batches_agree(str(model_path), str(batched), input_name, next(source.batches(2))):
                    target, size = batched, batch_size(source.shape)
        events.append("batched" if size else "per image")
        calibrator = real(target, op_types_to_calibrate, augmented_model_path, calibrate_method, *args, **kwargs)
        if method_name == "MinMax":
            _optimized_session(calibrator)
        return _Collecting(calibrator, source, input_name, size, cached, notes, progress)

    with _PATCH_LOCK:
        ort_quantize.create_calibrator = create_calibrator
        try:
            yield
        finally:
            ort_quantize.create_calibrator = real


def _optimized_session(calibrator) -> None:
    """Run the augmented model with onnxruntime's full graph optimizations instead of none: less calibration
    inference time (benchmarks/calibration_speed.py), the same ranges (a min/max is exact under any schedule;
    only float rounding inside fused kernels moves, tests/test_ranges.py holds it)."""
    path, session = getattr(calibrator, "augmented_model_path", None), getattr(calibrator, "infer_session", None)
    if path and session is not None:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        calibrator.infer_session = ort.InferenceSession(str(path), opts, providers=session.get_providers())


class _Collecting:
    """onnxruntime's own calibrator, fed ``size`` images per call (or the caller's reader when None) one
    ``collect_data`` call at a time, so only one batch's outputs are ever held; stores what it computes."""

    def __init__(
        self,
        calibrator,
        source: _Source,
        input_name,
        size,
        cached: Path | None,
        notes: list[str] | None,
        progress: bool = False,
    ):
        self._calibrator, self._source, self._name, self._size = calibrator, source, input_name, size
        self._cached, self._notes, self._progress = cached, notes, progress

    def _feeds(self, data_reader, bar: Progress):
        """The calibration feeds, one at a time: quantkit's batches through the batch-free copy, else the reader's;
        each counted on ``bar`` (by its images) once the calibrator asks for the next."""
        feeds = ({self._name: batch} for batch in self._source.batches(self._size)) if self._size else None
        for feed in feeds or iter(data_reader.get_next, None):
            yield feed
            bar.update(_images(feed))

    def collect_data(self, data_reader) -> None:
        calibrator, n = self._calibrator, self._source.shape[0]
        if hasattr(calibrator, "collector") and callable(getattr(data_reader, "rewind", None)):
            _histograms(calibrator, data_reader, n, self._progress)
            return
        how = f"calibration ({f'batches of {self._size}' if self._size else 'one feed per inference'})"
        with Progress(how, n, "images", enabled=self._progress, announce=True) as bar:
            if hasattr(calibrator, "merge_range") and not getattr(calibrator, "moving_average", False):
                for feed in self._feeds(data_reader, bar):  # MinMax reduces each call's outputs and merges them
                    calibrator.collect_data(_One(feed))
            else:  # a moving average depends on how the outputs are grouped: onnxruntime's single call, as before
                calibrator.collect_data(_Batches(self._feeds(data_reader, bar)))

    def compute_data(self):
        compute = getattr(self._calibrator, "compute_data", None) or self._calibrator.compute_range
        ranges = compute()
        if self._cached is not None:
            cache.store_bytes(self._cached, encode_ranges(ranges), self._notes)
        return ranges

    compute_range = compute_data

    def __getattr__(self, name):
        return getattr(self._calibrator, name)


def _images(feed: dict) -> int:
    """Images in a calibration feed (its one input's batch)."""
    return next((len(v) for v in feed.values() if getattr(v, "ndim", 0)), 1)


class _Batches:
    """A CalibrationDataReader over an iterator of feeds."""

    def __init__(self, feeds):
        self._feeds = feeds

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


def _histograms(calibrator, data_reader, images: int = 0, progress: bool = False) -> None:
    """What onnxruntime's HistogramCalibrater.collect_data makes from all images in one call, one image in memory
    at a time.

    onnxruntime bins the outputs of all images together, over their joint range (the largest |value| for
    entropy and the asymmetric percentile, [min |value|, max |value|] for the symmetric one); collected image by
    image its HistogramCollector would grow that range as it goes and re-bin. So a first pass finds each
    tensor's minimum, maximum and value nearest zero; the collector is seeded with those three values, which
    set its range and bins to the joint ones; the second pass adds each image's outputs to bins that no longer
    move (np.histogram assigns each value to a bin alone); the seed's three counts are taken out at the end.
    tests/test_ranges_memory.py holds the result equal to onnxruntime's single call. ``images``, ``progress``: each
    pass's progress on stderr."""
    from onnxruntime.quantization import calibrate

    session = calibrator.infer_session
    names = [o.name for o in session.get_outputs()]
    wanted = [(i, name) for i, name in enumerate(names) if name in set(calibrator.tensors_to_calibrate)]
    low, high, near = {}, {}, {}
    data_reader.rewind()
    with Progress("calibration pass 1/2 (ranges)", images, "images", enabled=progress, announce=True) as bar:
        for feed in iter(data_reader.get_next, None):
            outputs = session.run(None, feed)
            for i, name in wanted:
                values = outputs[i].ravel()
                if values.size == 0:
                    continue
                nearest = values[np.nanargmin(np.abs(values))]
                low[name] = np.fmin(low.get(name, np.nanmin(values)), np.nanmin(values))
                high[name] = np.fmax(high.get(name, np.nanmax(values)), np.nanmax(values))
                near[name] = nearest if name not in near or abs(nearest) < abs(near[name]) else near[name]
            bar.update(_images(feed))
    if not low:
        raise ValueError("No data is collected.")
    if calibrator.collector is None:
        params = inspect.signature(calibrate.HistogramCollector.__init__).parameters
        calibrator.collector = calibrate.HistogramCollector(
            **{p: getattr(calibrator, p) for p in params if p != "self" and hasattr(calibrator, p)}
        )
    collector = calibrator.collector
    seeds = {name: np.array([low[name], high[name], near[name]], dtype=low[name].dtype) for name in low}
    collector.collect(seeds)
    seeded = {name: collector.histogram_dict[name][0].copy() for name in seeds}
    data_reader.rewind()
    with Progress("calibration pass 2/2 (histograms)", images, "images", enabled=progress, announce=True) as bar:
        for feed in iter(data_reader.get_next, None):
            outputs = session.run(None, feed)
            collector.collect({name: outputs[i] for i, name in wanted if name in seeds})
            bar.update(_images(feed))
    for name, counts in seeded.items():
        hist = collector.histogram_dict[name]
        if len(hist[0]) != len(counts):  # the range was not the joint one after all: say so rather than guess
            raise RuntimeError(f"calibration histogram of {name} moved after seeding ({len(counts)} -> {len(hist[0])})")
        collector.histogram_dict[name] = (hist[0] - counts, *hist[1:])
