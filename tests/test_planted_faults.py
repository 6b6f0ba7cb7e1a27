"""Gate truth: one planted fault per gate metric, and exactly that metric fails, by name.

Each row of ``FAULTS`` builds the evidence a gate family sees (detections, a quantized graph, file
sizes, a results record, timings) with one fault planted, runs the whole family, and asserts that
the set of failed metrics is exactly the planted one. Rows marked (fixture) use the trained fixture
model and its val set; the rest use tiny graphs built here or synthetic detections. The plugin's
own refusals (a class map that matches nothing, unreadable calibration images) run through the
real suite in a nested pytest.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import graphs
from quantkit import gates
from quantkit import quantize
from quantkit.quantization.calibration import load_calibration
from quantkit.cpu import has_vnni
from quantkit.heads import Detections
from quantkit.measure.evaluate import Predictions, score
from quantkit.heads import find as find_head, head_is_float
from quantkit.manifest import THRESHOLDS, ConfigSpec
from quantkit.measure.metrics import ClassMap, parity
from quantkit.model import float_convs, model_bytes
from quantkit.pipeline import CasePipeline
from quantkit.quantization.quantizer import QuantResult
from quantkit.quantization.rewrite import REWRITES_KEY, decompose_softmax

TH = dict(THRESHOLDS)


def failed(results) -> set[str]:
    return {r.metric for r in results if r.failed}


def undecided(results) -> set[str]:
    return {r.metric for r in gates.undecided(results)}


# ---- detections: synthetic, so each fault moves one parity metric alone --------------------------


def base_detections(images: int = 100, per_image: int = 5, seed: int = 0) -> list[Detections]:
    """Well-separated boxes with scores in [0.4, 0.9]; every image's best is 0.9."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(images):
        xy = np.arange(per_image)[:, None] * 120.0 + rng.uniform(0, 10, (per_image, 2))
        boxes = np.hstack([xy, xy + 80]).astype(np.float32)
        scores = np.r_[0.9, rng.uniform(0.4, 0.85, per_image - 1)].astype(np.float32)
        out.append(Detections(boxes, scores, rng.integers(0, 3, per_image)))
    return out


def edit(dets, boxes=None, scores=None, keep=None, extra=None):
    """A copy of ``dets`` with per-image edits: ``fn(i, d) -> array`` for boxes/scores, keep-mask, extra boxes."""
    out = []
    for i, d in enumerate(dets):
        b, s, c = d.boxes.copy(), d.scores.copy(), d.classes.copy()
        if boxes:
            b = boxes(i, d)
        if scores:
            s = scores(i, d)
        if keep:
            mask = keep(i, d)
            b, s, c = b[mask], s[mask], c[mask]
        if extra and extra(i):
            b = np.vstack([b, b[:1] + 700])
            s, c = np.r_[s, np.float32(0.9)], np.r_[c, c[:1]]
        out.append(Detections(b.astype(np.float32), s.astype(np.float32), c))
    return out


def parity_row(make_int8, images: int = 300):
    """The parity gates of a planted INT8 on ``images`` images (enough that each planted fault's interval decides)."""
    fp32 = base_detections(images)
    return gates.check_parity(parity(fp32, make_int8(fp32)), TH, "planted")


PARITY_ROWS = {
    # INT8 loses 1 of 5 detections on 3 images in 4 (never the best): recall 0.85
    "recall_of_fp32_detections": lambda f: edit(f, keep=lambda i, d: np.arange(len(d)) != (4 if i % 4 else 99)),
    # INT8 adds a confident box FP32 does not have on every image: precision 5/6
    "precision_of_int8_detections": lambda f: edit(f, extra=lambda i: True),
    # every INT8 score 0.1 lower
    "score_drift_mean": lambda f: edit(f, scores=lambda i, d: d.scores - 0.1),
    # every INT8 box shifted by 8 px (80 px boxes): IoU ~0.8, still matched
    "matched_iou_mean": lambda f: edit(f, boxes=lambda i, d: d.boxes + 8),
    # on 1 image in 10 INT8's scores collapse under 0.44, half FP32's best (still matched; the mean drift stays
    # well under 0.05)
    "collapsed_image_fraction": lambda f: edit(
        f, scores=lambda i, d: np.minimum(d.scores, 0.44) if i % 10 == 0 else d.scores
    ),
    # one INT8 score above 1 (the head quantized onto the box scale)
    "max_class_score": lambda f: edit(f, scores=lambda i, d: np.r_[1.05 if i == 0 else d.scores[0], d.scores[1:]]),
}


