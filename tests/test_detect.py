"""decode() on hand-built YOLOv8 head outputs: layouts, filtering, class-wise NMS, letterbox mapping."""

import numpy as np
import pytest

from quantkit.heads.boxes import Detections, decode, head_layout
from quantkit.errors import ModelError
from quantkit.preprocess import Letterbox, letterbox_image

IDENTITY = Letterbox(1.0, 0, 0, (640, 640))
NC = 3


def head(anchors, nc=NC, n=20, layout="channels_first"):
    """A [1, 4+nc, n] output: anchors are (cx, cy, w, h, class, score); unused anchors score 0."""
    out = np.zeros((1, 4 + nc, n), np.float32)
    out[0, :4] = 1.0  # tiny boxes for unused anchors
    for i, (cx, cy, w, h, cls, score) in enumerate(anchors):
        out[0, :4, i] = cx, cy, w, h
        out[0, 4 + cls, i] = score
    return out.transpose(0, 2, 1).copy() if layout == "channels_last" else out


def test_detections_empty():
    empty = Detections.empty()
    assert len(empty) == 0
    assert empty.boxes.shape == (0, 4) and empty.boxes.dtype == np.float32
    assert empty.scores.dtype == np.float32 and empty.classes.dtype == np.int64


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_decode_box_score_class(layout):
    out = head([(100, 50, 40, 20, 2, 0.9)], layout=layout)
    dets = decode(out, IDENTITY)
    assert len(dets) == 1
    np.testing.assert_allclose(dets.boxes, [[80, 40, 120, 60]])
    assert dets.scores.tolist() == pytest.approx([0.9])
    assert dets.classes.tolist() == [2]
    assert (dets.boxes.dtype, dets.scores.dtype, dets.classes.dtype) == (np.float32, np.float32, np.int64)


def test_layouts_decode_identically():
    anchors = [(100, 100, 50, 50, 0, 0.8), (300, 200, 30, 60, 1, 0.6), (500, 400, 80, 40, 2, 0.4)]
    first = decode(head(anchors), IDENTITY)
    last = decode(head(anchors, layout="channels_last"), IDENTITY)
    assert len(first) == 3
    np.testing.assert_array_equal(first.boxes, last.boxes)
    np.testing.assert_array_equal(first.scores, last.scores)
    np.testing.assert_array_equal(first.classes, last.classes)


def test_best_class_per_anchor():
    out = head([(100, 100, 50, 50, 0, 0.3)])
    out[0, 4 + 1, 0] = 0.7  # same anchor, class 1 scores higher
    dets = decode(out, IDENTITY)
    assert dets.classes.tolist() == [1]
    assert dets.scores.tolist() == pytest.approx([0.7])


def test_conf_filter_is_inclusive():
    anchors = [(100 * (i + 1), 100, 20, 20, 0, s) for i, s in enumerate([0.24, 0.25, 0.26])]
    dets = decode(head(anchors), IDENTITY, conf=0.25)
    assert sorted(dets.scores.tolist()) == pytest.approx([0.25, 0.26])


def test_nms_is_classwise():
    # Two pairs of heavily overlapping boxes (IoU ~0.82): one pair same class, one pair different classes.
    anchors = [
        (100, 100, 100, 100, 0, 0.9),
        (105, 105, 100, 100, 0, 0.8),
        (400, 400, 100, 100, 1, 0.9),
        (405, 405, 100, 100, 2, 0.8),
    ]
    dets = decode(head(anchors), IDENTITY, iou=0.7)
    assert len(dets) == 3
    assert dets.classes.tolist() == [0, 1, 2]
    assert dets.scores.tolist() == pytest.approx([0.9, 0.9, 0.8])
    np.testing.assert_allclose(dets.boxes[0], [50, 50, 150, 150])  # the higher-scored box of the class-0 pair


def test_nms_threshold_respected():
    anchors = [(100, 100, 100, 100, 0, 0.9), (105, 105, 100, 100, 0, 0.8)]  # IoU ~0.82
    assert len(decode(head(anchors), IDENTITY, iou=0.9)) == 2
    assert len(decode(head(anchors), IDENTITY, iou=0.5)) == 1


def test_max_det_keeps_highest_scores_in_order():
    scores = [0.3, 0.9, 0.5, 0.7, 0.4, 0.8]
    anchors = [(60 + 90 * i, 100, 40, 40, i % NC, s) for i, s in enumerate(scores)]
    dets = decode(head(anchors), IDENTITY, max_det=3)
    assert dets.scores.tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert len(decode(head(anchors), IDENTITY)) == 6


def test_no_detections():
    dets = decode(head([(100, 100, 50, 50, 0, 0.1)]), IDENTITY, conf=0.25)
    assert len(dets) == 0
    assert dets.boxes.shape == (0, 4) and dets.classes.dtype == np.int64


