"""Detection: axis-aligned boxes, class-wise NMS, pycocotools' bbox mAP (every default of ``Task``)."""

from __future__ import annotations

from .base import Task


class Detect(Task):
    name = "detect"


TASK = Detect()
