"""The gates: numbers in, verdicts out, with messages that carry every number.

Each check returns one GateResult per metric; a failed one reads like
``mAP gate FAILED: map50_95_drop_pt 5.2100 > 1.5000 (FP32 0.6123, INT8 0.5602)
[shapes-v8n-192x320/static-qdq/cpu, onnxruntime 1.32.0]``.
Used by the pytest suite (assertions) and by `quantkit check` (verdict column, exit code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import compat, providers
from .measure import intervals
from .cpu import cpu_info, has_vnni

OFF = 100.0  # an optional threshold at or above this is off (no gate)


@dataclass
class GateResult:
    gate: str
    metric: str
    value: float
    op: str
    threshold: float
    case_id: str
    fp32: float | None = None
    int8: float | None = None
    labels: tuple[str, str] = ("FP32", "INT8")
    no_evidence: str | None = None  # why the metric could not be measured: the gate fails closed
    note: str = ""  # context printed after the numbers (e.g. the CPU class, the quantizer's notes)
    detail: str = ""  # printed right after the FP32/INT8 values (e.g. the mAP drop's CI95)
    interval: list[float] | None = None  # the value's decision interval (``measure.intervals``): it decides
    level: float | None = None  # the interval's two-sided level
    images: int | None = None  # the images the value was measured on (how many more would decide)
    evidence: bool = False  # short of evidence (below the count, or nothing to measure) is undecided, not a failure

    @property
    def outcome(self) -> str:
        """ "pass", "fail" or "undecided": from the interval where there is one (``intervals.decide``)."""
        if self.no_evidence is not None or self.value is None:
            return "undecided" if self.evidence else "fail"
        if self.op == "==":
            return "pass" if self.value == self.threshold else "fail"
        outcome = intervals.decide(self.value, self.interval, self.op, self.threshold)
        return "undecided" if outcome == "fail" and self.evidence else outcome

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    @property
    def failed(self) -> bool:
        return self.outcome == "fail"

    @property
    def more_images(self) -> int | None:
        """About how many more images would decide an undecided gate (None: unknown or decided)."""
        if self.outcome != "undecided" or not self.images or self.value is None:
            return None
        if self.evidence:  # a count short of its minimum grows in proportion to the images
            return max(1, int(-(-self.threshold * self.images // max(self.value, 1))) - self.images)
        return intervals.images_to_decide(self.images, self.value, self.interval, self.threshold)

    @property
    def verdict(self) -> str:
        """ "passed", "FAILED", "not decided", or "no gain" (a latency gate passed with INT8 slower than FP32)."""
        if self.outcome == "fail":
            return "FAILED"
        if self.outcome == "undecided":
            return "not decided"
        return "no gain" if self.gate == "latency" and self.value > 1.0 else "passed"

    def message(self) -> str:
        where = f"[{self.case_id}, onnxruntime {compat.ORT_VERSION}]"
        note = f" — {self.note}" if self.note else ""
        if self.no_evidence is not None or self.value is None:
            return (
                f"{self.gate} gate {self.verdict}: {self.metric} not measured: {self.no_evidence or 'no value'} "
                f"(threshold {self.op} {self.threshold:.4f}) {where}{note}"
            )
        inverse = {"<=": ">", ">=": "<", "==": "!="}[self.op]
        shown = {"pass": self.op, "fail": inverse, "undecided": "vs"}[self.outcome]
        extra = (
            f" ({self.labels[0]} {self.fp32:.4g}, {self.labels[1]} {self.int8:.4g})"
            if self.fp32 is not None and self.int8 is not None
            else ""
        )
        if self.interval is not None:
            extra += f", CI{100 * self.level:.0f} [{self.interval[0]:.4f}, {self.interval[1]:.4f}]"
            extra += " holds the threshold" if self.outcome == "undecided" else ""
        if self.outcome == "undecided":
            more = self.more_images
            note += f" — {self.images} images: about {more} more would decide" if more else ""
        if self.verdict == "no gain":
            extra = "; " + self.note if self.note else ""
            note = f" — INT8 is {self.value:.2f}x FP32, slower: size only, no speed gain{extra}"
        return (
            f"{self.gate} gate {self.verdict}: {self.metric} {self.value:.4f} {shown} {self.threshold:.4f}{extra}"
            f"{self.detail} {where}{note}"
        )


def failures(results: list[GateResult]) -> list[str]:
    """The messages of the gates that failed (undecided ones are not failures: ``undecided``)."""
    return [r.message() for r in results if r.failed]


def undecided(results: list[GateResult]) -> list[GateResult]:
    """The gates whose interval holds their threshold, or whose evidence is short."""
    return [r for r in results if r.outcome == "undecided"]


def undecided_line(results: list[GateResult]) -> str:
    """One line for a run whose accuracy was not decided: the evidence, and about how many more images would
    decide every undecided gate."""
    open_ = undecided(results)
    counts = [r.value for r in results if r.metric == "fp32_detections"]
    images = max((r.images or 0 for r in open_), default=0)
    known = [r.more_images for r in open_ if r.more_images is not None]
    need = f"about {max(known)} more would decide" if known else "more images would decide"
    dets = f", {int(counts[0])} FP32 detections" if counts else ""
    return f"accuracy not decided: {images} images{dets} — {need} ({', '.join(sorted({r.metric for r in open_}))})"


def undecided_lines(results: list[GateResult]) -> list[str]:
    """``undecided_line`` and each undecided gate's message; [] when every gate decided."""
    return [undecided_line(results)] + [r.message() for r in undecided(results)] if undecided(results) else []


