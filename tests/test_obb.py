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


def test_nearly_identical_boxes_overlap_fully():
    """OpenCV's intersectConvexConvex reads ~0 for some boxes 1e-5 px apart (22 of 2000); the clipping does not."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        b = obb.corners(np.r_[rng.uniform(20, 200, 2), rng.uniform(5, 80, 2), rng.uniform(-1, 2)][None])
        assert obb.polygon_iou(b + rng.normal(0, 1e-5, b.shape), b)[0, 0] > 0.999


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


def test_oriented_boxes_set_their_own_agreement_default():
    """Rotated IoU reads angle jitter: the obb task's agreement default (0.88, measured) sits under the table's,
    and a manifest's or case's own value still wins."""
    from quantkit.manifest import THRESHOLDS, load_manifest

    assert set(OBB.defaults) <= set(THRESHOLDS) and all(
        set(t.defaults) <= set(THRESHOLDS) for t in tasks.TASKS.values()
    )
    manifest = load_manifest(FIXTURES / "manifest.toml")
    obb_case = next(c for c in manifest.cases if c.task == "obb")
    detector = manifest.cases[0]
    assert manifest.thresholds_for(obb_case)["min_agreement_map"] == 0.88
    assert manifest.thresholds_for(detector)["min_agreement_map"] == THRESHOLDS["min_agreement_map"] == 0.90
    assert manifest.thresholds_for(detector, task="obb")["min_agreement_map"] == 0.88  # the model's task, found
    detector.thresholds["min_agreement_map"] = 0.95
    assert manifest.thresholds_for(detector, task="obb")["min_agreement_map"] == 0.95


def test_compare_judges_an_obb_model_by_the_obb_default(tmp_path):
    """`quantkit compare` takes the task's own threshold defaults as check and the suite do (agreement 0.88)."""
    from quantkit.compare import run_compare

    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((FIXTURES / "data" / "val" / "images").iterdir())[:25]:
        (images / path.name).symlink_to(path)
    report, results = run_compare(MODEL, MODEL, images, progress=False)
    agreement = next(r for r in results if r.metric == "agreement_map50_95")
    assert report["task"] == "obb" and agreement.threshold == 0.88 and agreement.value == pytest.approx(1.0)


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


# ---- YOLO26-obb: one-to-many without a DFL, and the end-to-end rows ------------------------------------------------


def _y26_e2e(**kw) -> onnx.ModelProto:
    return graphs.end_to_end_obb(graphs.tiny_yolo26_obb(**kw))


@pytest.mark.parametrize(
    "build, family, selection",
    [(graphs.tiny_yolo26_obb, "obb", False), (_y26_e2e, "obb-end2end", True)],
)
def test_yolo26_obb_heads_are_found_by_structure(build, family, selection):
    model = build(names=False)  # and no metadata: the structure says so
    name_nodes(model)
    head = heads.find(model)
    assert head.family == family and heads.family(family).task == "obb" and len(head.feeding_convs) == 3
    ops = [n.op_type for n in model.graph.node if n.name in set(head.nodes)]
    assert {"Cos", "Sin", "Split", "Sub", "Add"} <= set(ops) and ops.count("Sigmoid") == 1  # the class scores alone
    assert "Conv" not in ops and "Softmax" not in ops  # no DFL, no backbone SiLU
    assert (ops.count("TopK"), ops.count("GatherElements")) == ((2, 4) if selection else (0, 0))
    for other in ("dfl-detect", "detect26", "pose", "segment", "graph-nms"):
        assert heads.family(other).find(model) is None
    if selection:  # end2end knows the selection, and refuses rows wider than a Detect's
        with pytest.raises(ModelError, match=r"\[1, 20, 7\]"):
            heads.family("end2end").find(model)
    else:
        assert heads.family("end2end").find(model) is None and heads.family("obb-end2end").find(model) is None


def test_an_angle_the_box_decode_does_not_read_is_no_obb_head():
    """tiny_yolo26(angle=True): a third part after the class scores that no rotation reads: no family's."""
    assert heads.family("obb").find(graphs.tiny_yolo26(angle=True)) is None
    assert heads.family("obb-end2end").find(graphs.tiny_yolo26(angle=True)) is None


