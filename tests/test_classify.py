"""Classification: the head found by structure and kept float, the ranking decoded, top-1 / top-5 accuracy and top-1
agreement with their intervals, on the project's classification fixture and on planted faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from quantkit import heads, quantize, tasks
from quantkit.errors import DatasetError
from quantkit.manifest import THRESHOLDS
from quantkit.measure.evaluate import ImageSet, predict
from quantkit.measure.session import Runner
from quantkit.model import name_nodes
from quantkit.preprocess import Letterbox
from quantkit.tasks import classify
from quantkit.tasks.base import Detections

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODEL = FIXTURES / "models" / "shapes-v8n-cls-64.onnx"
VAL, CALIB = FIXTURES / "data" / "cls" / "val", FIXTURES / "data" / "cls" / "calib"
NAMES = {0: "circle", 1: "cross", 2: "rectangle", 3: "ring", 4: "star", 5: "triangle"}
TH = THRESHOLDS


def ranking(*classes: int, nc: int = 6) -> Detections:
    """One image's ranking with ``classes`` first (probabilities falling), then the rest."""
    order = list(classes) + [c for c in range(nc) if c not in classes]
    scores = np.linspace(0.9, 0.01, nc).astype(np.float32)
    return Detections(np.zeros((nc, 4), np.float32), scores, np.array(order, np.int64))


def test_head_is_the_softmax_the_linear_feeds_it():
    model = onnx.load(str(MODEL))
    name_nodes(model)
    head = heads.find(model)
    assert head.family == "classify" and heads.family("classify").task == "classify"
    by_name = {n.name: n.op_type for n in model.graph.node}
    assert [by_name[n] for n in head.nodes] == ["Softmax"] and [by_name[n] for n in head.feeding_convs] == ["Gemm"]


def test_decode_ranks_every_class():
    dets = heads.family("classify").decode(
        [np.array([[0.1, 0.6, 0.05, 0.2, 0.03, 0.02]], np.float32)],
        Letterbox(1.0, 0, 0, (64, 64)),
        0.25,
        0.7,
        300,
        6,
        "best_class",
    )
    assert dets.classes.tolist() == [1, 3, 0, 2, 4, 5] and dets.scores[0] == pytest.approx(0.6) and len(dets) == 6


def test_accuracy_and_agreement_with_their_intervals():
    labels = np.array([0, 1, 2, 3] * 25)
    fp32 = [ranking(int(lab)) for lab in labels]
    int8 = [ranking(int(lab)) if k % 10 else ranking((int(lab) + 1) % 6, int(lab)) for k, lab in enumerate(labels)]
    acc = classify.accuracy(fp32, int8, labels)
    assert acc["top1"]["fp32"] == 1.0 and acc["top1"]["int8"] == pytest.approx(0.9)
    assert acc["top1"]["drop_pt"] == pytest.approx(10.0) and acc["top1"]["ci"][0] > 4.0  # paired: every miss is INT8's
    assert acc["top5"]["drop_pt"] == 0.0 and acc["top5"]["ci"] == [0.0, 0.0]  # the label is still second
    agree = classify.agreement(fp32, int8)
    assert agree["top1_agreement"] == pytest.approx(0.9) and agree["top1_disagreements"] == 10
    assert agree["ci"]["top1_agreement"][0] < 0.9 < agree["ci"]["top1_agreement"][1]


def test_labelled_folders_map_to_classes_by_name(tmp_path):
    items = classify.labelled_images(VAL)
    assert len(items) == 300 and {c for _, c in items} == set(NAMES.values())
    assert classify.class_indices(["Circle", "star"], NAMES).tolist() == [0, 4]
    with pytest.raises(DatasetError, match=r"class folders \['hexagon'\] name no class"):
        classify.class_indices(["hexagon"], NAMES)
    (tmp_path / "a.jpg").write_bytes(b"")
    assert classify.labelled_images(tmp_path) is None  # a flat folder: unlabelled images