def assert_passed(results: list[GateResult]) -> None:
    """Raise AssertionError listing every failed gate with its numbers; an undecided gate is never a pass:
    AssertionError with ``undecided_line`` and the undecided gates."""
    lines = failures(results) or undecided_lines(results)
    if lines:
        raise AssertionError("\n".join(lines))


def check_size(
    fp32_bytes: int, int8_bytes: int, th: dict, case_id: str, weights: dict | None = None
) -> list[GateResult]:
    """``compression``, the whole file (FP32 bytes / INT8 bytes), against ``min_compression``: a floor for
    catastrophes, which a small model's graph (the QDQ nodes, ~0.25-0.5 MB on a YOLOv8n / YOLO26n graph) must
    not fail; with ``weights`` (``QuantResult.weights()``) ``weight_compression``, what quantization could
    shrink (every weight but the head's own float constants, in FP32 against INT8 bytes with its scales and
    zero points; a weight left float counts 1:1), against ``min_weight_compression``: it fails a model that
    quantized nothing, part of its Convs, or carries a float blob, however small the model. Both messages carry
    both figures, the weights' float share and the head's float bytes (thresholds.md, 'The size gate')."""
    whole = fp32_bytes / int8_bytes
    results = [
        GateResult(
            gate="size",
            metric="compression",
            value=whole,
            op=">=",
            threshold=th["min_compression"],
            case_id=case_id,
            fp32=fp32_bytes / 1e6,
            int8=int8_bytes / 1e6,
            detail=" MB",
        )
    ]
    if weights is None:
        return results
    share = weights["float_share"]
    floats = (
        f"{100 * share:.2f} % of them float (the head's float {weights['head_float'] / 1e3:.1f} KB not counted)"
        if share is not None
        else "no weights"
    )
    value = weights["compression"]
    results[0].detail += f"; the weights {value:.2f}x, {floats}" if value is not None else "; no weights"
    results.append(
        GateResult(
            gate="size",
            metric="weight_compression",
            value=value,
            op=">=",
            threshold=th["min_weight_compression"],
            case_id=case_id,
            fp32=weights["fp32"] / 1e6,
            int8=weights["int8"] / 1e6,
            detail=f" MB of weights, {floats}; the file {whole:.2f}x ({fp32_bytes / 1e6:.2f} -> {int8_bytes / 1e6:.2f}"
            " MB)",
            no_evidence=None if value is not None else "the INT8 model has no weight tensors",
        )
    )
    if value is not None and share is not None and results[1].failed:
        results[1].note = (
            f"{100 * share:.0f} % of the weights stay float: nodes left unquantized (--exclude, op types) or a "
            "float tensor carried along"
            if share >= 0.05
            else "the quantized weights take more than 8 bits an element with their scales and zero points"
        )
    return results


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


