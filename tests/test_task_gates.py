"""Gate truth for segmentation and pose heads: one planted fault per new metric, and exactly that
metric fails, by name, with its numbers; the paired bootstrap reproduces pycocotools' mask and keypoint
mAP from its per-image matches.

Synthetic detections on synthetic annotations (no model): FP32 finds every object with its exact mask
and keypoints; INT8 is FP32 with one thing changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import types

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from quantkit import gates, tasks
from quantkit.heads import Detections, pose, segment
from quantkit.manifest import THRESHOLDS
from quantkit.measure import bootstrap
from quantkit.measure.evaluate import ImageSet, Predictions, score
from quantkit.measure.metrics import ClassMap, coco_results, parity

TH = dict(THRESHOLDS)
H, W, K = 240, 320, 5
CATS = [3, 8]


def failed(results) -> set[str]:
    return {r.metric for r in results if not r.passed}


def ellipse(box) -> np.ndarray:
    """The filled ellipse inscribed in ``box`` (xyxy) on an H x W canvas."""
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    cx, cy, rx, ry = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    return (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1).astype(np.uint8)


def rle(mask) -> dict:
    r = mask_utils.encode(np.asfortranarray(mask))
    return {"size": r["size"], "counts": r["counts"].decode("ascii")}


def keypoints(box) -> np.ndarray:
    """Centre, top, right, bottom, left of the inscribed ellipse, visible."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    pts = [(cx, cy), (cx, box[1]), (box[2], cy), (cx, box[3]), (box[0], cy)]
    return np.array([(x, y, 0.95) for x, y in pts], np.float32)


def scene(images: int = 60, seed: int = 0):
    """(COCO ground truth, FP32 detections): 4 well separated objects per image, found exactly, plus one
    low-scored false positive per image so that the precision-recall curves are not trivial."""
    rng = np.random.default_rng(seed)
    coco = {
        "images": [],
        "annotations": [],
        "categories": [{"id": c, "name": f"c{c}", "keypoints": list("abcde")} for c in CATS],
    }
    dets = {}
    for image_id in range(1, images + 1):
        coco["images"].append({"id": image_id, "file_name": f"{image_id}.jpg", "height": H, "width": W})
        boxes = []
        for j in range(4):
            x0, y0 = 10 + 78 * j + rng.uniform(0, 6), rng.uniform(20, 120)
            boxes.append([x0, y0, x0 + rng.uniform(40, 64), y0 + rng.uniform(40, 100)])
        classes = rng.integers(0, 2, 4)
        for box, cls in zip(boxes, classes):
            m = ellipse(box)
            kp = keypoints(box)
            kp[:, 2] = 2
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": CATS[cls],
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "area": float(m.sum()),
                    "iscrowd": 0,
                    "segmentation": rle(m),
                    "keypoints": kp.reshape(-1).tolist(),
                    "num_keypoints": K,
                }
            )
        fp = [5.0, 180.0, 45.0, 230.0]
        all_boxes = np.array(boxes + [fp], np.float32)
        dets[image_id] = Detections(
            all_boxes,
            np.r_[rng.uniform(0.5, 0.95, 4), 0.3].astype(np.float32),
            np.r_[classes, 0].astype(np.int64),
            {"masks": [rle(ellipse(b)) for b in all_boxes], "keypoints": np.stack([keypoints(b) for b in all_boxes])},
        )
    gt = COCO()
    gt.dataset = coco
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt, dets


@pytest.fixture(scope="module")
def world():
    return scene()


def edit(dets: dict, masks=None, kpts=None) -> dict:
    """A copy with every mask replaced by ``masks(box)`` and every keypoint set moved by ``kpts(box, k)``."""
    out = {}
    for i, d in dets.items():
        m = [rle(masks(b)) for b in d.boxes] if masks else list(d.fields["masks"])
        k = d.fields["keypoints"]
        k = np.stack([kpts(b, kk) for b, kk in zip(d.boxes, k)]) if kpts else k.copy()
        out[i] = Detections(d.boxes.copy(), d.scores.copy(), d.classes.copy(), {"masks": m, "keypoints": k})
    return out


def shrunk(box, by: float = 0.3):
    """The ellipse of a box shrunk by ``by`` of its size about its centre: mask IoU (1 - by)^2 ~ 0.5."""
    cx, cy, w, h = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]
    return ellipse([cx - w * (1 - by) / 2, cy - h * (1 - by) / 2, cx + w * (1 - by) / 2, cy + h * (1 - by) / 2])


def moved(box, k, by: float = 0.25):
    """Keypoints moved right by ``by`` of sqrt(box area)."""
    k = k.copy()
    k[:, 0] += by * np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
    return k


# ---- parity: mask IoU and keypoint distance of matched detections ---------------------------------------


