"""The baseline gates: regression against a saved run (``--quantkit-compare``): accuracy, parity and size
anywhere, the latency ratio where the baseline was timed on the same CPU class."""

from __future__ import annotations

from .base import Gate, GateResult, Target, Threshold


def check_baseline(record: dict, baseline: dict, th: dict, case_id: str) -> list[GateResult]:
    """Regression against a saved run: agreement with FP32, parity recall and INT8 size may not get worse,
    nor INT8 mAP where both runs were annotated. A baseline without a figure this run has fails closed."""
    label = ("baseline", "now")
    results = []
    if record.get("int8_map50_95") is not None or baseline.get("int8_map50_95") is not None:
        then, now = baseline.get("int8_map50_95"), record.get("int8_map50_95")
        results.append(
            GateResult(
                gate="baseline",
                metric="int8_map50_95_loss_pt",
                value=100 * (then - now) if None not in (then, now) else None,
                op="<=",
                threshold=th["baseline_map_drop_pt"],
                case_id=case_id,
                fp32=then,
                int8=now,
                labels=label,
                no_evidence=None if None not in (then, now) else "only one of the runs had annotated images",
            )
        )
    for kind in ("mask", "keypoints"):  # segmentation / pose heads: their INT8 mAP may not get worse either
        then, now = ((r.get(kind) or {}).get("int8_map50_95") for r in (baseline, record))
        if then is not None or now is not None:
            results.append(
                GateResult(
                    gate="baseline",
                    metric=f"int8_{kind}_map50_95_loss_pt",
                    value=100 * (then - now) if None not in (then, now) else None,
                    op="<=",
                    threshold=th["baseline_map_drop_pt"],
                    case_id=case_id,
                    fp32=then,
                    int8=now,
                    labels=label,
                    no_evidence=None if None not in (then, now) else f"only one of the runs measured {kind} mAP",
                )
            )
    then, now = (r.get("agreement", {}).get("map50_95") for r in (baseline, record))
    results.append(
        GateResult(
            gate="baseline",
            metric="agreement_map50_95_loss",
            value=then - now if None not in (then, now) else None,
            op="<=",
            threshold=th["baseline_agreement_drop"],
            case_id=case_id,
            fp32=then,
            int8=now,
            labels=label,
            no_evidence=None if None not in (then, now) else "the baseline or this run has no agreement mAP",
        )
    )
    return results + [
        GateResult(
            gate="baseline",
            metric="parity_recall_loss",
            value=baseline["parity"]["recall"] - record["parity"]["recall"],
            op="<=",
            threshold=th["baseline_recall_drop"],
            case_id=case_id,
            fp32=baseline["parity"]["recall"],
            int8=record["parity"]["recall"],
            labels=label,
        ),
        GateResult(
            gate="baseline",
            metric="int8_size_growth",
            value=record["int8_bytes"] / baseline["int8_bytes"] - 1,
            op="<=",
            threshold=th["baseline_size_growth"],
            case_id=case_id,
            fp32=baseline["int8_bytes"] / 1e6,
            int8=record["int8_bytes"] / 1e6,
            labels=("baseline MB", "now MB"),
        ),
    ]


def check_baseline_latency(record: dict, baseline: dict, th: dict, case_id: str) -> GateResult:
    """The INT8/FP32 ratio may grow by at most ``baseline_latency_ratio_growth`` over the baseline's
    (the caller makes sure both were timed on the same CPU class, ``cpu.cpu_class``)."""
    now, then = record["latency"]["ratio"], baseline["latency"]["ratio"]
    return GateResult(
        gate="baseline",
        metric="latency_ratio_growth",
        value=now / then - 1,
        op="<=",
        threshold=th["baseline_latency_ratio_growth"],
        case_id=case_id,
        fp32=then,
        int8=now,
        labels=("baseline ratio", "now"),
    )


def _run(t: Target) -> list[GateResult]:
    record, baseline = t.given["baseline"]
    return check_baseline(record, baseline, t.th, t.case_id)


def _latency(t: Target) -> list[GateResult]:
    record, baseline = t.given["baseline"]
    return [check_baseline_latency({**record, "latency": t.given["timing"]}, baseline, t.th, t.case_id)]


GATE = Gate(
    name="baseline",
    run=_run,
    needs=("baseline",),
    thresholds=(
        Threshold(
            "baseline_map_drop_pt",
            0.5,
            "INT8 mAP50-95 loss against a saved baseline, points (boxes; masks and keypoints too where the model has "
            "them)",
        ),
        Threshold("baseline_recall_drop", 0.02, "parity recall loss against a saved baseline"),
        Threshold("baseline_agreement_drop", 0.02, "agreement mAP loss against a saved baseline (unlabelled path)"),
        Threshold("baseline_size_growth", 0.02, "INT8 size growth against a saved baseline (fraction)"),
    ),
)
LATENCY = Gate(
    name="baseline latency",
    run=_latency,
    needs=("baseline", "timing"),
    tags=("baseline",),
    thresholds=(
        Threshold(
            "baseline_latency_ratio_growth",
            0.25,
            "INT8/FP32 ratio growth against a baseline timed on the same CPU class (vendor, INT8 instructions, "
            "threads)",
        ),
    ),
)