@pytest.mark.parametrize("metric", PARITY_ROWS)
def test_parity_fault_fails_exactly_its_metric(metric):
    results = parity_row(PARITY_ROWS[metric])
    assert failed(results) == {metric} and not undecided(results), gates.failures(results) + gates.undecided_lines(
        results
    )
    assert metric in gates.failures(results)[0] and "planted" in gates.failures(results)[0]


@pytest.mark.parametrize("metric", [m for m in PARITY_ROWS if m != "max_class_score"])
def test_a_parity_fault_on_too_few_images_is_not_decided_never_passed(metric):
    """On 8 images a planted fault's interval holds the threshold (or it is decided): never a pass."""
    results = [r for r in parity_row(PARITY_ROWS[metric], images=8) if r.metric == metric]
    assert results[0].outcome in ("undecided", "fail")


def test_an_undecided_gate_says_how_many_more_images_would_decide():
    """Recall 0.85 on 8 images: its interval holds 0.90; the message gives the interval and the images."""
    recall = next(r for r in parity_row(PARITY_ROWS["recall_of_fp32_detections"], 12) if r.metric.startswith("recall"))
    assert recall.outcome == "undecided" and recall.more_images > 0
    line = recall.message()
    assert "not decided" in line and "CI95 [" in line and "holds the threshold" in line
    assert f"12 images: about {recall.more_images} more would decide" in line
    with pytest.raises(AssertionError, match="accuracy not decided: 12 images"):
        gates.assert_passed([recall])


def test_clean_parity_passes_and_no_evidence_is_not_decided():
    """Nothing detected by either model: nothing to decide on, so undecided (never a pass); an INT8 model that
    detects nothing where FP32 does fails."""
    assert failed(parity_row(lambda f: f)) == set() and undecided(parity_row(lambda f: f)) == set()
    empty = [Detections.empty()] * 3
    results = gates.check_parity(parity(empty, empty), TH, "planted/nothing")
    assert undecided(results) == {
        "recall_of_fp32_detections",
        "score_drift_mean",
        "matched_iou_mean",
        "collapsed_image_fraction",
    }
    assert failed(results) == {"precision_of_int8_detections"}
    assert all("not measured" in r.message() for r in results if not r.passed)
    blind = gates.check_parity(parity(base_detections(30), empty * 10), TH, "planted/blind")
    assert {"recall_of_fp32_detections", "collapsed_image_fraction"} <= failed(blind)


def test_threshold_crossings_are_counted_apart_not_lost():
    """One FP32 detection per image at 0.26 that INT8 scores 0.24 (every score 0.02 lower): a crossing of conf
    0.25 within the measured drift, reported with the conf that keeps it, neither lost nor a failed recall."""
    fp32 = edit(base_detections(300), scores=lambda i, d: np.r_[d.scores[:-1], 0.26])
    report = parity(fp32, edit(fp32, scores=lambda i, d: d.scores - 0.02))
    assert report["crossings"]["fp32_kept_int8_under_conf"] == 300
    assert report["crossings"]["int8_keeps_all_at_conf"] == pytest.approx(0.24)
    assert report["recall"] == 1.0 and report["fp32_count"] == 4 * 300
    results = gates.check_parity(report, TH, "planted/crossings")
    assert failed(results) == set() and undecided(results) == set(), gates.failures(results)
    assert "300 FP32 detections INT8 scores just under conf" in results[0].message()
    far = parity(fp32, edit(fp32, scores=lambda i, d: np.r_[d.scores[:-1] - 0.02, 0.10]))  # far under: lost
    assert far["crossings"]["fp32_kept_int8_under_conf"] == 0 and far["recall"] == pytest.approx(0.8)


@pytest.mark.parametrize("factor", [0.8, 0.5])
def test_scaled_scores_still_fail_with_crossings_counted(factor):
    """Scores x0.8 / x0.5: the measured drift is wide, so many lost detections count as crossings, yet the
    score-drift gate fails (and the run with it)."""
    results = parity_row(lambda f: edit(f, scores=lambda i, d: d.scores * factor))
    assert "score_drift_mean" in failed(results), gates.failures(results)