@dataclasses.dataclass
class Judged:
    """What the registry's gates read of a case pipeline, from measurements made here: a task's parity report,
    FP32 / INT8 scores and their paired bootstraps."""

    task: tasks.Task
    report: dict | None = None
    scores: tuple[dict, dict] = ({}, {})
    boots: dict = dataclasses.field(default_factory=dict)
    evidence, annotated, case = "annotated", True, types.SimpleNamespace(nms="best_class")

    def parity(self, spec):
        return self.report

    def map(self, spec):
        return self.scores[spec is not None]

    def map_bootstrap(self, spec, kind=None):
        return self.boots[kind]


def registered(judged: Judged, *tags: str, th=None) -> list:
    return gates.run(gates.Target(judged, "int8", {**TH, **(th or {})}, "planted"), *tags)


def parity_gates(fp32: dict, int8: dict):
    """The parity gates of the pair as a segmentation and as a pose model (the world carries masks and keypoints)."""
    ids = sorted(fp32)
    a, b = [fp32[i] for i in ids], [int8[i] for i in ids]
    reports = {t: parity(a, b, task=tasks.get(t)) for t in ("segment", "pose")}
    return gates.check_parity(reports["segment"], TH, "planted") + [
        r for t, report in reports.items() for r in registered(Judged(tasks.get(t), report), "task")
    ]


PARITY_ROWS = {
    "matched_mask_iou_mean": lambda d: edit(d, masks=shrunk),  # same boxes and scores, masks ~half the area
    "matched_keypoint_distance_mean": lambda d: edit(d, kpts=moved),  # keypoints 25 % of the box size off
}


@pytest.mark.parametrize("metric", PARITY_ROWS)
def test_task_parity_fault_fails_exactly_its_metric(world, metric):
    _, fp32 = world
    assert failed(parity_gates(fp32, fp32)) == set()
    results = parity_gates(fp32, PARITY_ROWS[metric](fp32))
    assert failed(results) == {metric}, gates.failures(results)
    line = gates.failures(results)[0]
    assert metric in line and "planted" in line and "onnxruntime" in line
    if metric == "matched_mask_iou_mean":  # the pairs it judged and the worst of them
        assert "(matched pairs 300, lowest mask IoU 0.4" in line
    else:
        assert "300 matched pairs; distance / sqrt(FP32 box area)" in line and "0.25" in line


def test_task_parity_is_absent_for_a_detector_and_not_passed_unmeasured(world):
    _, fp32 = world
    boxes_only = {i: Detections(d.boxes, d.scores, d.classes) for i, d in fp32.items()}
    assert {r.metric for r in parity_gates(boxes_only, boxes_only)} & {
        "matched_mask_iou_mean",
        "matched_keypoint_distance_mean",
    } == set()
    silent = {
        i: Detections(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            {"masks": [], "keypoints": np.zeros((0, K, 3), np.float32)},
        )
        for i in fp32
    }
    results = parity_gates(fp32, silent)
    assert {"matched_mask_iou_mean", "matched_keypoint_distance_mean"} <= failed(results)
    assert all("not measured" in r.message() for r in results if r.metric.startswith("matched_"))


# ---- mask and keypoint mAP: their drop, its paired CI95, the bootstrap's exactness -----------------------


def scored(gt, dets: dict, family):
    images = ImageSet((H, W), sorted(dets), [], [])
    preds = Predictions(dets, 0.0, 0.0, family)
    return score(gt, preds, images, ClassMap(CATS, "explicit"))


def evidence(gt, fp32: dict, int8: dict, family) -> dict:
    """What the mAP gates see of a (FP32, INT8) pair: both models' scores and the paired bootstraps of the
    box drop and of the family's mask / keypoint drop."""
    iou_type, ids = family.scored_on[1], sorted(fp32)
    a, b = scored(gt, fp32, family), scored(gt, int8, family)
    label = "mask" if iou_type == "segm" else "keypoints"
    tables = [bootstrap.MatchTable.from_evaluator(s["evaluators"][iou_type], ids) for s in (a, b)]
    box = [bootstrap.MatchTable.from_evaluator(s["evaluator"], ids) for s in (a, b)]
    return {
        "a": a["metrics"],
        "b": b["metrics"],
        "box": bootstrap.paired_drop(*box, resamples=300),
        "boot": {label: bootstrap.paired_drop(*tables, resamples=300)},
        "family": family,
    }


def task_gates(ev: dict, th=None) -> list:
    task = tasks.get(ev["family"].task)
    kind = task.scored_on[1]
    judged = Judged(task, scores=(ev["a"], ev["b"]), boots={kind: ev["boot"][task.label(kind)]})
    return gates.check_map(ev["a"], ev["b"], {**TH, **(th or {})}, "planted", ev["box"]) + registered(
        judged, "task mAP", th=th
    )


TASK_MAP_ROWS = {  # metric: (family, INT8 edit)
    "mask_map50_95_drop_pt": (segment.FAMILY, lambda d: edit(d, masks=lambda b: shrunk(b, 0.08))),
    # OKS with 1/K sigmas forgives a lot: keypoints 25 % of the box size off still score OKS ~0.78
    "keypoints_map50_95_drop_pt": (pose.FAMILY, lambda d: edit(d, kpts=lambda b, k: moved(b, k, 0.25))),
}