def _fixture_gates(int8_model: Path, images: ImageSet, labels) -> dict:
    fp32 = predict(Runner(MODEL), images, 6)
    int8 = predict(Runner(int8_model), images, 6)
    pairs = [fp32.dets[i] for i in images.ids], [int8.dets[i] for i in images.ids]
    return {r.metric: r for r in classify.TASK.pair_gates(*pairs, labels, TH, "cls")}


@pytest.fixture(scope="module")
def good_int8(tmp_path_factory):
    """The fixture quantized once for this module (quantkit's default preset)."""
    return quantize(MODEL, tmp_path_factory.mktemp("cls") / "good.onnx", calib=CALIB, progress=False, range_cache=False)


@pytest.fixture(scope="module")
def val_set():
    items = classify.labelled_images(VAL)
    images = ImageSet.load(list(enumerate(p for p, _ in items)), (64, 64))
    return images, classify.class_indices([c for _, c in items], NAMES)


def test_fixture_int8_passes_and_a_planted_fault_fails(tmp_path, val_set, good_int8):
    images, labels, good = *val_set, good_int8
    assert good.head_family == "classify" and heads.head_is_float(onnx.load(good.output), good.head_nodes)
    results = _fixture_gates(Path(good.output), images, labels)
    assert {m: r.outcome for m, r in results.items()} == dict.fromkeys(results, "pass")
    assert results["top1_drop_pt"].fp32 == pytest.approx(0.9633, abs=1e-4)
    # planted faults in the model quantized (FP32 stays the reference): an early Conv's weights x4 (62 of 300 images
    # change their top-1 class, top-1 falls 17.7 points; the label stays in the top 5); the last Conv's sign flipped
    # (the ranking reversed: top-5 falls 33 points too)
    for conv_name, factor, expected in (
        ("/model.2/cv2/conv/Conv", 4.0, {"top1_agreement", "top1_prob_drift_mean", "top1_drop_pt"}),
        ("/model.9/conv/conv/Conv", -1.0, {"top1_agreement", "top1_prob_drift_mean", "top1_drop_pt", "top5_drop_pt"}),
    ):
        model = onnx.load(str(MODEL))
        conv = next(n for n in model.graph.node if n.name == conv_name)
        init = next(i for i in model.graph.initializer if i.name == conv.input[1])
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * factor, init.name))
        onnx.save(model, str(tmp_path / "planted.onnx"))
        planted = quantize(tmp_path / "planted.onnx", tmp_path / "planted-int8.onnx", calib=CALIB, progress=False)
        failed = {m for m, r in _fixture_gates(Path(planted.output), images, labels).items() if r.outcome == "fail"}
        assert failed == expected, conv_name


def test_baseline_compares_a_classifier_on_top1():
    """--quantkit-compare on a classifier: its top-1 accuracy and top-1 agreement may not regress; box figures it
    never had are not asked for."""
    from quantkit import gates

    base = {
        "task": "classify",
        "int8_bytes": 1_000_000,
        "classification": {"top1_agreement": 0.99},
        "accuracy": {"top1": {"int8": 0.96}},
    }
    assert [r.outcome for r in gates.check_baseline(base, base, TH, "cls")] == ["pass"] * 3
    worse = {**base, "accuracy": {"top1": {"int8": 0.94}}, "classification": {"top1_agreement": 0.95}}
    failed = {r.metric for r in gates.check_baseline(worse, base, TH, "cls") if r.failed}
    assert failed == {"int8_top1_loss_pt", "top1_agreement_loss"}