# ---- accuracy on the fixture ------------------------------------------------------------------


def accuracy_gates(pipe, preds, classes=None):
    int8 = score(pipe.coco[0], preds, pipe.images, classes or pipe.classes)["metrics"]
    th = {**TH, **pipe.case.thresholds}
    par = gates.check_parity(
        parity([pipe.predictions(None).dets[i] for i in pipe.images.ids], [preds.dets[i] for i in pipe.images.ids]),
        th,
        "planted",
    )
    return gates.check_map(pipe.map(None), int8, th, "planted")[1:] + par, int8


def test_map_drop_alone(fixture_pipeline):
    """(fixture) INT8 keeps every detection >= 0.25 (parity intact) and loses the low-confidence
    tail that the precision-recall sweep of mAP still counts."""
    fp32 = fixture_pipeline.predictions(None)
    tail_cut = Predictions(
        {i: edit([d], keep=lambda _, d: d.scores >= 0.25)[0] for i, d in fp32.dets.items()}, 0.0, 0.0
    )
    results, _ = accuracy_gates(fixture_pipeline, tail_cut)
    assert failed(results) == {"map50_95_drop_pt"}, gates.failures(results)


def test_fp32_floor_catches_a_wrong_class_mapping(fixture_pipeline):
    """(fixture) Class indices scored one category off: the FP32 model itself falls under the floor."""
    shifted = ClassMap(fixture_pipeline.classes.cat_ids[1:] + fixture_pipeline.classes.cat_ids[:1], "explicit")
    fp32 = score(fixture_pipeline.coco[0], fixture_pipeline.predictions(None), fixture_pipeline.images, shifted)[
        "metrics"
    ]
    results = gates.check_map(fp32, fp32, TH, "planted/classes")
    assert failed(results) == {"fp32_map50_95"}
    assert "setup is broken" in gates.failures(results)[0]


# ---- where the loss is, its error bars, the operating point: the numbers those gates see ---------

FP32_MAP = {"map50_95": 0.50, "aps": 0.30, "per_class": {"circle": 0.60, "star": 0.45, "ring": 0.50}}
CI = {
    "ci95": [0.2, 1.0],
    "ci": [0.2, 1.0],
    "level": 0.95,
    "halfwidth": 0.4,
    "resamples": 1000,
    "seed": 0,
    "images": 200,
}
ACCURACY_ROWS = {  # metric: (INT8 mAP, bootstrap, thresholds set)
    # drop 7 pt, its interval [4, 10] wholly over the 1.5 threshold
    "map50_95_drop_pt": ({"map50_95": 0.43}, {**CI, "ci": [4.0, 10.0]}, {}),
    # small objects lose 5 points while the whole set loses 0.6
    "map50_95_drop_pt_small": ({"map50_95": 0.494, "aps": 0.25}, CI, {"max_map_drop_pt_small": 2.0}),
    # one class ('star') loses 4 points
    "class_ap_drop_pt_worst": (
        {"map50_95": 0.494, "per_class": {"circle": 0.60, "star": 0.41, "ring": 0.50}},
        CI,
        {"max_class_ap_drop_pt": 2.0},
    ),
}


@pytest.mark.parametrize("metric", ACCURACY_ROWS)
def test_accuracy_fault_fails_exactly_its_metric(metric):
    int8, boot, th = ACCURACY_ROWS[metric]
    th = {**TH, **th}
    assert failed(gates.check_map(FP32_MAP, FP32_MAP, th, "planted", CI)) == set()
    results = gates.check_map(FP32_MAP, {**FP32_MAP, **int8}, th, "planted", boot, "best_class")
    assert failed(results) == {metric}, gates.failures(results)
    line = gates.failures(results)[0]
    assert "NMS best_class" in line
    if metric == "map50_95_drop_pt":
        assert "CI95 [4.0000, 10.0000]" in line
    if metric == "class_ap_drop_pt_worst":
        assert "worst class 'star'" in line


