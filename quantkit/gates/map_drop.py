"""The annotated accuracy gates of boxes: the FP32 floor (the case's own) and the INT8 mAP50-95 drops."""

from __future__ import annotations

from .base import OFF, Gate, GateResult, Target, Threshold


def _drop_gate(
    prefix: str, f: float, q: float, limit: float, case_id: str, boot: dict | None, nms: str | None
) -> GateResult:
    """FP32 - INT8 mAP50-95 in points against ``limit``, decided from the paired bootstrap's interval."""
    return GateResult(
        gate="mAP",
        metric=f"{prefix}map50_95_drop_pt",
        value=100 * (f - q),
        op="<=",
        threshold=limit,
        case_id=case_id,
        fp32=f,
        int8=q,
        interval=boot["ci"] if boot else None,
        level=boot["level"] if boot else None,
        images=boot["images"] if boot else None,
        detail=f", NMS {nms}" if nms else "",
        note=f"{boot['resamples']} paired resamples of {boot['images']} images" if boot else "",
    )


def fp32_floor(fp32: dict, th: dict, case_id: str) -> GateResult:
    """FP32 mAP50-95 against ``min_fp32_map``: a sanity floor; below it the setup is broken, not the quantization."""
    floor = GateResult(
        gate="mAP",
        metric="fp32_map50_95",
        value=fp32["map50_95"],
        op=">=",
        threshold=th["min_fp32_map"],
        case_id=case_id,
    )
    if not floor.passed:
        floor.note = (
            "the FP32 model itself scores below the floor: the setup is broken (class mapping, "
            "preprocessing or the wrong data), not the quantization"
        )
    return floor


def map_drops(
    fp32: dict, int8: dict, th: dict, case_id: str, bootstrap: dict | None = None, nms: str | None = None
) -> list[GateResult]:
    """The mAP50-95 drop; with a paired ``bootstrap`` (``quantkit.measure.bootstrap.paired_drop``) it is decided
    from its interval: pass when all of it is within ``max_map_drop_pt``, fail when none of it is, undecided when
    it holds the threshold. ``max_map_drop_pt_small`` and ``max_class_ap_drop_pt`` gate small objects and the
    worst class when on."""
    named = f", NMS {nms}" if nms else ""
    results = [_drop_gate("", fp32["map50_95"], int8["map50_95"], th["max_map_drop_pt"], case_id, bootstrap, nms)]
    if th["max_map_drop_pt_small"] < OFF:
        measured = fp32["aps"] >= 0 and int8["aps"] >= 0
        results.append(
            GateResult(
                gate="mAP",
                metric="map50_95_drop_pt_small",
                value=100 * (fp32["aps"] - int8["aps"]) if measured else None,
                op="<=",
                threshold=th["max_map_drop_pt_small"],
                case_id=case_id,
                fp32=fp32["aps"],
                int8=int8["aps"],
                detail=named,
                no_evidence=None if measured else "no small objects (area < 32^2) in the annotations",
            )
        )
    if th["max_class_ap_drop_pt"] < OFF:
        drops = {
            name: 100 * (ap - int8["per_class"].get(name, -1.0))
            for name, ap in fp32["per_class"].items()
            if ap >= 0 and int8["per_class"].get(name, -1.0) >= 0
        }
        worst = max(drops, key=drops.get) if drops else None
        results.append(
            GateResult(
                gate="mAP",
                metric="class_ap_drop_pt_worst",
                value=drops.get(worst),
                op="<=",
                threshold=th["max_class_ap_drop_pt"],
                case_id=case_id,
                fp32=fp32["per_class"].get(worst),
                int8=int8["per_class"].get(worst),
                detail=named,
                note=f"worst class '{worst}'" if worst else "",
                no_evidence=None if drops else "no class has annotations to score",
            )
        )
    return results


def check_map(
    fp32: dict, int8: dict, th: dict, case_id: str, bootstrap: dict | None = None, nms: str | None = None
) -> list[GateResult]:
    """The FP32 floor, then ``map_drops``."""
    return [fp32_floor(fp32, th, case_id)] + map_drops(fp32, int8, th, case_id, bootstrap, nms)


def _floor(t: Target) -> list[GateResult]:
    return [fp32_floor(t.pipeline.map(None), t.th, t.case_id)]


def _drops(t: Target) -> list[GateResult]:
    return t.pipeline.map_gates(t.spec, t.th, t.case_id)


FLOOR = Gate(
    name="fp32 floor",
    run=_floor,
    needs=("coco",),
    tags=("accuracy", "case"),
    thresholds=(
        Threshold(
            "min_fp32_map",
            0.05,
            "sanity floor of FP32 mAP50-95; a case sets its model card's floor (the fixture's cases: 0.50)",
        ),
    ),
)
DROPS = Gate(
    name="mAP",
    run=_drops,
    needs=("coco",),
    tags=("accuracy",),
    thresholds=(
        Threshold(
            "max_map_drop_pt",
            1.5,
            "FP32 - INT8 mAP50-95, absolute points (fixture, onnxruntime 1.32.0: 0.46 static QDQ, 0.12 weights only; "
            "`results/1.32.0/`)",
        ),
        Threshold("max_map_drop_pt_small", 100.0, "small objects' (area < 32^2) AP drop, points; 100 or more = off"),
        Threshold("max_class_ap_drop_pt", 100.0, "the worst class's AP50-95 drop, points; 100 or more = off"),
    ),
)