def check_map(
    fp32: dict, int8: dict, th: dict, case_id: str, bootstrap: dict | None = None, nms: str | None = None
) -> list[GateResult]:
    """The FP32 floor and the mAP50-95 drop; with a paired ``bootstrap`` (``quantkit.measure.bootstrap.paired_drop``)
    the drop is decided from its interval: pass when all of it is within ``max_map_drop_pt``, fail when none
    of it is, undecided when it holds the threshold. ``max_map_drop_pt_small`` and ``max_class_ap_drop_pt``
    gate small objects and the worst class when on."""
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
    named = f", NMS {nms}" if nms else ""
    results = [
        floor,
        _drop_gate("", fp32["map50_95"], int8["map50_95"], th["max_map_drop_pt"], case_id, bootstrap, nms),
    ]
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


def check_operating_point(fp32: dict, int8: dict, th: dict, case_id: str, iou: float | None = None) -> list[GateResult]:
    """F1 at the deployed confidence (``metrics.operating_point``) may drop at most ``max_f1_drop_pt`` points, decided
    from the drop's paired per-image interval (F1 = 2 matched / (detections + annotations), FP32 and INT8 counts of
    the same images resampled together)."""
    measured = fp32["f1"] is not None and int8["f1"] is not None
    interval = None
    if measured and fp32.get("per_image") and int8.get("per_image"):
        f, q = fp32["per_image"], int8["per_image"]

        def drop(f_matched, f_dets, q_matched, q_dets, annotations):
            return 100 * (2 * f_matched / (f_dets + annotations) - 2 * q_matched / (q_dets + annotations))

        args = (f["matched"], f["detections"], q["matched"], q["detections"], f["annotations"])
        interval = intervals.paired_interval(drop, *args, level=th["decision_level"])

    def pr(op):  # noqa: E306
        return "no detection" if op["precision"] is None else f"P {op['precision']:.3f} R {op['recall']:.3f}"

    where = f"conf {fp32['conf']:g}" + (f", NMS IoU {iou:g}" if iou is not None else "")
    return [
        GateResult(
            gate="operating point",
            metric="f1_drop_pt",
            value=100 * (fp32["f1"] - int8["f1"]) if measured else None,
            op="<=",
            threshold=th["max_f1_drop_pt"],
            case_id=case_id,
            fp32=fp32["f1"],
            int8=int8["f1"],
            labels=("FP32 F1", "INT8 F1"),
            no_evidence=None if measured else "the images have no annotation of the mapped classes",
            note=f"{where}: FP32 {pr(fp32)}, INT8 {pr(int8)} (greedy matching, IoU >= {th['match_iou']:g}, same class)",
            interval=interval,
            level=th["decision_level"] if interval else None,
            images=len(fp32["per_image"]["matched"]) if interval else None,
        )
    ]


def latency_with_retry(
    measure: Callable[[int], dict], check: Callable[[dict], GateResult], th: dict
) -> tuple[GateResult, dict]:
    """``check(measure(rounds))``; a ratio over its gate is measured once more with ``latency_retry_rounds`` and
    that run decides: a real regression fails both, a burst of noise on a shared runner rarely does."""
    measured = measure(int(th["latency_rounds"]))
    result = check(measured)
    if not result.passed:
        first, measured = measured["ratio"], measure(int(th["latency_retry_rounds"]))
        result = check(measured)
        result.note += (
            f"; the first run ({th['latency_rounds']:g} rounds) read {first:.3f}, this is the second "
            f"({th['latency_retry_rounds']:g} rounds)"
        )
    return result, measured


def _measured(parity: dict, key: str) -> dict:
    """The interval fields of parity figure ``key`` (``metrics.parity``'s per-image bootstrap)."""
    return {"interval": (parity.get("ci") or {}).get(key), "level": parity.get("level"), "images": parity.get("images")}


