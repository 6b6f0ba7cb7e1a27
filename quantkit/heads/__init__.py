"""Head families: one module each, picked through this registry (the first family that matches wins).

    segment      YOLOv8-seg / YOLO11-seg: output0 [1, 4+nc+32, N] (mask coefficients), output1 protos [1, 32, H/4, W/4]
    pose         YOLOv8-pose / YOLO11-pose: [1, 4+nc+K*3, N] (keypoints decoded in the graph)
    obb          YOLOv8-obb / YOLO11-obb / YOLO26-obb one-to-many: [1, 4+nc+1, N] (the angle in radians last, which
                 the box decode reads too; a DFL box branch on YOLOv8/11, none on YOLO26)
    obb-end2end  YOLO26-obb end-to-end: TopK selection in the graph, rows [1, K, 7] (cx, cy, w, h, score, class,
                 angle), no NMS afterwards
    classify     YOLOv8-cls / YOLO11-cls: [1, nc] class probabilities
    dfl_detect   YOLOv8 / YOLO11 / YOLOv5u Detect: DFL box branch, output [1, 4+nc, N]
    detect26     YOLO26 Detect, one-to-many export: no DFL (reg_max 1), output [1, 4+nc, N]
    end2end      YOLO26 / YOLOv10 end-to-end Detect: TopK selection in the graph, rows [1, K, 6], no NMS afterwards
    graph_nms    Detect with NonMaxSuppression inside the graph: rows [1, max_det, 6]

Adding a family = a module with a ``HeadFamily`` subclass + a fixture + a manifest case; nothing
else branches on the family. What its predictions carry and how they are scored is its task's (``quantkit/tasks/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import onnx

from ..errors import ModelError
from . import classify, detect26, dfl_detect, end2end, graph_nms, obb, pose, segment
from .base import Head, HeadFamily, head_is_float, is_quantized_op
from ..tasks.base import Detections

HEAD_KEY = "quantkit_head"  # metadata of a quantized model: the family its head was found as, at quantize time

# A Detect with extra parts first (an OBB head's Concat nested two-input would pass dfl-detect's walk), the OBB
# end-to-end rows before end2end (which refuses rows wider than 6); dfl-detect before detect26 (whose walk would stop
# at a DFL Conv).
FAMILIES: tuple[HeadFamily, ...] = (
    segment.FAMILY,
    pose.FAMILY,
    obb.FAMILY,
    obb.END2END,
    dfl_detect.FAMILY,
    detect26.FAMILY,
    end2end.FAMILY,
    graph_nms.FAMILY,
    classify.FAMILY,
)

__all__ = [
    "FAMILIES",
    "HEAD_KEY",
    "Detections",
    "Head",
    "HeadFamily",
    "family",
    "find",
    "for_outputs",
    "head_is_float",
    "is_quantized_op",
    "supported",
]


def find(model: onnx.ModelProto) -> Head | None:
    """The head of the first family found in ``model`` (nodes named), or None. A family's refusal (a structure
    it knows in a form it cannot serve) is raised only when no family finds a head."""
    refusal = None
    for family in FAMILIES:
        try:
            head = family.find(model)
        except ModelError as exc:
            refusal = refusal or exc
            continue
        if head is not None:
            return head
    if refusal is not None:
        raise refusal
    return None


def _found_in(model: str | Path | onnx.ModelProto) -> str | None:
    """The name of the family whose head ``model`` (a path or a graph) holds, or None."""
    try:
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model), load_external_data=False)
        head = find(proto)
    except Exception:  # noqa: BLE001 - an unreadable graph or a refusal leaves the tie to the registry's order
        return None
    return head.family if head else None


def family(name: str) -> HeadFamily:
    """The registered family called ``name`` (a ``Head.family``)."""
    return next(f for f in FAMILIES if f.name == name)


def supported() -> str:
    """The families quantkit knows, for one-line refusals."""
    return "; ".join(f.covers for f in FAMILIES)


def looked_for() -> str:
    """What each family's ``find`` looks for, in words."""
    return "; ".join(f"{f.name}: {f.looked_for}" for f in FAMILIES)


def for_outputs(
    shapes: Sequence[Sequence[int]],
    nc: int | None = None,
    meta: dict[str, str] | None = None,
    model: str | Path | onnx.ModelProto | None = None,
) -> HeadFamily:
    """The family that decodes outputs of these shapes; ModelError naming the supported layouts otherwise.

    ``meta`` is the model's metadata: Ultralytics' ``task`` narrows the search to that task's families, and each
    family reads what it needs from it (``with_metadata``). Where shapes alone are ambiguous between layouts
    (``[1, 300, 6]``: rows, or 300 anchors of 2 classes; ``[1, 5+nc, N]``: an OBB's or YOLOX's) the family
    found at quantize time decides (``HEAD_KEY`` in a quantized model's metadata), else ``model``'s graph."""
    meta = meta or {}
    task, readers = meta.get("task"), []
    for family in FAMILIES:
        if task in {f.task for f in FAMILIES} and family.task != task:
            continue
        family = family.with_metadata(meta)
        if family.reads(shapes, nc):
            readers.append(family)
    ambiguous = len({f.layout for f in readers}) > 1 or any(not f.by_shape and f.task != task for f in readers)
    found = meta.get(HEAD_KEY) or (_found_in(model) if ambiguous and model is not None else None)
    readers = [f for f in readers if f.by_shape or f.task == task or f.name == found]
    if len({f.layout for f in readers}) > 1 and found is not None:
        readers = [f for f in readers if f.name == found] or readers
    if readers:
        return readers[0]
    text = ", ".join("[" + ", ".join(str(d) for d in s) + "]" for s in shapes)
    raise ModelError(
        f"model outputs {text} match no head family quantkit decodes ({supported()}): export the "
        "model in one of these layouts, or pass the model's class count (names) when the layout is ambiguous"
    )
