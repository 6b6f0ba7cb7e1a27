"""What every gate is made of: the result it returns, the thresholds it declares, and the gate itself.

A check returns one GateResult per metric; a failed one reads like
``mAP gate FAILED: map50_95_drop_pt 5.2100 > 1.5000 (FP32 0.6123, INT8 0.5602)
[shapes-v8n-192x320/static-qdq/cpu, onnxruntime 1.32.0]``. Light to import (the manifest and the CLI's first
instant read the declarations): numpy and onnxruntime load when a result is first judged or printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

OFF = 100.0  # an optional threshold at or above this is off (no gate)
NEEDS = {
    "val": "validation images of any kind: annotated, unlabelled, or held out of the calibration folder",
    "coco": "annotated validation images",
    "boxes": "a task whose predictions are boxes (every task but classification: ``Task.uses_boxes``)",
    "calib": "a calibration run (static configurations)",
    "timing": "a latency measurement the caller made (``bench.latency_ratio``'s dict): ``given['timing']``",
    "baseline": "a saved run to compare with: ``given['baseline']``, (this run's record, the baseline's)",
}


@dataclass(frozen=True)
class Threshold:
    """One key of the threshold table (``manifest.THRESHOLDS``): its default, and why (its docs/thresholds.md row:
    what it gates, and the measurement behind the default)."""

    key: str
    default: float
    why: str


@dataclass
class Target:
    """What a gate judges: one configuration (``spec``) of a case's pipeline (``quantkit.pipeline.CasePipeline``)
    with its thresholds; ``spec`` None for the case's own gates. ``given``: measurements the caller made (NEEDS)."""

    pipeline: Any
    spec: Any
    th: dict
    case_id: str
    given: dict = field(default_factory=dict)

    def meets(self, needs) -> bool:
        """Whether it has every one of ``needs`` (NEEDS)."""
        return all(self._has(need) for need in needs)

    def _has(self, need: str) -> bool:
        if need in self.given:
            return True
        if need == "val":
            return self.pipeline.evidence is not None
        if need == "coco":
            return self.pipeline.annotated
        if need == "boxes":
            return self.pipeline.task.uses_boxes
        if need == "calib":
            return self.spec is not None and self.pipeline.quantized(self.spec).calibration is not None
        return False


@dataclass(frozen=True)
class Gate:
    """A gate: its name, what it ``needs`` of a target (NEEDS: a target that lacks one skips it), the thresholds it
    declares, its tags, and ``run``: target -> its results. ``select`` matches a tag or the name."""

    name: str
    run: Callable[[Target], list["GateResult"]]
    needs: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"gate '{self.name}' needs {sorted(unknown)}: known needs are {sorted(NEEDS)}")

    @property
    def labels(self) -> set[str]:
        """Its tags and its name."""
        return {self.name, *self.tags}


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
        from ..measure import intervals

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
        from ..measure import intervals

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
        from .. import compat

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
