"""Tasks: what an Ultralytics task's predictions carry and how they are matched, suppressed, scored and gated.

    detect     axis-aligned boxes: class-wise NMS, pycocotools bbox mAP
    segment    + a mask per detection: segm mAP, matched pairs' mask IoU
    pose       + keypoints per detection: OKS mAP, matched pairs' keypoint distance
    obb        oriented boxes: rotated NMS, rotated IoU for matching and mAP
    classify   one ranked list of classes per image: top-1 / top-5 accuracy, top-1 agreement with FP32

A head family (``heads/``) names its task; everything that differs between tasks is asked of the task here, so
a new task is a module, its registry line, a head family, a fixture and a manifest case.
"""

from __future__ import annotations

from . import classify, detect, obb, pose, segment
from .base import Detections, Task

TASKS: dict[str, Task] = {t.name: t for t in (detect.TASK, segment.TASK, pose.TASK, obb.TASK, classify.TASK)}
NAMES = tuple(TASKS)
# the gates tasks declare for themselves; they join the gate registry (quantkit/gates/) with their thresholds
GATES = (*segment.GATES, *pose.GATES, *classify.GATES)

__all__ = ["GATES", "NAMES", "TASKS", "Detections", "Task", "get"]


def get(name: str | None) -> Task:
    """The task called ``name`` (None: detect)."""
    return TASKS[name or "detect"]
