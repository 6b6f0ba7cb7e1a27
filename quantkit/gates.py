"""The gates: numbers in, verdicts out, with messages that carry every number.

Each check returns one GateResult per metric; a failed one reads like
``mAP gate FAILED: map50_95_drop_pt 5.2100 > 1.5000 (FP32 0.6123, INT8 0.5602) [shapes-v8n-192x320/static-qdq/cpu, onnxruntime 1.32.0]``.
Used by the pytest suite (assertions) and by `quantkit check` (verdict column, exit code).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from . import compat

_OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


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

    @property
    def passed(self) -> bool:
        return bool(_OPS[self.op](self.value, self.threshold))

    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        inverse = {"<=": ">", ">=": "<", "==": "!="}[self.op]
        shown = self.op if self.passed else inverse
        extra = f" ({self.labels[0]} {self.fp32:.4g}, {self.labels[1]} {self.int8:.4g})" if self.fp32 is not None and self.int8 is not None else ""
        return (f"{self.gate} gate {verdict}: {self.metric} {self.value:.4f} {shown} {self.threshold:.4f}{extra} "
                f"[{self.case_id}, onnxruntime {compat.ORT_VERSION}]")


def failures(results: list[GateResult]) -> list[str]:
    return [r.message() for r in results if not r.passed]


def assert_passed(results: list[GateResult]) -> None:
    """Raise AssertionError listing every failed gate with its numbers."""
    failed = failures(results)
    if failed:
        raise AssertionError("\n".join(failed))


def check_size(fp32_bytes: int, int8_bytes: int, th: dict, case_id: str) -> list[GateResult]:
    return [GateResult("size", "compression", fp32_bytes / int8_bytes, ">=", th["min_compression"], case_id,
                       fp32_bytes / 1e6, int8_bytes / 1e6)]


def check_map(fp32: dict, int8: dict, th: dict, case_id: str) -> list[GateResult]:
    drop = 100 * (fp32["map50_95"] - int8["map50_95"])
    return [
        GateResult("mAP", "fp32_map50_95", fp32["map50_95"], ">=", th["min_fp32_map"], case_id),
        GateResult("mAP", "map50_95_drop_pt", drop, "<=", th["max_map_drop_pt"], case_id, fp32["map50_95"], int8["map50_95"]),
    ]


def check_parity(parity: dict, th: dict, case_id: str) -> list[GateResult]:
    return [
        GateResult("parity", "recall_of_fp32_detections", parity["recall"], ">=", th["min_parity_recall"], case_id,
                   parity["fp32_count"], parity["matched"], ("FP32 detections", "matched by INT8")),
        GateResult("parity", "score_drift_mean", parity["score_drift_mean"], "<=", th["max_score_drift_mean"], case_id),
        GateResult("parity", "matched_iou_mean", parity["iou_mean"], ">=", th["min_iou_mean"], case_id),
        GateResult("parity", "max_class_score", parity["int8_max_score"], "<=", th["max_int8_score"], case_id,
                   parity["fp32_max_score"], parity["int8_max_score"]),
    ]


def check_graph(graph: dict, config: dict, th: dict, case_id: str) -> list[GateResult]:
    """Static models keep no float Conv beyond the allowance; head-aware configs keep the head float."""
    results = []
    if config["mode"] == "static":
        results.append(GateResult("graph", "float_convs", len(graph["float_convs"]), "<=", th["max_float_conv"], case_id))
    if config["keep_head_float"]:
        results.append(GateResult("graph", "head_found", float(graph["head_found"]), "==", 1.0, case_id))
        if graph["head_found"]:
            results.append(GateResult("graph", "head_float", float(graph["head_float"]), "==", 1.0, case_id))
    return results


def check_latency(ratio: float, ep: str, th: dict, case_id: str, fp32_ms: float, int8_ms: float) -> GateResult:
    return GateResult("latency", f"int8/fp32 median on {ep}", ratio, "<=", th[f"max_latency_ratio_{ep}"], case_id, fp32_ms, int8_ms)


def check_baseline(record: dict, baseline: dict, th: dict, case_id: str) -> list[GateResult]:
    """Regression against a saved run: INT8 mAP, parity recall and INT8 size may not get worse."""
    return [
        GateResult("baseline", "int8_map50_95_loss_pt", 100 * (baseline["int8_map50_95"] - record["int8_map50_95"]), "<=",
                   th["baseline_map_drop_pt"], case_id, baseline["int8_map50_95"], record["int8_map50_95"], ("baseline", "now")),
        GateResult("baseline", "parity_recall_loss", baseline["parity"]["recall"] - record["parity"]["recall"], "<=",
                   th["baseline_recall_drop"], case_id, baseline["parity"]["recall"], record["parity"]["recall"], ("baseline", "now")),
        GateResult("baseline", "int8_size_growth", record["int8_bytes"] / baseline["int8_bytes"] - 1, "<=",
                   th["baseline_size_growth"], case_id, baseline["int8_bytes"] / 1e6, record["int8_bytes"] / 1e6, ("baseline MB", "now MB")),
    ]
