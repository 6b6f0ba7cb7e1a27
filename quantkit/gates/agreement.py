"""The evidence and agreement gates, on validation images with or without annotations: enough images and FP32
detections to decide accuracy at all, and INT8's agreement mAP with FP32's own detections."""

from __future__ import annotations

from .base import Gate, GateResult, Target, Threshold


def check_evidence(images: int, fp32_detections: int | None, th: dict, case_id: str) -> list[GateResult]:
    """Enough validation images and FP32 detections (None: a task without detections) to judge accuracy at all;
    fewer is undecided, never a pass and never a failure of the model."""
    if fp32_detections is None:
        note = f"too little evidence: {images} images — need {th['min_val_images']:g}"
    else:
        need = f"need {th['min_val_images']:g} images and {th['min_val_fp32_detections']:g} FP32 detections"
        note = f"too little evidence: {images} images, {fp32_detections} detections — {need}"
    results = [
        GateResult(
            gate="evidence",
            metric="validation_images",
            value=images,
            op=">=",
            threshold=th["min_val_images"],
            case_id=case_id,
            images=images,
            evidence=True,
        ),
        GateResult(
            gate="evidence",
            metric="fp32_detections",
            value=fp32_detections,
            op=">=",
            threshold=th["min_val_fp32_detections"],
            case_id=case_id,
            images=images,
            evidence=True,
        ),
    ]
    results = results if fp32_detections is not None else results[:1]
    for r in results:
        r.note = "" if r.passed else note
    return results


def agreement_map(agreement: dict, th: dict, case_id: str) -> GateResult:
    """INT8's agreement mAP with FP32 (``CasePipeline.agreement``) against ``min_agreement_map``, decided from its
    interval."""
    return GateResult(
        gate="agreement",
        metric="agreement_map50_95",
        value=agreement["map50_95"],
        op=">=",
        threshold=th["min_agreement_map"],
        case_id=case_id,
        fp32=1.0 if agreement["map50_95"] is not None else None,
        int8=agreement["map50_95"],
        no_evidence=None if agreement["map50_95"] is not None else "FP32 made no detection on these images",
        evidence=agreement["map50_95"] is None,
        note=f"INT8 scored against FP32's {agreement['fp32_detections']} detections on {agreement['images']} images",
        interval=agreement.get("ci"),
        level=agreement.get("level"),
        images=agreement["images"],
    )


def check_agreement(agreement: dict, th: dict, case_id: str) -> list[GateResult]:
    """The evidence gates, then ``agreement_map``."""
    return check_evidence(agreement["images"], agreement["fp32_detections"], th, case_id) + [
        agreement_map(agreement, th, case_id)
    ]


def _evidence(t: Target) -> list[GateResult]:
    """No validation images at all is one failed gate: accuracy is never passed unmeasured."""
    if t.pipeline.evidence is None:
        return [
            GateResult(
                gate="accuracy",
                metric="validation_images",
                value=None,
                op=">=",
                threshold=t.th["min_val_images"],
                case_id=t.case_id,
                no_evidence="no validation images (pass --val-images DIR, annotated images, "
                "or a --calib folder to hold images out of)",
            )
        ]
    if not t.pipeline.task.uses_boxes:  # a classifier: the images count, each one judged
        return check_evidence(len(t.pipeline.images.ids), None, t.th, t.case_id)
    agreement = t.pipeline.agreement(t.spec)
    return check_evidence(agreement["images"], agreement["fp32_detections"], t.th, t.case_id)


def _agreement(t: Target) -> list[GateResult]:
    return [agreement_map(t.pipeline.agreement(t.spec), t.th, t.case_id)]


EVIDENCE = Gate(
    name="evidence",
    run=_evidence,
    tags=("accuracy",),
    thresholds=(
        Threshold(
            "min_val_images",
            25,
            "validation images needed before accuracy can be decided; fewer is not decided (exit 3), never a pass",
        ),
        Threshold(
            "min_val_fp32_detections",
            100,
            "FP32 detections on the validation images needed; fewer is not decided (exit 3), never a pass",
        ),
    ),
)
AGREEMENT = Gate(
    name="agreement",
    run=_agreement,
    needs=("val", "boxes"),
    tags=("accuracy",),
    thresholds=(
        Threshold(
            "min_agreement_map",
            0.9,
            "agreement mAP50-95: COCOeval of INT8's detections with FP32's as ground truth (unlabelled path)",
        ),
    ),
)
