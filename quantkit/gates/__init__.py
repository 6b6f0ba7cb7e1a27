"""The gate registry: every gate quantkit runs (``base.Gate``), each declaring what it needs, its thresholds with
their defaults and why, and its tags. The suite, `quantkit check`, `quantkit tune` and the pipeline pick their gates
from it by tag (``select``, ``run``); THRESHOLDS (``manifest.py``) and docs/thresholds.md's table are built from
its declarations.

Tags: "accuracy" (judged on validation images: ``CasePipeline.accuracy_gates``, check, tune), "case" (of the case's
FP32 model and images, not of a configuration: once per case in the suite), "inputs", "parity", "baseline",
"task" (declared by a task: masks, keypoints, classification), "task mAP"; a gate's name is a tag too. Gates
declared elsewhere join the built-in ones: the task registry lists its tasks' in ``quantkit.tasks.GATES``.
"""

from __future__ import annotations

from . import agreement, baseline, graph, inputs, latency, map_drop, operating_point, parity, size
from .agreement import agreement_map, check_agreement, check_evidence
from .base import (
    NEEDS,
    OFF,
    Gate,
    GateResult,
    Target,
    Threshold,
    assert_passed,
    failures,
    undecided,
    undecided_line,
    undecided_lines,
)
from .baseline import check_baseline, check_baseline_latency
from .graph import check_graph
from .inputs import check_inputs
from .latency import check_latency, latency_threshold_key, latency_with_retry
from .map_drop import check_map, fp32_floor, map_drops
from .operating_point import check_operating_point
from .parity import detection_parity, too_few_pairs
from .size import check_size

check_parity = detection_parity  # the box parity gates of a parity report (``metrics.parity``)

BUILT_IN: tuple[Gate, ...] = (
    size.GATE,
    map_drop.FLOOR,
    map_drop.DROPS,
    operating_point.GATE,
    agreement.EVIDENCE,
    agreement.AGREEMENT,
    parity.GATE,
    inputs.CALIBRATION,
    inputs.EVALUATION,
    graph.GATE,
    latency.GATE,
    baseline.GATE,
    baseline.LATENCY,
)


def _task_gates() -> tuple[Gate, ...]:
    """The gates the task registry declares (``quantkit.tasks.GATES``: masks, keypoints, classification)."""
    from .. import tasks  # imported here: the tasks import this package's gate types

    return tuple(tasks.GATES)


def registry() -> tuple[Gate, ...]:
    """Every gate, the built-in ones first; ValueError where a gate name or threshold key is declared twice."""
    gates = BUILT_IN + _task_gates()
    for what, names in (
        ("gate", [g.name for g in gates]),
        ("threshold", [t.key for g in gates for t in g.thresholds]),
    ):
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"{what} {twice} declared twice: declare each once (quantkit/gates/, quantkit/tasks/)")
    return gates


def thresholds() -> tuple[Threshold, ...]:
    """Every gate's declared thresholds, in registry order."""
    return tuple(t for gate in registry() for t in gate.thresholds)


def select(*tags: str, exclude: tuple[str, ...] = ()) -> list[Gate]:
    """The gates carrying any of ``tags`` and none of ``exclude`` (a tag or a gate's name), in registry order."""
    gates = registry()
    known = set().union(*(g.labels for g in gates))
    unknown = sorted({*tags, *exclude} - known)
    if unknown:
        raise ValueError(f"no gate is tagged {unknown}: the tags are {sorted(known)}")
    return [g for g in gates if g.labels & set(tags) and not g.labels & set(exclude)]


def run(target: Target, *tags: str, exclude: tuple[str, ...] = ()) -> list[GateResult]:
    """The results of the ``select``-ed gates on ``target``; a gate whose needs it does not meet is skipped."""
    return [r for gate in select(*tags, exclude=exclude) if target.meets(gate.needs) for r in gate.run(target)]


__all__ = [
    "NEEDS",
    "OFF",
    "BUILT_IN",
    "Gate",
    "GateResult",
    "Target",
    "Threshold",
    "agreement_map",
    "assert_passed",
    "check_agreement",
    "check_baseline",
    "check_baseline_latency",
    "check_evidence",
    "check_graph",
    "check_inputs",
    "check_latency",
    "check_map",
    "check_operating_point",
    "check_parity",
    "check_size",
    "detection_parity",
    "failures",
    "fp32_floor",
    "latency_threshold_key",
    "latency_with_retry",
    "map_drops",
    "registry",
    "run",
    "select",
    "thresholds",
    "too_few_pairs",
    "undecided",
    "undecided_line",
    "undecided_lines",
]
