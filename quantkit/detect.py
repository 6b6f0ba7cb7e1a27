"""Decode a YOLOv8 detection head ``[1, 4+nc, N]`` into boxes in original-image pixels.

Each of the N anchors carries cx, cy, w, h in model-input pixels followed by nc class scores that
are already sigmoid'ed. Decoding is: best class per anchor, confidence filter, class-wise NMS,
top ``max_det``, undo the letterbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .errors import ModelError
from .preprocess import Letterbox, boxes_to_image


@dataclass
class Detections:
    """One image's detections, highest score first."""

    boxes: np.ndarray  # [K, 4] float32 xyxy in original image pixels
    scores: np.ndarray  # [K] float32
    classes: np.ndarray  # [K] int64 class index

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)


def _shape_text(shape: Sequence) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def head_layout(shape: Sequence, nc: int | None = None) -> str:
    """"channels_first" for ``[1, 4+nc, N]``, "channels_last" for ``[1, N, 4+nc]``.

    With ``nc`` the channel dim must be exactly 4+nc (dim 1 wins a tie); without it the smaller of
    dims 1 and 2 is taken as the channel dim.
    """
    shape = tuple(shape)
    static = all(isinstance(d, (int, np.integer)) for d in shape)
    if len(shape) != 3 or not static or shape[0] != 1 or min(shape[1:]) <= 4:
        raise ModelError(f"model output shape {_shape_text(shape)} is not a YOLOv8 detection head [1, 4+nc, N]: "
                         "export the detector without NMS/end2end")
    if nc is None:
        return "channels_first" if shape[1] <= shape[2] else "channels_last"
    if shape[1] == 4 + nc:
        return "channels_first"
    if shape[2] == 4 + nc:
        return "channels_last"
    raise ModelError(f"model output shape {_shape_text(shape)} is not a YOLOv8 detection head [1, 4+nc, N] with "
                     f"nc={nc} (no dim of {4 + nc}): check the model's class names, or export it without NMS/end2end")


def decode(output: np.ndarray, lb: Letterbox, conf: float = 0.25, iou: float = 0.7, max_det: int = 300,
           nc: int | None = None) -> Detections:
    """Detections with score >= ``conf`` after class-wise NMS at ``iou``, at most ``max_det``."""
    output = np.asarray(output)
    preds = output[0] if head_layout(output.shape, nc) == "channels_first" else output[0].T  # [4+nc, N]
    cls_scores = preds[4:]
    keep = np.flatnonzero(cls_scores.max(axis=0) >= conf)
    if keep.size == 0:
        return Detections.empty()
    cand = cls_scores[:, keep]
    classes = cand.argmax(axis=0)
    scores = cand[classes, np.arange(keep.size)].astype(np.float32)
    cx, cy, w, h = preds[:4, keep].astype(np.float32)
    xywh = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    # Candidates already passed `conf` (inclusive); OpenCV's threshold is strict (>) and must be >= 0.
    picked = np.asarray(cv2.dnn.NMSBoxesBatched(xywh, scores, classes.astype(np.int32), 0.0, iou),
                        dtype=np.int64).reshape(-1)
    picked = picked[np.argsort(-scores[picked], kind="stable")][:max_det]
    xyxy = xywh[picked].copy()
    xyxy[:, 2:] += xyxy[:, :2]
    return Detections(boxes_to_image(xyxy, lb), scores[picked], classes[picked].astype(np.int64))