@pytest.mark.parametrize("build, family", [(graphs.tiny_yolo26_obb, "obb"), (_y26_e2e, "obb-end2end")])
def test_yolo26_obb_heads_stay_float_when_quantized(build, family, tmp_path, calib_dir):
    from quantkit import quantize

    src = graphs.save(build(), tmp_path / "src.onnx")
    q = quantize(src, tmp_path / "q.onnx", calib=calib_dir, progress=False, range_cache=False)
    model = onnx.load(q.output)
    assert q.head_family == family and heads.head_is_float(model, q.head_nodes)
    assert {p.key: p.value for p in model.metadata_props}[heads.HEAD_KEY] == family
    assert {"Cos", "Sin"} <= {n.op_type for n in model.graph.node if n.name in set(q.head_nodes)}
    shapes = [o.shape for o in Runner(q.output).run_all(np.zeros((1, 3, 32, 32), np.float32))]
    assert heads.for_outputs(shapes, graphs.NC, model=q.output).name == family


def _known(model: onnx.ModelProto, sides, angle: float, class_bias) -> onnx.ModelProto:
    """``model`` (``tiny_yolo26_obb``) with zero head weights: every anchor predicts the side distances ``sides``
    (l, t, r, b in strides), ``angle`` radians and Sigmoid(``class_bias``), whatever the image."""
    values = {"bb": np.float32(sides), "ba": np.float32([angle]), "bc": np.float32(class_bias)}
    for init in model.graph.initializer:
        if init.name in ("wb", "wc", "wa"):
            init.CopyFrom(onnx.numpy_helper.from_array(np.zeros_like(onnx.numpy_helper.to_array(init)), init.name))
        elif init.name in values:
            init.CopyFrom(onnx.numpy_helper.from_array(values[init.name], init.name))
    return model


def _expected_corners(sides, angle: float, lb: Letterbox) -> np.ndarray:
    """What Ultralytics' dist2rbox gives every anchor of the 8x8 stride-4 grid, as corners in original pixels:
    the centre is the anchor plus the rotated half-difference of the sides, w = l + r and h = t + b."""
    left, top, right, bottom = sides
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8)), -1).reshape(-1, 2) + 0.5
    centres = (grid + rot @ [(right - left) / 2, (bottom - top) / 2]) * 4
    half = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * [(left + right) * 2, (top + bottom) * 2]
    points = centres[:, None, :] + half @ rot.T
    return (points - [lb.left, lb.top]) / lb.scale


def _ordered(points: np.ndarray) -> np.ndarray:
    """Each quadrilateral's corners in one order (by x, then y): the same rectangle whichever corner it starts at."""
    return np.stack([p[np.lexsort((p[:, 1].round(3), p[:, 0].round(3)))] for p in np.asarray(points, np.float64)])


