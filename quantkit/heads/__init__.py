"""Head families: one module each, picked through this registry (the first family that matches wins).

    dfl_detect   YOLOv8 / YOLO11 / YOLOv5u Detect: DFL box branch, output [1, 4+nc, N]

Adding a family = a module with a ``HeadFamily`` subclass + a fixture + a manifest case; nothing
else branches on the family.
"""

from __future__ import annotations

from typing import Sequence

import onnx

from ..errors import ModelError
from . import dfl_detect
from .base import Head, HeadFamily, head_is_float, is_quantized_op
from .boxes import Detections

FAMILIES: tuple[HeadFamily, ...] = (dfl_detect.FAMILY,)

__all__ = ["FAMILIES", "Detections", "Head", "HeadFamily", "find", "for_outputs", "head_is_float", "is_quantized_op",
           "supported"]


def find(model: onnx.ModelProto) -> Head | None:
    """The head of the first family found in ``model`` (nodes named), or None."""
    for family in FAMILIES:
        head = family.find(model)
        if head is not None:
            return head
    return None


def supported() -> str:
    """The families quantkit knows, for one-line refusals."""
    return "; ".join(f.covers for f in FAMILIES)


def looked_for() -> str:
    """What each family's ``find`` looks for, in words."""
    return "; ".join(f"{f.name}: {f.looked_for}" for f in FAMILIES)


def for_outputs(shapes: Sequence[Sequence[int]], nc: int | None = None) -> HeadFamily:
    """The family that decodes outputs of these shapes; ModelError naming the supported layouts otherwise."""
    for family in FAMILIES:
        if family.reads(shapes, nc):
            return family
    text = ", ".join("[" + ", ".join(str(d) for d in s) + "]" for s in shapes)
    raise ModelError(f"model outputs {text} match no head family quantkit decodes ({supported()}): export the "
                     "detector without NMS, or pass the model's class count (names) when the layout is ambiguous")
