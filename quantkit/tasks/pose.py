"""Pose: each detection carries K keypoints (``fields["keypoints"]``: [K, P, 3] x, y in original pixels and a
visibility score), scored by pycocotools' OKS mAP beside the boxes; matched FP32/INT8 pairs are compared by the
mean distance of their keypoints in units of the FP32 box's size."""

from __future__ import annotations

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..errors import DatasetError
from ..measure.intervals import LEVEL
from ..gates.base import Threshold
from .base import Detections, Task, map_drop_gate, mean_and_interval, pair_gate

# COCO's per-keypoint OKS sigmas for its 17 person keypoints; any other keypoint set gets 1/K each,
# as Ultralytics' pose validator does.
COCO_KPT_SIGMAS = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10.0
)
KEYPOINT_VISIBLE = 0.5  # an FP32 keypoint counts in the distance when its visibility score reaches this


def oks_sigmas(k: int) -> np.ndarray:
    """OKS sigmas for K keypoints: COCO's for 17 (a person), else uniform 1/K."""
    return COCO_KPT_SIGMAS.copy() if k == 17 else np.full(k, 1.0 / k)


def annotated_keypoints(coco_gt: COCO) -> int:
    """Keypoints per object in the annotations (0 when they carry none)."""
    for ann in coco_gt.dataset["annotations"]:
        if ann.get("keypoints"):
            return len(ann["keypoints"]) // 3
    return 0


class Pose(Task):
    name = "pose"
    fields = ("keypoints",)
    scored_on = ("bbox", "keypoints")
    labels = {"bbox": "box", "keypoints": "keypoints"}
    annotation_field = {"bbox": "bbox", "keypoints": "keypoints"}

    def result_fields(self, dets: Detections, kind: str) -> dict[str, list]:
        """ "keypoints": the bbox and [x, y, v] * K (3 decimals)."""
        out = super().result_fields(dets, "bbox") if kind in ("bbox", "keypoints", "all") else {}
        if kind in ("keypoints", "all") and "keypoints" in dets.fields:
            kpts = dets.fields["keypoints"].astype(np.float64).reshape(len(dets), -1)
            out["keypoints"] = np.round(kpts, 3).tolist()
        return out

    def evaluator(self, coco_gt: COCO, coco_dt: COCO, kind: str) -> COCOeval:
        evaluator = COCOeval(coco_gt, coco_dt, kind)
        if kind == "keypoints":
            evaluator.params.kpt_oks_sigmas = oks_sigmas(annotated_keypoints(coco_gt))
        return evaluator

    def counted(self, annotation: dict, kind: str) -> bool:
        """Keypoints count objects with labelled keypoints only, as pycocotools does."""
        return super().counted(annotation, kind) and (kind != "keypoints" or annotation.get("num_keypoints", 0) > 0)

    def check_annotations(self, coco_gt: COCO, dets: dict[int, Detections]) -> None:
        have = annotated_keypoints(coco_gt)
        predicted = next((d.fields["keypoints"].shape[1] for d in dets.values() if "keypoints" in d.fields), have)
        if predicted != have:
            raise DatasetError(
                f"the model predicts {predicted} keypoints per object but the annotations hold {have}: "
                "evaluate on the keypoint annotations the model was trained for"
            )

    def pair_figures(self, fp32: Detections, int8: Detections, pairs: list) -> dict[str, list[float]]:
        """Per matched pair: mean distance of INT8's keypoints from FP32's, over the keypoints FP32 scores
        visible, divided by sqrt(area) of the FP32 box."""
        if not pairs or "keypoints" not in fp32.fields or "keypoints" not in int8.fields:
            return {"keypoint_distance": []}
        out = []
        for p in pairs:
            a, b = fp32.fields["keypoints"][p[3]], int8.fields["keypoints"][p[4]]
            box = fp32.boxes[p[3]].astype(np.float64)
            seen = a[:, 2] >= KEYPOINT_VISIBLE
            size = np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1e-9))
            if seen.any():
                out.append(float(np.linalg.norm((a[seen, :2] - b[seen, :2]).astype(np.float64), axis=1).mean() / size))
        return {"keypoint_distance": out}

    def report_lines(self, report: dict) -> list[str]:
        if "keypoint_distance_mean" not in report:
            return []
        mean = report["keypoint_distance_mean"]
        shown = f"{mean:.4f}" if mean is not None else "n/a (nothing to measure)"
        return [f"keypoint distance / box size       {shown}  ({report['keypoint_pairs']} matched pairs)"]

    def summarize_pairs(self, fp32, figures, level=LEVEL):
        """``keypoint_distance_mean`` (None: no matched pair has a visible FP32 keypoint), the pairs counted,
        and the mean's interval."""
        if not any("keypoints" in d.fields for d in fp32):
            return {}, {}
        mean, flat, ci = mean_and_interval([f.get("keypoint_distance", []) for f in figures], level)
        return {"keypoint_distance_mean": mean, "keypoint_pairs": len(flat)}, {"keypoint_distance_mean": ci}


TASK = Pose()
GATES = (
    map_drop_gate(
        TASK,
        "keypoints",
        Threshold(
            "max_keypoint_map_drop_pt",
            1.5,
            "pose heads: FP32 - INT8 keypoint (OKS) mAP50-95, points, with its paired CI95 (pose fixture static-qdq: "
            "-0.15 [-1.08, 0.81] on the first 60)",
        ),
    ),
    pair_gate(
        TASK,
        "keypoint_distance_mean",
        Threshold(
            "max_keypoint_distance_mean",
            0.1,
            "pose heads: mean distance of matched detections' keypoints (those FP32 scores visible), in units of "
            "sqrt(FP32 box area) (pose fixture: 0.042-0.044)",
        ),
        "<=",
        "matched_keypoint_distance_mean",
        note="{keypoint_pairs} matched pairs; distance / sqrt(FP32 box area)",
    ),
)
