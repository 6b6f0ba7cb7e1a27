"""The input gates: evidence lost on the way in (unreadable calibration or evaluation images, evaluation images
decoded at another size than annotated) fails the run instead of shrinking it silently."""

from __future__ import annotations

from .base import Gate, GateResult, Target, Threshold

SKIPPED = Threshold(
    "max_skipped_fraction",
    0.05,
    "unreadable calibration / evaluation images, evaluation images read at another size",
)


def check_inputs(kind: str, used: int, skipped: int, th: dict, case_id: str, mismatched: int = 0) -> list[GateResult]:
    """Images that could not be read (or whose size disagrees with the annotations) are evidence lost."""
    total = used + skipped
    results = [
        GateResult(
            gate="inputs",
            metric=f"{kind}_skipped_fraction",
            value=skipped / total if total else None,
            op="<=",
            threshold=th["max_skipped_fraction"],
            case_id=case_id,
            fp32=total,
            int8=skipped,
            labels=(f"{kind} images", "unreadable"),
            no_evidence=None if total else f"no {kind} images",
        )
    ]
    if kind == "eval":
        results.append(
            GateResult(
                gate="inputs",
                metric="eval_size_mismatch_fraction",
                value=mismatched / used if used else None,
                op="<=",
                threshold=th["max_skipped_fraction"],
                case_id=case_id,
                fp32=used,
                int8=mismatched,
                labels=("eval images", "size differs from annotation"),
                no_evidence=None if used else "no readable eval images",
            )
        )
    return results


def _calibration(t: Target) -> list[GateResult]:
    c = t.pipeline.quantized(t.spec).calibration
    return check_inputs("calib", c["images"], c["skipped"], t.th, t.case_id)


def _evaluation(t: Target) -> list[GateResult]:
    images = t.pipeline.images
    return check_inputs("eval", len(images.ids), len(images.skipped), t.th, t.case_id, len(images.mismatched))


CALIBRATION = Gate(
    name="calibration inputs", run=_calibration, needs=("calib",), tags=("inputs",), thresholds=(SKIPPED,)
)
EVALUATION = Gate(name="evaluation inputs", run=_evaluation, needs=("val",), tags=("inputs", "accuracy", "case"))