def check_parity(parity: dict, th: dict, case_id: str) -> list[GateResult]:
    """Both directions (recall of FP32 detections, precision of INT8 ones), agreement of the matched
    pairs (only with at least ``min_parity_matches`` of them), collapsed images, and scores above 1; each
    figure over images decided from its interval. Threshold crossings are counted apart (``metrics.parity``)."""
    at = f"score >= {parity.get('score_thr', 0.25):g}"
    few = parity["matched"] < th["min_parity_matches"]
    thin = (
        f"only {parity['matched']} FP32 detections were matched by INT8 (need >= {th['min_parity_matches']:g})"
        if few
        else None
    )
    crossed = parity.get("crossings") or {}
    crossing_note = (
        f"{crossed['fp32_kept_int8_under_conf']} FP32 detections INT8 scores just under conf (within the score "
        f"drift {crossed['margin']:.3f}) counted as crossings, not lost; INT8 keeps them at conf "
        f">= {crossed['int8_keeps_all_at_conf']:g}"
        if crossed.get("fp32_kept_int8_under_conf")
        else ""
    )
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
            note=crossing_note,
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
    ] + check_task_parity(parity, th, case_id, thin)


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


def check_evidence(images: int, fp32_detections: int, th: dict, case_id: str) -> list[GateResult]:
    """Enough validation images and FP32 detections to judge accuracy at all; fewer is undecided, never a pass
    and never a failure of the model."""
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
    for r in results:
        r.note = "" if r.passed else note
    return results


def check_agreement(agreement: dict, th: dict, case_id: str) -> list[GateResult]:
    """The evidence gates, then INT8's agreement mAP with FP32 (``CasePipeline.agreement``), decided from its
    interval."""
    return check_evidence(agreement["images"], agreement["fp32_detections"], th, case_id) + [
        GateResult(
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
            note=f"INT8 scored against FP32's {agreement['fp32_detections']} detections on "
            f"{agreement['images']} images",
            interval=agreement.get("ci"),
            level=agreement.get("level"),
            images=agreement["images"],
        )
    ]


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


def check_graph(graph: dict, config: dict, th: dict, case_id: str) -> list[GateResult]:
    """Static and weight-only models keep no float Conv beyond the allowance; head-aware configs keep the head float."""
    results = []
    if config["mode"] in ("static", "weights"):
        results.append(
            GateResult(
                gate="graph",
                metric="float_convs",
                value=len(graph["float_convs"]),
                op="<=",
                threshold=th["max_float_conv"],
                case_id=case_id,
            )
        )
    if config["keep_head_float"]:
        results.append(
            GateResult(
                gate="graph",
                metric="head_found",
                value=float(graph["head_found"]),
                op="==",
                threshold=1.0,
                case_id=case_id,
            )
        )
        if graph["head_found"]:
            results.append(
                GateResult(
                    gate="graph",
                    metric="head_float",
                    value=float(graph["head_float"]),
                    op="==",
                    threshold=1.0,
                    case_id=case_id,
                )
            )
    return results


def latency_threshold_key(ep: str, size_only: bool = False) -> str:
    """The threshold table's key for an EP on this machine (its registry entry's: the CPU has one per CPU class,
    VNNI/AMX or not); a size-only configuration has a cap instead."""
    if size_only:
        return "max_latency_ratio_size_only"
    return providers.get(ep).threshold_key(has_vnni())


def check_latency(measured: dict, th: dict, case_id: str, size_only: bool = False) -> GateResult:
    """INT8/FP32 of one interleaved timing (``measured``: ep, threads, fp32_ms, int8_ms, ratio, as
    ``bench.latency_ratio`` returns it) against the EP's and CPU class's threshold (or the size-only cap)."""
    ep, threads = measured["ep"], measured.get("threads")
    key = latency_threshold_key(ep, size_only)
    flags = ",".join(f for f in cpu_info()["flags"] if f != "avx512f") or "none"
    where = f"{threads} thread{'s' if threads != 1 else ''}, " if threads else ""
    note = f"{key}; {where}CPU {cpu_info()['brand']} [{flags}]"
    return GateResult(
        gate="latency",
        metric=f"int8/fp32 interleaved median on {ep}",
        value=measured["ratio"],
        op="<=",
        threshold=th[key],
        case_id=case_id,
        fp32=measured["fp32_ms"],
        int8=measured["int8_ms"],
        labels=("FP32 ms", "INT8 ms"),
        note=note,
    )


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