@pytest.fixture(scope="module")
def planted(world):
    """metric -> (clean pair's evidence, faulty pair's evidence), each scored once for the tests below."""
    gt, fp32 = world
    return {
        metric: (evidence(gt, fp32, fp32, family), evidence(gt, fp32, make_int8(fp32), family))
        for metric, (family, make_int8) in TASK_MAP_ROWS.items()
    }


@pytest.mark.parametrize("metric", TASK_MAP_ROWS)
def test_task_map_fault_fails_exactly_its_metric(planted, metric):
    clean, faulty = planted[metric]
    results = task_gates(clean)
    assert failed(results) == set() and metric in {r.metric for r in results}
    results = task_gates(faulty)
    assert failed(results) == {metric}, gates.failures(results)  # boxes, untouched, pass
    label = metric.split("_map50")[0]
    f, q = faulty["a"][label]["map50_95"], faulty["b"][label]["map50_95"]
    assert f > 0.8 and f - q > 0.05  # the fault is visible in the figure itself, not only in the gate
    lo, hi = faulty["boot"][label]["ci"]
    line = gates.failures(results)[0]
    assert f"FP32 {f:.4g}, INT8 {q:.4g}), CI95 [{lo:.4f}, {hi:.4f}], NMS best_class" in line and "planted" in line
    assert lo > 1.5  # 60 images resolve it: the interval lies wholly above the threshold


@pytest.mark.parametrize("family", [segment.FAMILY, pose.FAMILY], ids=["segm", "keypoints"])
def test_bootstrap_reproduces_pycocotools_mask_and_keypoint_map(world, family):
    """Every image weight 1 is pycocotools' accumulate exactly, for masks and keypoints as for boxes; an INT8
    model with no detection at all bootstraps against the annotations alone (its mAP 0 on every resample)."""
    gt, fp32 = world
    iou_type = family.scored_on[1]
    label = "mask" if iou_type == "segm" else "keypoints"
    result = scored(gt, edit(fp32, masks=lambda b: shrunk(b, 0.05), kpts=lambda b, k: moved(b, k, 0.2)), family)
    table = bootstrap.MatchTable.from_evaluator(result["evaluators"][iou_type], sorted(fp32))
    assert table.map50_95(np.ones(len(fp32)))[0] == pytest.approx(result["metrics"][label]["map50_95"], abs=1e-9)
    assert 0.3 < result["metrics"][label]["map50_95"] < 0.99
    task = tasks.get(family.task)
    nothing = coco_results({}, CATS, iou_type, task)
    empty = bootstrap.MatchTable.from_results(gt, nothing, sorted(fp32), CATS, iou_type, task)
    drop = bootstrap.paired_drop(table, empty, resamples=200)
    full = 100 * result["metrics"][label]["map50_95"]
    assert drop["ci95"][0] == pytest.approx(full, abs=6) and drop["ci95"][1] == pytest.approx(full, abs=6)


def test_two_empty_masks_are_no_evidence_of_mask_parity():
    """A matched pair whose masks are both empty has no IoU (pycocotools reads 0/0 as 0): left out, not a 0."""
    box = np.array([[10, 10, 60, 60]], np.float32)
    full, empty = rle(ellipse(box[0])), rle(np.zeros((H, W), np.uint8))
    a = Detections(np.r_[box, box + 100], np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64))
    a.fields["masks"] = [full, empty]
    b = Detections(a.boxes.copy(), a.scores.copy(), a.classes.copy(), {"masks": [full, empty]})
    pairs = [(0.9, 0.9, 1.0, 0, 0), (0.8, 0.8, 1.0, 1, 1)]
    segment_task = tasks.get("segment")
    assert segment_task.pair_figures(a, b, pairs) == {"mask_iou": [1.0]}
    emptied = Detections(b.boxes, b.scores, b.classes, {"masks": [empty, empty]})
    assert segment_task.pair_figures(a, emptied, pairs) == {"mask_iou": [0.0]}


@pytest.mark.parametrize("kind", ["mask", "keypoints"])
def test_baseline_catches_a_mask_or_keypoint_map_regression(kind):
    """--quantkit-compare: the INT8 mask / keypoint mAP may lose at most ``baseline_map_drop_pt`` against the
    baseline's."""
    base = {
        "int8_map50_95": 0.50,
        "agreement": {"map50_95": 0.95},
        "parity": {"recall": 0.97},
        "int8_bytes": 3_000_000,
        kind: {"int8_map50_95": 0.45},
        "task": {"mask": "segment", "keypoints": "pose"}[kind],
    }
    assert failed(gates.check_baseline(base, base, TH, "planted")) == set()
    worse = {**base, kind: {"int8_map50_95": 0.43}}
    results = gates.check_baseline(worse, base, TH, "planted")
    assert failed(results) == {f"int8_{kind}_map50_95_loss_pt"}
    assert "(baseline 0.45, now 0.43)" in gates.failures(results)[0]
    unmeasured = {k: v for k, v in base.items() if k != kind}
    assert failed(gates.check_baseline(unmeasured, base, TH, "planted")) == {f"int8_{kind}_map50_95_loss_pt"}
