"""The parity gates: FP32 vs INT8 detections on the same validation images, in both directions (the mask and
keypoint parity of segmentation and pose heads: their tasks' gates, ``quantkit/tasks/``)."""

from __future__ import annotations

from .base import Gate, GateResult, Target, Threshold


def _measured(parity: dict, key: str) -> dict:
    """The interval fields of parity figure ``key`` (``metrics.parity``'s per-image bootstrap)."""
    return {"interval": (parity.get("ci") or {}).get(key), "level": parity.get("level"), "images": parity.get("images")}


def too_few_pairs(parity: dict, th: dict) -> str | None:
    """Why the matched pairs' drift and IoU cannot be judged (fewer than ``min_parity_matches``), or None."""
    if parity["matched"] >= th["min_parity_matches"]:
        return None
    return f"only {parity['matched']} FP32 detections were matched by INT8 (need >= {th['min_parity_matches']:g})"


def detection_parity(parity: dict, th: dict, case_id: str) -> list[GateResult]:
    """Both directions (recall of FP32 detections, precision of INT8 ones), agreement of the matched
    pairs (only with at least ``min_parity_matches`` of them), collapsed images, and scores above 1; each
    figure over images decided from its interval. Threshold crossings are counted apart (``metrics.parity``)."""
    return _directions(parity, th, case_id) + _matched_and_collapsed(parity, th, case_id)


def _crossing_note(parity: dict) -> str:
    crossed = parity.get("crossings") or {}
    if not crossed.get("fp32_kept_int8_under_conf"):
        return ""
    return (
        f"{crossed['fp32_kept_int8_under_conf']} FP32 detections INT8 scores just under conf (within the score "
        f"drift {crossed['margin']:.3f}) counted as crossings, not lost; INT8 keeps them at conf "
        f">= {crossed['int8_keeps_all_at_conf']:g}"
    )


def _directions(parity: dict, th: dict, case_id: str) -> list[GateResult]:
    """Recall of FP32's detections and precision of INT8's."""
    at = f"score >= {parity.get('score_thr', 0.25):g}"
    return [
        GateResult(
            gate="parity",
            metric="recall_of_fp32_detections",
            value=parity["recall"],
            op=">=",
            threshold=th["min_parity_recall"],
            case_id=case_id,
            fp32=parity["fp32_count"],
            int8=parity["matched"],
            labels=("FP32 detections", "matched by INT8"),
            no_evidence=None if parity["recall"] is not None else f"FP32 made no detection at {at} on these images",
            evidence=parity["recall"] is None,
            note=_crossing_note(parity),
            **_measured(parity, "recall"),
        ),
        GateResult(
            gate="parity",
            metric="precision_of_int8_detections",
            value=parity["precision"],
            op=">=",
            threshold=th["min_parity_precision"],
            case_id=case_id,
            fp32=parity["int8_count"],
            int8=parity["matched"],
            labels=("INT8 detections", "also in FP32"),
            no_evidence=None if parity["precision"] is not None else f"INT8 made no detection at {at} on these images",
            **_measured(parity, "precision"),
        ),
    ]


def _matched_and_collapsed(parity: dict, th: dict, case_id: str) -> list[GateResult]:
    """The matched pairs' score drift and IoU (with at least ``min_parity_matches`` of them), collapsed images,
    and scores above 1."""
    at, thin = f"score >= {parity.get('score_thr', 0.25):g}", too_few_pairs(parity, th)
    return [
        GateResult(
            gate="parity",
            metric="score_drift_mean",
            value=parity["score_drift_mean"],
            op="<=",
            threshold=th["max_score_drift_mean"],
            case_id=case_id,
            no_evidence=thin,
            evidence=bool(thin),
            **_measured(parity, "score_drift_mean"),
        ),
        GateResult(
            gate="parity",
            metric="matched_iou_mean",
            value=parity["iou_mean"],
            op=">=",
            threshold=th["min_iou_mean"],
            case_id=case_id,
            no_evidence=thin,
            evidence=bool(thin),
            **_measured(parity, "iou_mean"),
        ),
        GateResult(
            gate="parity",
            metric="collapsed_image_fraction",
            value=parity["collapsed_fraction"],
            op="<=",
            threshold=th["max_collapsed_fraction"],
            case_id=case_id,
            fp32=parity["scored_images"],
            int8=parity["collapsed_images"],
            labels=("images with FP32 detections", "collapsed"),
            no_evidence=None
            if parity["collapsed_fraction"] is not None
            else f"FP32 made no detection at {at} on these images",
            evidence=parity["collapsed_fraction"] is None,
            **_measured(parity, "collapsed_fraction"),
        ),
        GateResult(
            gate="parity",
            metric="max_class_score",
            value=parity["int8_max_score"],
            op="<=",
            threshold=th["max_int8_score"],
            case_id=case_id,
            fp32=parity["fp32_max_score"],
            int8=parity["int8_max_score"],
        ),
    ]


def _run(t: Target) -> list[GateResult]:
    return detection_parity(t.pipeline.parity(t.spec), t.th, t.case_id)


GATE = Gate(
    name="parity",
    run=_run,
    needs=("val", "boxes"),
    tags=("accuracy",),
    thresholds=(
        Threshold(
            "min_parity_recall",
            0.9,
            "share of FP32 detections (score >= 0.25) INT8 reproduces (same class, IoU >= 0.5)",
        ),
        Threshold("min_parity_precision", 0.9, "share of INT8 detections (score >= 0.25) FP32 also has"),
        Threshold("min_parity_matches", 20, "matched pairs needed before drift and IoU are judged"),
        Threshold("max_score_drift_mean", 0.05, "mean abs score difference of matched detections"),
        Threshold("min_iou_mean", 0.9, "mean IoU of matched boxes"),
        Threshold("max_collapsed_fraction", 0.05, "share of images whose INT8 best score fell below half of FP32's"),
        Threshold("max_int8_score", 1.0, "any INT8 class score above 1 (the head quantized onto the box scale)"),
        Threshold(
            "collapse_score_ratio",
            0.5,
            "parity: an image \"collapsed\" when INT8's best score is below this share of FP32's",
        ),
        Threshold(
            "match_iou",
            0.5,
            "parity and the operating point: a detection matches one of the same class at this IoU (greedy)",
        ),
    ),
)