@pytest.mark.parametrize(
    "ci, outcome",
    [([0.2, 1.0], "pass"), ([0.3, 1.8], "undecided"), ([-1.0, 3.0], "undecided"), ([1.6, 2.2], "fail")],
)
def test_the_map_drop_is_decided_from_its_interval(ci, outcome):
    """Drop 0.6 pt against 1.5: an interval within the threshold passes, one holding it is not decided (with the
    images that would decide), one beyond it fails; the point alone never decides."""
    drop = gates.check_map(FP32_MAP, {**FP32_MAP, "map50_95": 0.494}, TH, "planted", {**CI, "ci": ci})[1]
    assert drop.outcome == outcome, drop.message()
    if outcome == "undecided":
        assert "holds the threshold" in drop.message() and drop.more_images > 0


def test_optional_accuracy_gates_are_off_by_default():
    """Small-object and per-class gates only exist when their thresholds are set below 100."""
    results = gates.check_map(FP32_MAP, {**FP32_MAP, "map50_95": 0.40}, TH, "planted", {**CI, "ci": [7.0, 13.0]})
    assert [r.metric for r in results] == ["fp32_map50_95", "map50_95_drop_pt"]
    assert failed(results) == {"map50_95_drop_pt"}


def _operating_point(images: int, matched: int, detections: int, annotations: int = 5) -> dict:
    """An operating point of ``images`` alike images, each with these counts (what metrics.operating_point returns)."""
    p, r = matched / detections, matched / annotations
    counts = {"matched": [matched] * images, "detections": [detections] * images, "annotations": [annotations] * images}
    return {"conf": 0.25, "precision": p, "recall": r, "f1": 2 * p * r / (p + r), "per_image": counts}


def test_f1_drop_alone():
    """200 images, INT8 finds 4 of 5 objects where FP32 finds 5 of 5: the F1 drop (11 pt) and all of its paired
    interval lie over 2 pt: FAILED. On 6 varied images a 3.3 pt drop's interval holds the threshold: not decided."""
    fp32 = _operating_point(200, 5, 5)
    assert failed(gates.check_operating_point(fp32, fp32, TH, "planted", 0.7)) == set()
    results = gates.check_operating_point(fp32, _operating_point(200, 4, 5), TH, "planted", 0.7)
    assert failed(results) == {"f1_drop_pt"} and "conf 0.25, NMS IoU 0.7" in gates.failures(results)[0]
    assert "CI95 [" in gates.failures(results)[0]
    varied = {**fp32, "per_image": {"matched": [5, 5, 5, 5, 5, 0], "detections": [5] * 6, "annotations": [5] * 6}}
    varied_int8 = {**fp32, "per_image": {"matched": [5, 5, 5, 5, 4, 0], "detections": [5] * 6, "annotations": [5] * 6}}
    varied.update(f1=50 / 60, precision=25 / 30, recall=25 / 30)
    varied_int8.update(f1=48 / 60, precision=24 / 30, recall=24 / 30)
    assert gates.check_operating_point(varied, varied_int8, TH, "planted")[0].outcome == "undecided"


def test_f1_of_an_int8_model_without_detections_fails(fixture_pipeline):
    """(fixture) INT8 detects nothing: F1 0 against FP32's 0.66 at conf 0.25."""
    fp32 = fixture_pipeline.operating_point(None)
    silent = metrics_op(fixture_pipeline, {i: Detections.empty() for i in fixture_pipeline.images.ids})
    results = gates.check_operating_point(fp32, silent, TH, "planted/silent", 0.7)
    assert failed(results) == {"f1_drop_pt"} and silent["f1"] == 0.0 and fp32["f1"] > 0.6


def metrics_op(pipe, dets):
    from quantkit.measure.metrics import operating_point

    return operating_point(pipe.coco[0], dets, pipe.classes.cat_ids, pipe.case.conf)


# ---- size, graph, inputs, baselines ------------------------------------------------------------


def size_gates(source, int8, head_nodes=()) -> list[gates.GateResult]:
    """The size gates of the file ``int8`` against its FP32 ``source``, with the figures a QuantResult reads from
    the INT8 graph (``QuantResult.weights``)."""
    q = QuantResult(str(source), str(int8), "planted", {}, model_bytes(source), model_bytes(int8), 0.0)
    q.head_nodes = list(head_nodes)
    return gates.check_size(q.source_bytes, q.output_bytes, TH, "planted", q.weights())