@pytest.mark.parametrize("e2e", [False, True])
def test_yolo26_obb_decode_gives_the_rotated_boxes_the_head_regressed(e2e, tmp_path):
    sides, angle = (0.3, 0.2, 0.7, 0.3), 0.5  # a 4 x 2 px box turned 0.5 rad, its centre off the anchor
    model = _known(graphs.tiny_yolo26_obb(), sides, angle, [2.0, -2.0])
    model = graphs.end_to_end_obb(model, k=20) if e2e else model
    lb = Letterbox(scale=0.8, top=6, left=0, shape=(24, 40))
    outputs = Runner(graphs.save(model, tmp_path / "m.onnx")).run_all(np.zeros((1, 3, 32, 32), np.float32))
    family = heads.for_outputs([o.shape for o in outputs], graphs.NC, model=model)
    assert family.name == ("obb-end2end" if e2e else "obb")
    dets = family.decode(outputs, lb, 0.5, 0.7, 300, graphs.NC, "best_class")
    # one-to-many: every anchor (the rotated IoU of neighbours is well under 0.7); end-to-end: the 20 rows
    assert len(dets) == (20 if e2e else 64) and set(dets.classes.tolist()) == {0}
    np.testing.assert_allclose(dets.scores, 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    want = _expected_corners(sides, angle, lb)
    got = dets.fields["obb"]
    nearest = np.linalg.norm(got.mean(1)[:, None] - want.mean(1)[None], axis=2).argmin(axis=1)
    assert len(set(nearest.tolist())) == len(dets)  # one anchor each
    np.testing.assert_allclose(_ordered(got), _ordered(want[nearest]), atol=1e-4)
    np.testing.assert_allclose(dets.boxes, obb.hull(got).clip(0, [40, 24, 40, 24]), atol=1e-5)


def test_yolo26_obb_rows_are_the_top_k_of_its_one_to_many_output(tmp_path):
    """The end-to-end rows, decoded, are Ultralytics' two-stage top-k of the same weights' one-to-many output: each
    row's box and angle gathered from its anchor (corners equal), its score and class from that anchor's scores."""
    k, lb = 20, Letterbox(scale=0.5, top=4, left=2, shape=(56, 60))
    o2m = graphs.tiny_yolo26_obb(seed=5)
    x = np.random.default_rng(3).random((1, 3, 32, 32), dtype=np.float32)
    raw = Runner(graphs.save(o2m, tmp_path / "o2m.onnx")).run(x)[0]  # [4 + nc + 1, N]
    scores = raw[4:-1]
    anchors = np.argsort(-scores.max(axis=0), kind="stable")[:k]
    flat = scores[:, anchors].T.reshape(-1)
    top = np.argsort(-flat, kind="stable")[:k]
    anchor, cls = anchors[top // graphs.NC], top % graphs.NC
    e2e = graphs.end_to_end_obb(o2m, k=k)
    family = heads.for_outputs([(1, k, 7)], graphs.NC, model=e2e)
    dets = family.decode(Runner(graphs.save(e2e, tmp_path / "e2e.onnx")).run_all(x), lb, 0.0, 0.7, 300, graphs.NC, "")
    assert family.name == "obb-end2end" and len(dets) == k and np.array_equal(dets.classes, cls)
    np.testing.assert_allclose(dets.scores, flat[top], rtol=1e-6)
    want = (obb.corners(raw[[0, 1, 2, 3, -1]][:, anchor].T) - [2, 4]) / 0.5
    np.testing.assert_allclose(dets.fields["obb"], want, atol=1e-3)


def test_oriented_rows_decode_threshold_letterbox_and_no_nms():
    lb = Letterbox(scale=0.5, top=10, left=20, shape=(100, 200))
    out = np.zeros((1, 6, 7), np.float32)  # rows 4, 5: padding
    out[0, :4] = [
        [70, 35, 40, 20, 0.6, 1, 0.0],
        [71, 35, 40, 20, 0.9, 1, 0.0],  # the same box once more: both kept, no NMS
        [70, 35, 40, 20, 0.2, 0, 0.3],  # below conf
        [100, 40, 20, 10, 0.4, 6.7, np.pi / 2],  # class 7 clipped to the last; turned a quarter: 10 wide, 20 high
    ]
    dets = heads.family("obb-end2end").decode([out], lb, 0.25, 0.7, 300, 3, "best_class")
    np.testing.assert_allclose(dets.scores, [0.9, 0.6, 0.4])
    assert dets.classes.tolist() == [1, 1, 2]
    np.testing.assert_allclose(dets.fields["obb"][1], box(100, 50, 80, 40)[0], atol=1e-4)
    np.testing.assert_allclose(dets.boxes[2], [150, 40, 170, 80], atol=1e-4)  # the hull, in original pixels
    assert len(heads.family("obb-end2end").decode([out], lb, 0.0, 0.7, 300, 3, "")) == 4  # padding never decodes
    assert heads.for_outputs([(1, 6, 7)], 3, {"task": "obb"}).name == "obb-end2end"  # 6 anchors would need nc 2


def test_an_obb_head_behind_other_post_processing_is_refused_in_one_line(tmp_path, calib_dir):
    """What Ultralytics' nms=True writes for OBB (rotated NMS of its own ops, rows padded into a constant) is no
    end-to-end head: here the first rows of the transposed output stand for it."""
    from quantkit import quantize

    model = graphs.tiny_yolo26_obb()
    out = model.graph.output[0]
    for nd in model.graph.node:
        nd.output[:] = ["o2m" if o == out.name else o for o in nd.output]
    model.graph.initializer.extend(
        [onnx.numpy_helper.from_array(np.array([v], np.int64), f"cut{v}") for v in (0, 1, 10)]
    )
    model.graph.node.extend(
        [
            onnx.helper.make_node("Transpose", ["o2m"], ["rows"], perm=[0, 2, 1], name="/post/transpose"),
            onnx.helper.make_node("Slice", ["rows", "cut0", "cut10", "cut1"], [out.name], name="/post/slice"),
        ]
    )
    out.type.tensor_type.shape.dim[1].dim_value, out.type.tensor_type.shape.dim[2].dim_value = 10, 7
    says = r"^an oriented-box head behind post-processing .*\[1, 10, 7\].*nms=True.*export it one-to-many"
    with pytest.raises(ModelError, match=says):
        heads.find(model)
    with pytest.raises(ModelError, match=says):
        quantize(graphs.save(model, tmp_path / "m.onnx"), tmp_path / "q.onnx", calib=calib_dir, progress=False)