def test_eval_scores_a_classifier_on_a_folder_per_class(run_cli):
    """`quantkit eval` without --ann on a classifier: top-1 / top-5 with the interval, per class (the model card's
    0.9633); a detector without --ann is a one-line error naming --ann."""
    code, out, _ = run_cli("eval", MODEL, "--images", VAL, "--json")
    stats = json.loads(out)
    assert code == 0 and stats["top1"] == pytest.approx(0.9633, abs=1e-4) and stats["top5"] == 1.0
    assert stats["top1_ci"][0] < 0.9633 < stats["top1_ci"][1] and stats["per_class"]["rectangle"] == 0.9
    detector = FIXTURES / "models" / "shapes-v8n-192x320.onnx"
    code, _, err = run_cli("eval", detector, "--images", FIXTURES / "data" / "val" / "images")
    assert code == 2 and "pass --ann" in err and "\n" not in err.strip()


def test_compare_gates_a_classifier_on_its_folders(good_int8, run_cli):
    """`quantkit compare` on a classifier: top-1 agreement and, the folders labelling the crops, top-1 / top-5
    accuracy, each gate decided; no box figure is asked for."""
    code, out, err = run_cli("compare", MODEL, good_int8.output, "--images", VAL, "--json")
    report = json.loads(out)
    assert code == 0, err
    assert report["task"] == "classify" and "agreement" not in report and "recall" not in report
    metrics = {g["metric"] for g in report["gates"]}
    assert {"validation_images", "top1_agreement", "top1_prob_drift_mean", "top1_drop_pt", "top5_drop_pt"} <= metrics
    assert not metrics & {"agreement_map50_95", "recall_of_fp32_detections", "fp32_detections"}
    code, out, _ = run_cli("compare", MODEL, good_int8.output, "--images", VAL)
    assert code == 0 and "top-1 agreement with FP32" in out and "verdict: pass" in out


@pytest.mark.slow
def test_check_reports_top1_columns_and_passes(tmp_path, run_cli):
    """(slow, ~20 s) `quantkit check` on the classification fixture: top-1 columns instead of mAP, exit 0."""
    out_dir = tmp_path / "report"
    code, out, err = run_cli("check", MODEL, "--calib", CALIB, "--val-images", VAL, "--out", out_dir, "--threads", "1")
    assert code == 0, err
    rows = json.loads((out_dir / "report.json").read_text())["rows"]
    assert "top-1" in rows[0] and "mAP50-95" not in rows[0]
    assert (out_dir / "latency_vs_map.png").exists() and "verdict: pass" in out


def test_a_classifier_sees_its_images_centre_cropped_not_letterboxed(tmp_path, monkeypatch):
    """Validation and calibration images reach a classifier as Ultralytics' classify_transforms give them: resized
    and centre-cropped (no 114 padding), while a detector's are letterboxed."""
    import cv2

    from quantkit.manifest import single_case
    from quantkit.pipeline import CasePipeline
    from quantkit.preprocess import centre_crop_image, read_image
    from quantkit.quantization import quantizer

    folder = tmp_path / "val" / "circle"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "wide.png"), np.random.default_rng(0).integers(0, 256, (48, 96, 3), dtype=np.uint8))
    pipe = CasePipeline(single_case(MODEL, val_images=tmp_path / "val").cases[0], cache_dir=tmp_path / "cache")
    expected = centre_crop_image(read_image(folder / "wide.png"), (64, 64))[0]
    assert pipe.task.name == "classify" and (pipe.images.boxed[0] == expected).all()
    fits = []
    real = quantizer.load_calibration
    monkeypatch.setattr(quantizer, "load_calibration", lambda *a, **k: fits.append(k["fit"]) or real(*a, **k))
    quantize(MODEL, tmp_path / "q.onnx", calib=CALIB, progress=False, range_cache=False)
    detector = FIXTURES / "models" / "shapes-v8n-192x320.onnx"
    quantize(detector, tmp_path / "d.onnx", calib=FIXTURES / "data" / "calib" / "images", calib_count=4, progress=False)
    assert [f.__name__ for f in fits] == ["centre_crop_image", "letterbox_image"]


def test_task_registry_names_every_ultralytics_task():
    assert tasks.NAMES == ("detect", "segment", "pose", "obb", "classify")
    assert {f.task for f in heads.FAMILIES} == set(tasks.NAMES)