@pytest.fixture
def small_int8(tmp_path, calib_dir):
    """A small detector (82 KB of weights) whose head's float constants (anchors, strides: 12.8 KB at 160x160)
    are 30 % of its INT8 file, quantized with the default preset."""
    model = graphs.save(graphs.tiny_yolo(hw=(160, 160), widths=(32, 64)), tmp_path / "small.onnx")
    return model, quantize(model, tmp_path / "small.int8.onnx", calib=calib_dir, progress=False)


def test_size_passes_a_small_model_whose_head_weighs_a_lot(small_int8):
    """The whole file compresses 2.3x (the old rule, 3.3x of the file, failed it): the head's float constants
    and the graph do not shrink; its weights do, 3.7x, and decide."""
    model, q = small_int8
    results = size_gates(model, q.output, q.head_nodes)
    assert failed(results) == set(), gates.failures(results)
    weights = q.weights()
    assert q.compression < 3.3 and weights["head_float"] > 0.25 * q.output_bytes and weights["float_share"] == 0
    assert "weight_compression 3.6" in results[1].message() and "the file 2." in results[1].message()


@pytest.mark.parametrize("preset", ["qoperator", "weights", "dynamic", "naive", "ultralytics-ort"])
def test_size_reads_the_weights_of_every_format(preset, small_int8, calib_dir, tmp_path):
    """QLinearConv, ConvInteger and int8 weights behind DequantizeLinear are all read as quantized weights: the
    small model passes in every preset (the biases weights and dynamic keep float count as float weights)."""
    model, _ = small_int8
    q = quantize(model, tmp_path / f"{preset}.onnx", preset=preset, calib=calib_dir, progress=False)
    results = gates.check_size(q.source_bytes, q.output_bytes, TH, f"small/{preset}", q.weights())
    assert failed(results) == set(), gates.failures(results)
    assert q.weights()["compression"] > 3.5 and q.weights()["float_share"] < 0.02 and q.tensors["quantized"] > 0


def test_compression_alone(small_int8, tmp_path):
    """A good INT8 file carrying 1 MB outside its tensors (a metadata entry): only the whole-file floor sees it."""
    model, q = small_int8
    bloated = onnx.load(q.output)
    bloated.metadata_props.add(key="planted", value="x" * 1_000_000)
    results = size_gates(model, graphs.save(bloated, tmp_path / "bloated.onnx"), q.head_nodes)
    assert failed(results) == {"compression"}, [r.message() for r in results]


@pytest.mark.parametrize("how", ["fp32-saved-again", "nothing-the-config-quantizes", "conv-weights-left-float"])
def test_nothing_quantized_fails_both_size_metrics(how, small_int8, calib_dir, tmp_path):
    """The FP32 file saved as "INT8"; a config that quantizes nothing (MatMul only: the model has none); a QDQ
    model whose Conv weights were left float (activations still quantized): the weights compress 1.0x, the
    file at most 1.0x."""
    model, q = small_int8
    if how == "fp32-saved-again":
        planted = graphs.save(onnx.load(str(model)), tmp_path / "again.onnx")
    elif how == "nothing-the-config-quantizes":
        planted = quantize(model, tmp_path / "q.onnx", calib=calib_dir, op_types=("MatMul",), progress=False).output
    else:
        planted = graphs.save(dequantized_weights(onnx.load(q.output)), tmp_path / "float-weights.onnx")
    results = size_gates(model, planted, q.head_nodes)
    assert failed(results) == {"compression", "weight_compression"}, [r.message() for r in results]
    assert results[1].value == pytest.approx(1.0, abs=0.01) and results[0].value <= 1.0


