"""Boxes every family shares: the decode of a one-to-many box output ``[1, 4+nc, N]``.

Each of the N anchors carries cx, cy, w, h in model-input pixels followed by nc class scores that
are already sigmoid'ed. Decoding is: candidates, class-wise NMS, top ``max_det``, undo the letterbox.
Two ways to pick candidates (``nms``):

- ``best_class`` (quantkit's default): one label per anchor, its best class, kept when its score
  is >= ``conf``. One box, one label: what a deployed detector reports.
- ``multi_label``: as Ultralytics' ``non_max_suppression(multi_label=True)``, which ``yolo val``
  uses: every class score > ``conf`` (strict) of an anchor is a candidate of its own (one label
  per anchor when nc == 1), at most ``MAX_NMS`` highest-scored candidates enter NMS.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..preprocess import Letterbox, boxes_to_image
from ..tasks import detect
from ..tasks.base import Detections, Task

NMS_MODES = ("best_class", "multi_label")
MAX_NMS = 30000  # Ultralytics' cap on candidates entering NMS (multi_label mode)


def _shape_text(shape: Sequence) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def head_layout(shape: Sequence, nc: int | None = None) -> str:
    """ "channels_first" for ``[1, 4+nc, N]``, "channels_last" for ``[1, N, 4+nc]``.

    With ``nc`` the channel dim must be exactly 4+nc (dim 1 wins a tie); without it the smaller of
    dims 1 and 2 is taken as the channel dim.
    """
    shape = tuple(shape)
    static = all(isinstance(d, (int, np.integer)) for d in shape)
    if len(shape) != 3 or not static or shape[0] != 1 or min(shape[1:]) <= 4:
        raise ModelError(
            f"model output shape {_shape_text(shape)} is not a YOLOv8 detection head [1, 4+nc, N]: "
            "export the detector without NMS/end2end"
        )
    if nc is None:
        return "channels_first" if shape[1] <= shape[2] else "channels_last"
    if shape[1] == 4 + nc:
        return "channels_first"
    if shape[2] == 4 + nc:
        return "channels_last"
    raise ModelError(
        f"model output shape {_shape_text(shape)} is not a YOLOv8 detection head [1, 4+nc, N] with "
        f"nc={nc} (no dim of {4 + nc}): check the model's class names, or export it without NMS/end2end"
    )


def is_box_layout(shape: Sequence, nc: int | None = None) -> bool:
    """True when ``shape`` is a one-to-many box output ``[1, 4+nc, N]`` or ``[1, N, 4+nc]`` (see ``head_layout``)."""
    try:
        head_layout(shape, nc)
    except ModelError:
        return False
    return True


def nms_mode(name: str) -> str:
    """'multi-label' / 'multi_label' / 'best-class' ... -> the canonical name; ValueError for others."""
    mode = str(name).strip().lower().replace("-", "_")
    if mode not in NMS_MODES:
        raise ValueError(f"NMS mode {name!r} is not one of {', '.join(NMS_MODES)}")
    return mode


def _candidates(cls_scores: np.ndarray, conf: float, nms: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anchor index, class, score) of every candidate of ``cls_scores`` [nc, N] under ``nms``."""
    if nms == "multi_label":
        if cls_scores.shape[0] > 1:
            classes, anchors = np.nonzero(cls_scores > conf)
            scores = cls_scores[classes, anchors]
        else:
            anchors = np.flatnonzero(cls_scores[0] > conf)
            classes, scores = np.zeros(anchors.size, np.int64), cls_scores[0, anchors]
        if scores.size > MAX_NMS:
            top = np.argsort(-scores, kind="stable")[:MAX_NMS]
            anchors, classes, scores = anchors[top], classes[top], scores[top]
        return anchors, classes, scores.astype(np.float32)
    anchors = np.flatnonzero(cls_scores.max(axis=0) >= conf)
    cand = cls_scores[:, anchors]
    classes = cand.argmax(axis=0)
    return anchors, classes, cand[classes, np.arange(anchors.size)].astype(np.float32)


def decode(
    output: np.ndarray,
    lb: Letterbox,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    nc: int | None = None,
    nms: str = "best_class",
) -> Detections:
    """Detections after class-wise NMS at ``iou``, at most ``max_det``; candidates as ``nms`` picks them."""
    return decode_anchors(output, lb, conf, iou, max_det, nc, nms)[0]


def decode_anchors(
    output: np.ndarray,
    lb: Letterbox,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    nc: int | None = None,
    nms: str = "best_class",
    extra: int = 0,
    task: Task = detect.TASK,
) -> tuple[Detections, np.ndarray, np.ndarray]:
    """``decode`` of an output ``[1, 4+nc+extra, N]`` whose last ``extra`` channels are not class scores
    (mask coefficients, keypoints, an angle): (detections, the anchor index of each, the channels-first
    [4+nc+extra, N] array), so a family can read its extra channels at the anchors that survived NMS, which
    ``task`` does (``Task.suppress``)."""
    output = np.asarray(output)
    layout = head_layout(output.shape, None if nc is None else nc + extra)
    preds = output[0] if layout == "channels_first" else output[0].T  # [4+nc+extra, N]
    keep, classes, scores = _candidates(preds[4 : preds.shape[0] - extra], conf, nms_mode(nms))
    if keep.size == 0:
        return Detections.empty(), keep, preds
    picked = task.suppress(preds, keep, scores, classes, iou)
    picked = picked[np.argsort(-scores[picked], kind="stable")][:max_det]
    cx, cy, w, h = preds[:4, keep[picked]].astype(np.float32)
    x1, y1 = cx - w / 2, cy - h / 2
    xyxy = np.stack([x1, y1, x1 + w, y1 + h], axis=1)
    return Detections(boxes_to_image(xyxy, lb), scores[picked], classes[picked].astype(np.int64)), keep[picked], preds
