"""Oriented boxes: rotated IoU against hand-computed cases, rotated NMS, pycocotools' scoring with rotated IoU, the
head found by structure (not by dfl-detect, not a YOLOX-shaped output), and the project's OBB fixture end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from pycocotools.coco import COCO

import graphs
from quantkit import heads, tasks
from quantkit.errors import DatasetError, ModelError
from quantkit.measure import metrics
from quantkit.measure.evaluate import ImageSet, coco_items, predict, score
from quantkit.measure.session import Runner
from quantkit.model import name_nodes
from quantkit.preprocess import Letterbox
from quantkit.tasks import obb
from quantkit.tasks.base import Detections

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODEL = FIXTURES / "models" / "shapes-v8n-obb-160x256.onnx"
ANN = FIXTURES / "data" / "val" / "annotations-obb.json"
OBB = tasks.get("obb")
NAMES = {0: "circle", 1: "rectangle", 2: "triangle", 3: "star", 4: "ring", 5: "cross"}


def box(cx, cy, w, h, degrees=0.0) -> np.ndarray:
    return obb.corners(np.array([[cx, cy, w, h, np.radians(degrees)]]))


# ---- rotated IoU, checked by hand ----------------------------------------------------------------------


def test_rotated_iou_matches_hand_computed_cases():
    # a square and the same square turned 45 degrees: their intersection is a regular octagon
    side = 2.0
    edge = side * (np.sqrt(2) - 1)  # the octagon's edge; its area 2 (1 + sqrt 2) edge^2
    octagon = 2 * (1 + np.sqrt(2)) * edge**2
    expected = octagon / (2 * side**2 - octagon)
    assert obb.polygon_iou(box(0, 0, 2, 2), box(0, 0, 2, 2, 45))[0, 0] == pytest.approx(expected, abs=1e-6)
    # two 4x1 bars crossing at right angles: a 1x1 overlap of 4 + 4 - 1
    assert obb.polygon_iou(box(0, 0, 4, 1), box(0, 0, 4, 1, 90))[0, 0] == pytest.approx(1 / 7, abs=1e-6)
    # the same bar shifted by half its length, turned together by 30 degrees: 2 / (4 + 4 - 2)
    turned = box(0, 0, 4, 1, 30), box(2 * np.cos(np.radians(30)), 2 * np.sin(np.radians(30)), 4, 1, 30)
    assert obb.polygon_iou(*turned)[0, 0] == pytest.approx(1 / 3, abs=1e-6)
    assert obb.polygon_iou(box(0, 0, 2, 2), box(10, 10, 2, 2))[0, 0] == 0.0
    # a rectangle and its corners reordered / turned by 180 degrees are the same rectangle
    assert obb.polygon_iou(box(5, 5, 6, 2, 20), box(5, 5, 6, 2, 200))[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_corners_follow_opencv_and_ultralytics_angle():
    import cv2

    xywhr = np.array([[50.0, 40.0, 30.0, 10.0, 0.5]])
    expected = cv2.boxPoints(((50, 40), (30, 10), np.degrees(0.5)))
    np.testing.assert_allclose(obb.corners(xywhr)[0], expected, atol=1e-4)


# ---- rotated NMS ---------------------------------------------------------------------------------------


def _output(rows: list[tuple], nc: int = 2, n: int = 20) -> np.ndarray:
    """A channels-first OBB output [1, 4+nc+1, n]: rows of (cx, cy, w, h, class, score, angle radians)."""
    out = np.zeros((1, 4 + nc + 1, n), np.float32)
    for k, (cx, cy, w, h, cls, s, a) in enumerate(rows):
        out[0, :4, k] = cx, cy, w, h
        out[0, 4 + cls, k] = s
        out[0, -1, k] = a
    return out


def test_rotated_nms_keeps_crossing_bars_that_axis_aligned_nms_would_merge():
    lb = Letterbox(scale=1.0, top=0, left=0, shape=(200, 200))
    bars = [(100, 100, 120, 10, 0, 0.9, np.radians(45)), (100, 100, 120, 10, 0, 0.8, np.radians(-45))]
    family = heads.family("obb")
    dets = family.decode([_output(bars)], lb, conf=0.25, iou=0.5, max_det=300, nc=2, nms="best_class")
    assert len(dets) == 2  # rotated IoU of the two bars ~0.04; their axis-aligned hulls are the same square
    assert metrics.tasks.base.box_iou(dets.boxes[:1].astype(float), dets.boxes[1:].astype(float))[0, 0] > 0.95
    same = [(100, 100, 120, 10, 0, 0.9, 0.3), (101, 100, 120, 10, 0, 0.8, 0.31), (101, 100, 120, 10, 1, 0.7, 0.31)]
    dets = family.decode([_output(same)], lb, conf=0.25, iou=0.5, max_det=300, nc=2, nms="best_class")
    assert dets.classes.tolist() == [0, 1] and dets.scores.tolist() == pytest.approx([0.9, 0.7])  # class-wise


def test_decode_maps_corners_back_through_the_letterbox():
    lb = Letterbox(scale=0.5, top=10, left=20, shape=(100, 200))  # input pixel = original * 0.5 + offset
    family = heads.family("obb")
    dets = family.decode([_output([(70, 35, 40, 20, 1, 0.9, 0.0)])], lb, 0.25, 0.7, 300, 2, "best_class")
    np.testing.assert_allclose(dets.fields["obb"][0], box(100, 50, 80, 40)[0], atol=1e-4)
    np.testing.assert_allclose(dets.boxes[0], [60, 30, 140, 70], atol=1e-4)


# ---- scoring: pycocotools with rotated IoU -----------------------------------------------------------------


def _coco(objects: list[np.ndarray]) -> COCO:
    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 200, "width": 200}],
        "categories": [{"id": 3, "name": "bar"}],
        "annotations": [
            {
                "id": k + 1,
                "image_id": 1,
                "category_id": 3,
                "bbox": [*obb.hull(c)[0, :2], *(obb.hull(c)[0, 2:] - obb.hull(c)[0, :2])],
                "area": 1.0,
                "iscrowd": 0,
                "obb": c.reshape(-1).tolist(),
            }
            for k, c in enumerate(objects)
        ],
    }
    coco.createIndex()
    return coco


def _dets(objects: list[np.ndarray]) -> Detections:
    points = np.concatenate(objects).astype(np.float32)
    return Detections(
        obb.hull(points).astype(np.float32),
        np.linspace(0.9, 0.5, len(objects)).astype(np.float32),
        np.zeros(len(objects), np.int64),
        {"obb": points},
    )


def test_rotated_map_scores_the_angle_where_the_box_hull_would_not():
    truth = [box(60, 60, 100, 10, 30), box(140, 140, 100, 10, -30)]
    gt = _coco(truth)
    perfect = metrics.coco_results({1: _dets(truth)}, [3], "obb", OBB)
    assert metrics.coco_map(gt, perfect, [1], [3], kind="obb", task=OBB)["map50_95"] == pytest.approx(1.0)
    mirrored = [box(60, 60, 100, 10, -30), box(140, 140, 100, 10, 30)]  # the same hulls, the other diagonal
    results = metrics.coco_results({1: _dets(mirrored)}, [3], "obb", OBB)
    assert metrics.coco_map(gt, results, [1], [3], kind="obb", task=OBB)["map50_95"] == 0.0
    assert metrics.coco_map(gt, results, [1], [3])["map50_95"] == pytest.approx(1.0)  # axis-aligned: blind to it


def test_parity_and_agreement_match_by_rotated_iou():
    truth = [box(60, 60, 100, 10, 30), box(140, 140, 100, 10, -30)]
    fp32, turned = _dets(truth), _dets([box(60, 60, 100, 10, 40), box(140, 140, 100, 10, -20)])
    report = metrics.parity([fp32], [turned], 0.25, 0.5, task=OBB)
    assert report["recall"] == 0.0  # 10 degrees off a 10:1 bar: rotated IoU ~0.4
    assert metrics.parity([fp32], [turned], 0.25, 0.5)["recall"] == 1.0  # axis-aligned IoU would pass it
    same = metrics.agreement_map({1: fp32}, {1: fp32}, {1: (200, 200)}, 1, task=OBB)
    assert same["map50_95"] == pytest.approx(1.0)
    assert metrics.agreement_map({1: fp32}, {1: turned}, {1: (200, 200)}, 1, task=OBB)["map50_95"] == 0.0


def test_annotations_without_oriented_boxes_are_a_dataset_error(tmp_path):
    coco, items = coco_items(
        FIXTURES / "data" / "val" / "annotations-first60.json", FIXTURES / "data" / "val" / "images"
    )
    images = ImageSet.load(items[:4], (160, 256))
    preds = predict(Runner(MODEL), images, 6)
    with pytest.raises(DatasetError, match=r'lack "obb".*obb model'):
        score(coco, preds, images, metrics.map_classes(coco, NAMES, None))


# ---- the head ------------------------------------------------------------------------------------------------


def test_fixture_head_is_found_as_obb_by_its_structure():
    model = onnx.load(str(MODEL))
    name_nodes(model)
    head = heads.find(model)
    assert head.family == "obb" and heads.family("obb").task == "obb"
    assert heads.family("pose").find(model) is None  # a Detect with one extra part, but the angle feeds the boxes
    del model.metadata_props[:]  # without Ultralytics' metadata the structure still says so
    assert heads.find(model).family == "obb"


def test_a_yolox_shaped_output_is_not_read_as_oriented_boxes():
    shape = [1, 4 + 1 + graphs.NC, 840]  # objectness + classes: the same channel count as an angle + classes
    with pytest.raises(ModelError, match="match no head family"):
        heads.for_outputs([shape], graphs.NC, model=graphs.tiny_yolox())
    assert heads.for_outputs([shape], graphs.NC, {"task": "obb"}).name == "obb"


def test_fixture_fp32_rotated_map_and_its_quantized_head_travel(tmp_path, calib_dir):
    from quantkit import quantize

    q = quantize(MODEL, tmp_path / "q.onnx", calib=calib_dir, progress=False, range_cache=False)
    assert q.head_family == "obb"
    meta = {p.key: p.value for p in onnx.load(q.output).metadata_props}
    assert meta[heads.HEAD_KEY] == "obb"
    coco, items = coco_items(ANN, FIXTURES / "data" / "val" / "images")
    images = ImageSet.load(items[:40], (160, 256))
    classes = metrics.map_classes(coco, NAMES)
    stats = score(coco, predict(Runner(MODEL), images, 6), images, classes)["metrics"]
    assert stats["task"] == "obb" and 0.25 < stats["map50_95"] < 0.6