def dequantized_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with every DequantizeLinear of an integer weight replaced by its float values."""
    inits = {t.name: t for t in model.graph.initializer}
    floats, dropped = [], []
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits and node.input[0] != node.output[0]:
            x, scale = (onnx.numpy_helper.to_array(inits[n]).astype(np.float32) for n in node.input[:2])
            zero = onnx.numpy_helper.to_array(inits[node.input[2]]).astype(np.float32) if len(node.input) > 2 else 0
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [-1 if i == axis else 1 for i in range(x.ndim)] if scale.ndim else []
            values = (x - np.reshape(zero, shape)) * np.reshape(scale, shape) if shape else (x - zero) * scale
            floats.append(onnx.numpy_helper.from_array(values.astype(np.float32), node.output[0]))
            dropped.append(node)
    for node in dropped:
        model.graph.node.remove(node)
    used = {n for node in model.graph.node for n in node.input}
    kept = [t for t in model.graph.initializer if t.name in used] + floats
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def test_weight_compression_alone(fixture_pipeline, tmp_path):
    """(fixture) Weights quantized, and a 2 MB float blob carried along (an initializer nothing reads): the file
    still reads 2.25x, over the floor; the weights' 3.89x falls to 2.75x."""
    q = fixture_pipeline.quantized(ConfigSpec("static-qdq", "default"))
    planted = onnx.load(q.output)
    planted.graph.initializer.append(onnx.numpy_helper.from_array(np.ones(500_000, np.float32), "planted_blob"))
    results = size_gates(fixture_pipeline.case.model, graphs.save(planted, tmp_path / "blob.onnx"), q.head_nodes)
    assert failed(results) == {"weight_compression"}, [r.message() for r in results]
    assert "% of the weights stay float" in gates.failures(results)[0]


def test_half_the_convs_quantized_fails_the_size_gate(fixture_case, tmp_path):
    """(fixture) Every other Conv excluded: 57 % of the weights' FP32 bytes stay float, the weights compress
    ~1.5x and the file ~1.4x: both fail, and the message says how much of the weights stayed float."""
    proto = onnx.load(str(fixture_case.model))
    convs = [n.name for n in proto.graph.node if n.op_type == "Conv"]
    q = quantize(
        fixture_case.model, tmp_path / "half.onnx", calib=fixture_case.calib, exclude=convs[::2], progress=False
    )
    results = gates.check_size(q.source_bytes, q.output_bytes, TH, "planted/half", q.weights())
    assert failed(results) == {"compression", "weight_compression"}, [r.message() for r in results]
    assert 0.4 < q.weights()["float_share"] < 0.7
    assert "% of the weights stay float: nodes left unquantized (--exclude" in gates.failures(results)[1]


def test_float_convs_alone(tiny_model, calib_dir, tmp_path):
    model = onnx.load(str(tiny_model))
    backbone = [n.name for n in model.graph.node if n.op_type == "Conv"][:2]
    result = quantize(tiny_model, tmp_path / "q.onnx", calib=calib_dir, exclude=backbone, progress=False)
    q = onnx.load(result.output)
    graph = {"float_convs": float_convs(q), "head_found": True, "head_float": head_is_float(q, result.head_nodes)}
    results = gates.check_graph(graph, result.config, TH, "planted/float-convs")
    assert failed(results) == {"float_convs"}
    assert "float_convs 3.0000 > 1.0000" in gates.failures(results)[0]


def test_head_float_alone(tiny_model, calib_dir, tmp_path):
    """The naive preset quantizes the head: judged against the head the default preset keeps float."""
    head = find_head(onnx.load(str(tiny_model)))
    result = quantize(tiny_model, tmp_path / "q.onnx", calib=calib_dir, preset="naive", progress=False)
    graph = {"float_convs": [], "head_found": True, "head_float": head_is_float(onnx.load(result.output), head.nodes)}
    config = {**result.config, "keep_head_float": True}
    assert failed(gates.check_graph(graph, config, TH, "planted/head")) == {"head_float"}


def test_head_found_alone():
    graph = {"float_convs": [], "head_found": False, "head_float": False}
    config = {"mode": "static", "keep_head_float": True}
    assert failed(gates.check_graph(graph, config, TH, "planted/no-head")) == {"head_found"}


def test_skipped_calibration_images_alone(calib_dir):
    for name in ("broken_1.jpg", "broken_2.jpg"):
        (calib_dir / name).write_bytes(b"not an image")
    calib = load_calibration(calib_dir, (32, 32), progress=False)
    results = gates.check_inputs("calib", len(calib.files), len(calib.skipped), TH, "planted/calib")
    assert failed(results) == {"calib_skipped_fraction"}
    assert "(calib images 8, unreadable 2)" in gates.failures(results)[0]


