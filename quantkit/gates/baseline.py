"""The baseline gates: regression against a saved run (``--quantkit-compare``): accuracy, parity and size
anywhere, the latency ratio where the baseline was timed on the same CPU class."""

from __future__ import annotations

from .base import Gate, GateResult, Target, Threshold


def _figure(record: dict, path: tuple[str, ...]):
    for key in path:
        record = (record or {}).get(key)
    return record


def check_baseline(record: dict, baseline: dict, th: dict, case_id: str) -> list[GateResult]:
    """Regression against a saved run: what the model's task compares runs on (``Task.baseline_figures``: INT8 mAP
    where both runs were annotated, agreement with FP32, parity recall; a classifier's top-1 accuracy and agreement)
    and INT8 size may not get worse. A figure only one of the runs has fails closed."""
    from .. import tasks

    label, results = ("baseline", "now"), []
    for metric, path, key, scale in tasks.get(record.get("task")).baseline_figures():
        then, now = _figure(baseline, path), _figure(record, path)
        if then is None and now is None:
            continue
        results.append(
            GateResult(
                gate="baseline",
                metric=metric,
                value=scale * (then - now) if None not in (then, now) else None,
                op="<=",
                threshold=th[key],
                case_id=case_id,
                fp32=then,
                int8=now,
                labels=label,
                no_evidence=None if None not in (then, now) else f"only one of the runs measured {'.'.join(path)}",
            )
        )
    return results + [
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
            "them; a classifier's top-1 accuracy)",
        ),
        Threshold("baseline_recall_drop", 0.02, "parity recall loss against a saved baseline"),
        Threshold(
            "baseline_agreement_drop",
            0.02,
            "agreement mAP loss against a saved baseline (unlabelled path; a classifier's top-1 agreement)",
        ),
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
