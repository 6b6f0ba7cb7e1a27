"""The segmentation and pose gates: mask / keypoint mAP drops and the matched pairs' mask IoU and keypoint distance.

Their checks are as they were in ``gates.py``; the two gates below declare them for the registry until the task
registry (``quantkit/tasks/``) declares them with its tasks (then they go from here: a gate is declared once).
"""

from __future__ import annotations

from .base import Gate, GateResult, Target, Threshold
from .map_drop import _drop_gate
from .parity import _measured, too_few_pairs


TASK_MAPS = {"mask": "max_mask_map_drop_pt", "keypoints": "max_keypoint_map_drop_pt"}  # stats label -> threshold


def check_task_maps(
    fp32: dict, int8: dict, th: dict, case_id: str, bootstraps: dict, nms: str | None = None
) -> list[GateResult]:
    """Mask and keypoint mAP50-95 drops (segmentation and pose heads, ``fp32["mask"]`` / ``fp32["keypoints"]``),
    each decided like the box drop from its paired interval (``bootstraps[label]``)."""
    return [
        _drop_gate(
            f"{label}_", fp32[label]["map50_95"], int8[label]["map50_95"], th[key], case_id, bootstraps.get(label), nms
        )
        for label, key in TASK_MAPS.items()
        if fp32.get(label) is not None and int8.get(label) is not None
    ]


def check_task_parity(parity: dict, th: dict, case_id: str, thin: str | None = None) -> list[GateResult]:
    """Segmentation heads: the mean mask IoU of matched detections; pose heads: the mean distance of their
    keypoints in units of the FP32 box's size (``metrics.task_parity``). [] for a detector."""
    results = []
    if "mask_iou_mean" in parity:
        value = parity["mask_iou_mean"]
        results.append(
            GateResult(
                gate="parity",
                metric="matched_mask_iou_mean",
                value=value,
                op=">=",
                threshold=th["min_mask_iou_mean"],
                case_id=case_id,
                fp32=parity["mask_pairs"],
                int8=parity.get("mask_iou_min"),
                labels=("matched pairs", "lowest mask IoU"),
                no_evidence=thin or (None if value is not None else "no matched detection pair has masks"),
                **_measured(parity, "mask_iou_mean"),
            )
        )
    if "keypoint_distance_mean" in parity:
        value = parity["keypoint_distance_mean"]
        results.append(
            GateResult(
                gate="parity",
                metric="matched_keypoint_distance_mean",
                value=value,
                op="<=",
                threshold=th["max_keypoint_distance_mean"],
                case_id=case_id,
                no_evidence=thin
                or (None if value is not None else "no matched detection pair has a visible FP32 keypoint"),
                note=f"{parity['keypoint_pairs']} matched pairs; distance / sqrt(FP32 box area)",
                **_measured(parity, "keypoint_distance_mean"),
            )
        )
    return results


def _maps(t: Target) -> list[GateResult]:
    return t.pipeline.task_map_gates(t.spec, t.th, t.case_id)


def _parity(t: Target) -> list[GateResult]:
    parity = t.pipeline.parity(t.spec)
    return check_task_parity(parity, t.th, t.case_id, too_few_pairs(parity, t.th))


MAPS = Gate(
    name="task mAP",
    run=_maps,
    needs=("coco",),
    tags=("accuracy", "task"),
    thresholds=(
        Threshold(
            "max_mask_map_drop_pt",
            1.5,
            "segmentation heads: FP32 - INT8 mask mAP50-95, points, decided from its paired interval like the box drop "
            "(segmentation fixture static-qdq: 0.15 [-0.49, 0.92] on the first 60 val images)",
        ),
        Threshold(
            "max_keypoint_map_drop_pt",
            1.5,
            "pose heads: FP32 - INT8 keypoint (OKS) mAP50-95, points, with its paired CI95 (pose fixture static-qdq: "
            "-0.15 [-1.08, 0.81] on the first 60)",
        ),
    ),
)
PARITY = Gate(
    name="task parity",
    run=_parity,
    needs=("val",),
    tags=("accuracy", "parity", "task"),
    thresholds=(
        Threshold(
            "min_mask_iou_mean",
            0.9,
            "segmentation heads: mean mask IoU of matched detections (any images; segmentation fixture: 0.962-0.968)",
        ),
        Threshold(
            "max_keypoint_distance_mean",
            0.1,
            "pose heads: mean distance of matched detections' keypoints (those FP32 scores visible), in units of "
            "sqrt(FP32 box area) (pose fixture: 0.042-0.044)",
        ),
    ),
)