@pytest.mark.parametrize(
    "metric, skipped, mismatched", [("eval_skipped_fraction", 20, 0), ("eval_size_mismatch_fraction", 0, 20)]
)
def test_eval_image_faults_alone(metric, skipped, mismatched):
    assert failed(gates.check_inputs("eval", 180, skipped, TH, "planted/eval", mismatched)) == {metric}


BASELINE = {"int8_map50_95": 0.50, "agreement": {"map50_95": 0.95}, "parity": {"recall": 0.96}, "int8_bytes": 3_360_000}
BASELINE_ROWS = {
    "int8_map50_95_loss_pt": {"int8_map50_95": 0.49},
    "agreement_map50_95_loss": {"agreement": {"map50_95": 0.92}},
    "parity_recall_loss": {"parity": {"recall": 0.92}},
    "int8_size_growth": {"int8_bytes": 3_600_000},
}


@pytest.mark.parametrize("metric", BASELINE_ROWS)
def test_baseline_fault_fails_exactly_its_metric(metric):
    record = {**BASELINE, **BASELINE_ROWS[metric]}
    assert failed(gates.check_baseline(BASELINE, BASELINE, TH, "planted")) == set()
    assert failed(gates.check_baseline(record, BASELINE, TH, "planted")) == {metric}


def test_unlabelled_baseline_is_gated_on_agreement_and_a_missing_figure_fails():
    """A baseline saved without annotations has agreement, parity and size; a run that lost its agreement
    figure (or had mAP where the baseline had none) fails closed."""
    unlabelled = {k: v for k, v in BASELINE.items() if k != "int8_map50_95"}
    assert failed(gates.check_baseline(unlabelled, unlabelled, TH, "planted")) == set()
    assert failed(gates.check_baseline({**unlabelled, "agreement": {}}, unlabelled, TH, "planted")) == {
        "agreement_map50_95_loss"
    }
    assert failed(gates.check_baseline(BASELINE, unlabelled, TH, "planted")) == {"int8_map50_95_loss_pt"}


@pytest.mark.parametrize("growth", [1.4, 1.5])
def test_baseline_latency_growth_alone(growth):
    """On a VNNI CPU INT8 reads ~0.5x FP32: a 1.4x regression (0.70x) still passes the latency gate's 0.90,
    and the committed baseline is what fails it."""
    baseline = {"latency": {"ratio": 0.50}}
    assert failed([gates.check_baseline_latency(baseline, baseline, TH, "planted")]) == set()
    slower = {"latency": {"ratio": 0.50 * growth}}
    assert (
        gates.check_latency(
            {"ep": "cpu", "fp32_ms": 10.0, "int8_ms": 5.0 * growth, "ratio": slower["latency"]["ratio"]}, TH, "planted"
        ).passed
        or not has_vnni()
    )
    assert failed([gates.check_baseline_latency(slower, baseline, TH, "planted")]) == {"latency_ratio_growth"}


@pytest.mark.parametrize("ratio, verdict", [(1.0, "passed"), (1.9, "no gain"), (2.5, "FAILED")])
def test_the_size_only_cap_fails_a_catastrophic_slowdown(ratio, verdict):
    """A size-only config is reported "no gain" while slower than FP32 up to its cap, and fails beyond it,
    whatever the CPU class (its own threshold, not the per-CPU one)."""
    result = gates.check_latency(
        {"ep": "cpu", "fp32_ms": 10.0, "int8_ms": 10.0 * ratio, "ratio": ratio}, TH, "planted/size-only", size_only=True
    )
    assert result.verdict == verdict and "max_latency_ratio_size_only" in result.message(), result.message()


# ---- latency (fixture) -------------------------------------------------------------------------


@pytest.mark.slow  # fixture latency timing / nested pytest sessions: `pytest -m slow` (CI runs it)
def test_latency_gate_fails_an_int8_model_slower_than_fp32(fixture_case, tmp_path):
    """(fixture) The "INT8" model is FP32 plus a side branch of full-resolution Convs: several times
    slower, and the gate says so on every CPU class (size_only would cap it at 2x, and fails too)."""
    slow = graphs.save(graphs.slowed(onnx.load(str(fixture_case.model))), tmp_path / "slow.onnx")
    spec = ConfigSpec("planted-slow", "default")  # the planted model stands in for INT8
    pipe = CasePipeline(fixture_case, threads=1, model_paths=lambda s: slow if s is spec else fixture_case.model)
    result, measured = pipe.latency_gate(spec, 1, TH, "planted/slow/cpu/1t")
    assert not result.passed and measured["ratio"] > 2.0, result.message()
    assert result.message().startswith("latency gate FAILED: int8/fp32") and "CPU" in result.message()