def test_boxes_mapped_through_letterbox_and_clipped():
    img = np.zeros((720, 1280, 3), np.uint8)  # letterboxed into 320x320: scale 0.25, 70 px bands top and bottom
    _, lb = letterbox_image(img, (320, 320))
    assert (lb.scale, lb.left, lb.top) == (0.25, 0, 70)
    # Image box [100, 200, 300, 400] -> input [25, 120, 75, 170]; a box hanging into the top band and off the right.
    anchors = [(50, 145, 50, 50, 0, 0.9), (300, 70, 60, 40, 1, 0.8)]
    dets = decode(head(anchors), lb)
    np.testing.assert_allclose(dets.boxes[0], [100, 200, 300, 400], atol=1e-3)
    np.testing.assert_allclose(dets.boxes[1], [1080, 0, 1280, 80], atol=1e-3)


@pytest.mark.parametrize(
    "shape, nc, expected",
    [
        ((1, 84, 8400), None, "channels_first"),
        ((1, 8400, 84), None, "channels_last"),
        ((1, 84, 8400), 80, "channels_first"),
        ((1, 8400, 84), 80, "channels_last"),
        ((1, 84, 50), 80, "channels_first"),  # fewer anchors than channels: only nc tells
        ((1, 50, 84), None, "channels_first"),
    ],
)
def test_head_layout(shape, nc, expected):
    assert head_layout(shape, nc) == expected


@pytest.mark.parametrize(
    "shape, nc",
    [
        ((1, 1000), None),
        ((2, 84, 8400), None),
        ((1, 84, 8400, 1), None),
        ((1, 4, 8400), None),
        ((1, 300, 4), None),
        ((1, 10, 2100), 80),
        ((1, 84, "anchors"), None),
        ((None, 84, 8400), None),
    ],
)
def test_bad_shapes_raise_model_error(shape, nc):
    with pytest.raises(ModelError) as info:
        head_layout(shape, nc)
    message = str(info.value)
    assert "[" + ", ".join(map(str, shape)) + "]" in message
    assert "\n" not in message


def test_decode_rejects_end2end_output():
    with pytest.raises(ModelError, match=r"\[1, 300, 6\] is not a YOLOv8 detection head \[1, 4\+nc, N\].*end2end"):
        decode(np.zeros((1, 300, 6), np.float32), IDENTITY, nc=80)


# ---- multi_label: Ultralytics' non_max_suppression(multi_label=True), as `yolo val` decodes ----


def test_multi_label_box_with_two_classes_above_conf_gives_two_detections():
    out = head([(100, 100, 50, 50, 0, 0.8)])
    out[0, 4 + 2, 0] = 0.6  # the same anchor also scores class 2
    best = decode(out, IDENTITY, conf=0.25)
    multi = decode(out, IDENTITY, conf=0.25, nms="multi_label")
    assert best.classes.tolist() == [0]
    assert multi.classes.tolist() == [0, 2] and multi.scores.tolist() == pytest.approx([0.8, 0.6])
    np.testing.assert_array_equal(multi.boxes[0], multi.boxes[1])  # class-aware NMS keeps both labels of one box


def test_multi_label_conf_is_strict_and_nms_is_per_class():
    out = head([(100, 100, 50, 50, 0, 0.9), (102, 100, 50, 50, 0, 0.7), (300, 300, 40, 40, 1, 0.25)])
    out[0, 4 + 1, 1] = 0.5  # the overlapping anchor's second class survives its own class's NMS
    multi = decode(out, IDENTITY, conf=0.25, nms="multi-label")
    assert multi.classes.tolist() == [0, 1] and multi.scores.tolist() == pytest.approx([0.9, 0.5])
    assert decode(out, IDENTITY, conf=0.25).scores.min() == pytest.approx(0.25)  # best_class: conf inclusive


def test_multi_label_with_one_class_is_one_label_per_anchor_and_caps_candidates(monkeypatch):
    out = head([(100, 100, 50, 50, 0, 0.8), (400, 300, 50, 50, 0, 0.6)], nc=1)
    assert decode(out, IDENTITY, conf=0.25, nc=1, nms="multi_label").scores.tolist() == pytest.approx([0.8, 0.6])
    monkeypatch.setattr("quantkit.heads.boxes.MAX_NMS", 1)  # only the best-scored candidate enters NMS
    assert decode(out, IDENTITY, conf=0.25, nc=1, nms="multi_label").scores.tolist() == pytest.approx([0.8])


def test_nms_mode_names():
    from quantkit.heads.boxes import nms_mode

    assert nms_mode("Multi-Label") == "multi_label" and nms_mode("best_class") == "best_class"
    with pytest.raises(ValueError, match="agnostic"):
        nms_mode("agnostic")
