"""The latency gate: INT8 / FP32 of one interleaved timing against the EP's and CPU class's threshold (each EP
declares its own: ``quantkit/providers/``), or the size-only cap; a ratio over its gate is timed once more."""

from __future__ import annotations

from typing import Callable

from .. import providers
from ..cpu import cpu_info, has_vnni
from .base import Gate, GateResult, Target, Threshold


def latency_threshold_key(ep: str, size_only: bool = False) -> str:
    """The threshold table's key for an EP on this machine (its registry entry's: the CPU has one per CPU class,
    VNNI/AMX or not); a size-only configuration has a cap instead."""
    if size_only:
        return "max_latency_ratio_size_only"
    return providers.get(ep).threshold_key(has_vnni())


def check_latency(measured: dict, th: dict, case_id: str, size_only: bool = False) -> GateResult:
    """INT8/FP32 of one interleaved timing (``measured``: ep, threads, fp32_ms, int8_ms, ratio, as
    ``bench.latency_ratio`` returns it; ratio None: the INT8 model did not run) against the EP's and CPU class's
    threshold (or the size-only cap)."""
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
        no_evidence=None if measured["ratio"] is not None else f"the INT8 model did not run on {ep}",
    )


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


def _run(t: Target) -> list[GateResult]:
    return [check_latency(t.given["timing"], t.th, t.case_id, t.spec.size_only)]


def _thresholds() -> tuple[Threshold, ...]:
    """Every EP's latency keys (``providers.latency_thresholds``), then the size-only cap."""
    eps = tuple(
        Threshold(key, default, p.why.get(key, f"INT8 / FP32 on {p.ort_name}"))
        for p in providers.REGISTRY
        for key, default in p.thresholds.items()
    )
    return eps + (
        Threshold(
            "max_latency_ratio_size_only",
            2.0,
            "cap for a config declared `size_only` (dynamic: 1.88x FP32 in `quantkit check`, "
            "[measurements.md](measurements.md))",
        ),
    )


GATE = Gate(name="latency", run=_run, needs=("timing",), thresholds=_thresholds())
