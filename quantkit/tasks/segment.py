"""Segmentation: each detection carries a mask (``fields["masks"]``: COCO RLE at the original image size), scored
by pycocotools' segm mAP beside the boxes; matched FP32/INT8 pairs are compared by their masks' IoU."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from ..measure.intervals import LEVEL
from ..gates.base import Threshold
from .base import Detections, Task, map_drop_gate, mean_and_interval, pair_gate


class Segment(Task):
    name = "segment"
    fields = ("masks",)
    scored_on = ("bbox", "segm")
    labels = {"bbox": "box", "segm": "mask"}
    annotation_field = {"bbox": "bbox", "segm": "segmentation"}

    def result_fields(self, dets: Detections, kind: str) -> dict[str, list]:
        """ "segm": the masks without a bbox, so pycocotools takes the area from the mask."""
        out = super().result_fields(dets, kind) if kind in ("bbox", "all") else {}
        if kind in ("segm", "all") and "masks" in dets.fields:
            out["segmentation"] = dets.fields["masks"]
        return out

    def pair_figures(self, fp32: Detections, int8: Detections, pairs: list) -> dict[str, list[float]]:
        """Mask IoU of each matched pair with a mask to show (two empty masks agree but have no IoU)."""
        if not pairs or "masks" not in fp32.fields or "masks" not in int8.fields:
            return {"mask_iou": []}
        a, b = [fp32.fields["masks"][p[3]] for p in pairs], [int8.fields["masks"][p[4]] for p in pairs]
        ious = np.diag(np.asarray(mask_utils.iou(a, b, [0] * len(b)), np.float64).reshape(len(a), len(b)))
        shown = (mask_utils.area(a) + mask_utils.area(b)) > 0
        return {"mask_iou": ious[shown].tolist()}

    def report_lines(self, report: dict) -> list[str]:
        if "mask_iou_mean" not in report:
            return []
        mean, low = (f"{v:.4f}" if v is not None else "n/a" for v in (report["mask_iou_mean"], report["mask_iou_min"]))
        return [f"IoU of matched masks (mean / min)  {mean} / {low}  ({report['mask_pairs']} matched pairs)"]

    def summarize_pairs(self, fp32, figures, level=LEVEL):
        """``mask_iou_mean`` (None: nothing matched), its lowest, the pairs counted, and the mean's interval."""
        if not any("masks" in d.fields for d in fp32):
            return {}, {}
        mean, flat, ci = mean_and_interval([f.get("mask_iou", []) for f in figures], level)
        out = {"mask_iou_mean": mean, "mask_iou_min": float(np.min(flat)) if flat else None, "mask_pairs": len(flat)}
        return out, {"mask_iou_mean": ci}


TASK = Segment()
GATES = (
    map_drop_gate(
        TASK,
        "segm",
        Threshold(
            "max_mask_map_drop_pt",
            1.5,
            "segmentation heads: FP32 - INT8 mask mAP50-95, points, decided from its paired interval like the box drop "
            "(segmentation fixture static-qdq: 0.15 [-0.49, 0.92] on the first 60 val images)",
        ),
    ),
    pair_gate(
        TASK,
        "mask_iou_mean",
        Threshold(
            "min_mask_iou_mean",
            0.9,
            "segmentation heads: mean mask IoU of matched detections (any images; segmentation fixture: 0.962-0.968)",
        ),
        ">=",
        "matched_mask_iou_mean",
        shown=("mask_pairs", "mask_iou_min"),
        labels=("matched pairs", "lowest mask IoU"),
    ),
)
