"""The graph gates: what got quantized — no float Conv beyond the allowance, the head kept float where asked."""

from __future__ import annotations

from .base import Gate, GateResult, Target, Threshold


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


def _run(t: Target) -> list[GateResult]:
    return check_graph(t.pipeline.graph(t.spec), t.pipeline.quantized(t.spec).config, t.th, t.case_id)


GATE = Gate(
    name="graph",
    run=_run,
    thresholds=(Threshold("max_float_conv", 1, "float Convs left in a static model (the DFL's fixed 1x1 Conv)"),),
)