@pytest.mark.slow  # fixture latency timing / nested pytest sessions: `pytest -m slow` (CI runs it)
def test_the_softmax_rewrite_cannot_pass_for_an_int8_gain(fixture_case, tmp_path):
    """(fixture) The planted "INT8" model is FP32 with only quantkit's Softmax rewrite (faster than the
    source FP32, not quantized at all): the gate times it against FP32 with the same rewrite, where it
    gains nothing; without the rewrite's mark, the source FP32 stays the reference."""
    planted = onnx.load(str(fixture_case.model))
    decompose_softmax(planted)
    planted.metadata_props.add(key=REWRITES_KEY, value="softmax:/model.22/dfl/Softmax")
    rewritten_only = graphs.save(planted, tmp_path / "rewritten-only.onnx")
    spec = ConfigSpec("planted-rewrite", "default")
    pipe = CasePipeline(
        fixture_case,
        cache_dir=tmp_path / "cache",
        threads=1,
        model_paths=lambda s: rewritten_only if s is spec else fixture_case.model,
    )
    reference = pipe.fp32_reference(spec)
    assert reference != fixture_case.model and not any(
        n.op_type == "Softmax" for n in onnx.load(str(reference)).graph.node
    )
    vnni = {**TH, "max_latency_ratio_cpu": TH["max_latency_ratio_cpu_vnni"]}  # the gate a VNNI CPU applies, anywhere
    result, measured = pipe.latency_gate(spec, 1, vnni, "planted/rewrite/cpu/1t")
    assert not result.passed and "same Softmax rewrite" in result.message(), result.message()
    assert 0.8 < measured["ratio"] < 1.25, result.message()
    unmarked = graphs.save(onnx.load(str(fixture_case.model)), tmp_path / "unmarked.onnx")
    pipe = CasePipeline(
        fixture_case,
        cache_dir=tmp_path / "cache",
        threads=1,
        model_paths=lambda s: unmarked if s is spec else fixture_case.model,
    )
    assert pipe.fp32_reference(spec) == fixture_case.model


# ---- the plugin's own refusals, through the real suite -------------------------------------------


@pytest.mark.slow  # a nested pytest session: `pytest -m slow` (CI runs it)
def test_class_map_mismatch_stops_the_suite(fixture_case, tmp_path, run_suite):
    data = json.loads(fixture_case.coco_ann.read_text())
    for i, category in enumerate(data["categories"]):
        category["name"] = f"class_{i}"
    ann = tmp_path / "foreign.json"
    ann.write_text(json.dumps(data))
    proc = run_suite(
        tmp_path,
        "--quantkit-model",
        fixture_case.model,
        "--quantkit-coco-images",
        fixture_case.coco_images,
        "--quantkit-coco-ann",
        ann,
        "-k",
        "compression",
    )
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "no overlap at all" in proc.stderr and "--quantkit-class-map" in proc.stderr


@pytest.mark.slow  # a nested pytest session: `pytest -m slow` (CI runs it)
def test_unreadable_calibration_images_fail_the_suite(tmp_path, calib_dir, run_suite):
    model = graphs.save(graphs.tiny_yolo(metadata={"names": "{0: 'a', 1: 'b'}"}), tmp_path / "tiny.onnx")
    (calib_dir / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    proc = run_suite(
        tmp_path,
        "--quantkit-model",
        model,
        "--quantkit-calib",
        calib_dir,
        "--quantkit-cache-dir",
        tmp_path / "cache",
        "-k",
        "calibration_images_readable and static-qdq",
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    # without other validation images one of the 7 is held out of calibration (split_folder): 6 left, 1 unreadable
    assert "inputs gate FAILED: calib_skipped_fraction 0.1667 > 0.0500 (calib images 6, unreadable 1)" in proc.stdout
