"""The size gate: what quantization could shrink, the weights, and the whole file (docs/thresholds.md, 'The size
gate')."""

from __future__ import annotations

from .base import Gate, GateResult, Target, Threshold


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


def _run(t: Target) -> list[GateResult]:
    q = t.pipeline.quantized(t.spec)
    return check_size(q.source_bytes, q.output_bytes, t.th, t.case_id, q.weights())


GATE = Gate(
    name="size",
    run=_run,
    thresholds=(
        Threshold(
            "min_compression",
            2.0,
            "the whole file, FP32 bytes / INT8 bytes: a floor for catastrophes (3.3 before the weights were gated; "
            "fixtures 3.07-3.82, [the size gate](#the-size-gate))",
        ),
        Threshold(
            "min_weight_compression",
            3.3,
            "the weights, every one but the head's float constants: FP32 bytes / INT8 bytes with scales and zero "
            "points, a weight left float counted 1:1 (fixtures 3.78-3.98 in every preset)",
        ),
    ),
)
