"""`quantkit tune`: accuracy-aware search for the fastest configuration that meets the gates.

1. A grid of recipes: format (QDQ, QOperator) x per-channel x calibration method.
2. Per-Conv sensitivity of the best recipe: relative error of every Conv's output, INT8 vs FP32,
   on calibration images (accumulated error, as onnxruntime's qdq_loss_debug measures it).
3. The recipe again with the k most sensitive Convs kept in float, for a few k (float for accuracy).
4. Per-Conv speed of the recipe (measure/layer_speed.py): the Convs whose INT8 kernel does not beat FP32 on
   this EP and thread count are kept in float in a mixed model (float for speed).
Every candidate meets the suite's own gates (the accuracy the case's evidence allows — annotated mAP,
F1 and FP32 floor, or agreement with FP32 on unlabelled images — parity, size, inputs, latency) and is
timed against FP32 interleaved, twice, in one process; the Pareto set over (latency ratio, accuracy
loss) is reported, and the fastest passing candidate is written out as a manifest ``[[config]]`` only
when it beats the runner-up by more than the two timings' spread (else the tie is named, and the more
accurate of the tied candidates chosen). The fastest deployable of FP32 and every candidate (uniform,
float-for-accuracy, mixed) is named: FP32 when nothing quantized beats it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from .measure.bench import fastest, sample_input, timed_twice
from .quantization.calibration import load_calibration
from .measure.layer_speed import conv_timings, slow_in_int8
from .manifest import ConfigSpec, Manifest
from .pipeline import CasePipeline
from .quantization.rewrite import FAST_FP32, carries_rewrite, rewritten_copy
from .measure.session import Runner

# Each candidate names its calibration: the presets' own ("auto") is the head family's, which would make a
# "minmax" row percentile on YOLO26 and run one recipe twice.
MINMAX = {"calibrate_method": "minmax"}
GRID = (
    ConfigSpec("qdq-pc-minmax", "default", MINMAX),
    ConfigSpec("qdq-pt-minmax", "default", {**MINMAX, "per_channel": False}),
    ConfigSpec("qdq-pc-percentile", "default", {"calibrate_method": "percentile"}),
    ConfigSpec("qdq-pc-entropy", "default", {"calibrate_method": "entropy"}),
    ConfigSpec("qop-pc-minmax", "qoperator", MINMAX),
    ConfigSpec("qop-pc-percentile", "qoperator", {"calibrate_method": "percentile"}),
)
EXCLUDE_TOP_K = (2, 4, 8)
SENSITIVITY_IMAGES = 8


def conv_sensitivity(fp32_path: Path, int8_path: Path, tensors: np.ndarray) -> list[tuple[str, float]]:
    """(Conv node name, relative error ||int8 - fp32||^2 / ||fp32||^2 of its output), worst first.

    Works on QDQ models, whose Convs keep their FP32 names and output tensor names.
    """
    fp32, int8 = onnx.load(str(fp32_path)), onnx.load(str(int8_path))
    fp32_outputs = {n.output[0] for n in fp32.graph.node if n.op_type == "Conv"}
    convs = {n.output[0]: n.name for n in int8.graph.node if n.op_type == "Conv" and n.output[0] in fp32_outputs}
    outputs = {}
    for model, tag in ((fp32, "fp32"), (int8, "int8")):
        existing = {o.name for o in model.graph.output}
        model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in convs if t not in existing)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs() if o.name in convs]
        batch = sess.get_inputs()[0].shape[0]  # a fixed-batch model runs copies of each image
        reps = batch if isinstance(batch, int) and batch > 1 else 1
        runs = [sess.run(names, {sess.get_inputs()[0].name: np.repeat(t[None], reps, axis=0)}) for t in tensors]
        outputs[tag] = {name: [r[i] for r in runs] for i, name in enumerate(names)}
    errors = []
    for tensor, node in convs.items():
        a, b = np.stack(outputs["fp32"][tensor]), np.stack(outputs["int8"][tensor])
        errors.append((node, float(((a - b) ** 2).sum() / max((a**2).sum(), 1e-12))))
    return sorted(errors, key=lambda e: -e[1])


@dataclass
class Candidate:
    spec: ConfigSpec
    loss_pt: float  # mAP50-95 drop in points; without annotations 100 x (1 - agreement mAP with FP32)
    ratio: float
    int8_ms: float
    compression: float
    passed: bool
    failed: list[str]
    spread: float = 0.0  # relative difference of the ratio between the two interleaved timings

    def row(self) -> dict:
        return {
            "candidate": self.spec.id,
            "accuracy loss pt": round(self.loss_pt, 2),
            "latency ratio": round(self.ratio, 3),
            "timing spread": round(self.spread, 3),
            "int8 ms": round(self.int8_ms, 2),
            "compression": round(self.compression, 2),
            "gates": "pass" if self.passed else "FAIL: " + ", ".join(self.failed),
        }


def pareto(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates no other candidate beats on both latency ratio and accuracy loss."""
    return sorted(
        (
            c
            for c in candidates
            if not any(
                o.ratio <= c.ratio and o.loss_pt <= c.loss_pt and (o.ratio < c.ratio or o.loss_pt < c.loss_pt)
                for o in candidates
            )
        ),
        key=lambda c: c.ratio,
    )


def choose(passing: list[Candidate]) -> tuple[Candidate | None, list[Candidate]]:
    """The fastest passing candidate and the candidates it cannot be told apart from: those whose ratio is
    within the larger of the two timings' spreads. Among a tie the most accurate is chosen."""
    if not passing:
        return None, []
    fastest = min(passing, key=lambda c: c.ratio)
    tied = [c for c in passing if c.ratio <= fastest.ratio * (1 + max(c.spread, fastest.spread))]
    return min(tied, key=lambda c: (c.loss_pt, c.ratio)), tied


def tune(
    manifest: Manifest,
    *,
    ep: str = "cpu",
    threads: int | None = 1,
    cache_dir: Path | None = None,
    thresholds: dict | None = None,
    progress: bool = True,
    grid=GRID,
    top_k=EXCLUDE_TOP_K,
) -> dict:
    """Search on the manifest's first case, gated by its thresholds (``thresholds`` on top)."""
    case = manifest.cases[0]
    pipe = CasePipeline(case, ep, cache_dir, threads, progress=progress)
    th = {**manifest.thresholds_for(case, task=pipe.task.name), **(thresholds or {})}
    pipe.images  # no validation images at all stops here, in one line, before the grid

    def loss(spec: ConfigSpec) -> float:
        return pipe.task.loss_pt(pipe, spec)

    specs = list(grid)
    # accuracy of the grid first, so the sensitivity analysis starts from its most accurate QDQ recipe
    losses = {s.id: loss(s) for s in specs}
    base = min((s for s in specs if pipe.quantized(s).config["format"] == "qdq"), key=lambda s: losses[s.id])
    calib = load_calibration(
        case.calib, pipe.hw_nc[0], count=SENSITIVITY_IMAGES, progress=False, exclude=pipe.holdout, fit=pipe.task.fit
    )
    ranking = conv_sensitivity(case.model, pipe.model_path(base), calib.tensors)
    for k in top_k:
        exclude = tuple(sorted(name for name, _ in ranking[:k]))
        spec = ConfigSpec(f"{base.id}-float{k}", base.preset, {**base.overrides, "exclude": exclude})
        specs.append(spec)
        losses[spec.id] = loss(spec)

    timings = conv_timings(case.model, pipe.model_path(base), ep, threads)
    for_speed = [name for name in slow_in_int8(timings) if name not in base.overrides.get("exclude", ())]
    mixed = None
    if for_speed:
        exclude = tuple(sorted({*base.overrides.get("exclude", ()), *for_speed}))
        mixed = ConfigSpec(f"{base.id}-speed", base.preset, {**base.overrides, "exclude": exclude})
        specs.append(mixed)
        losses[mixed.id] = loss(mixed)

    candidates, ms, spread, references = _candidates(pipe, specs, losses, th, progress)
    passing = [c for c in candidates if c.passed]
    chosen, tied = choose(passing)
    deployable = fastest_deployable(
        ms, {c.spec.id: c.passed for c in candidates}, tuple(references), spread
    )  # and FP32
    return {
        "candidates": candidates,
        "pareto": pareto(candidates),
        "chosen": chosen,
        "tied": tied,
        "fp32_ms": ms["fp32"],
        "fp32_rewritten_ms": ms.get(FAST_FP32),
        "evidence": pipe.evidence_text(),
        "sensitivity": ranking[: max(top_k)],
        "threshold_pt": th[pipe.task.loss_threshold],
        "conv_timings": timings,
        "float_for_speed": for_speed,
        "float_for_accuracy": [name for name, _ in ranking[: max(top_k)]],
        "uniform": base.id,
        "mixed": mixed.id if mixed else None,
        "deployable": deployable,
    }


def _candidates(
    pipe: CasePipeline, specs: list[ConfigSpec], losses: dict[str, float], th: dict, progress: bool
) -> tuple[list[Candidate], dict[str, float], dict[str, float], dict[str, Path]]:
    """Every spec timed twice, interleaved with FP32 (and FP32 with the Softmax rewrite the candidates carry), and
    gated: (candidates, milliseconds and the two timings' spread by name, the FP32 references timed)."""
    case, ep, threads = pipe.case, pipe.ep, pipe.threads
    rewritten = rewritten_copy(case.model, pipe.cache_dir)  # the candidates carry the Softmax rewrite: so does FP32
    references = {"fp32": case.model, **({FAST_FP32: rewritten} if rewritten else {})}
    runners = {
        **{k: Runner(path, ep, threads, spin=False) for k, path in references.items()},
        **{s.id: Runner(pipe.model_path(s), ep, threads, spin=False) for s in specs},
    }
    ms, spread = timed_twice(runners, sample_input(pipe.hw_nc[0]), int(th["latency_rounds"]), progress)  # spread: ties
    reference = {s.id: FAST_FP32 if rewritten and carries_rewrite(pipe.model_path(s)) else "fp32" for s in specs}
    candidates = []
    for s in specs:
        ratio = ms[s.id] / ms[reference[s.id]]
        timing = {"ep": ep, "threads": threads, "fp32_ms": ms[reference[s.id]], "int8_ms": ms[s.id], "ratio": ratio}
        results = pipe.gate_results(s, th, s.id, "accuracy", "size", "inputs", "latency", given={"timing": timing})
        failed = sorted({r.metric for r in results if not r.passed})
        tie = spread[s.id] + spread[reference[s.id]]
        candidates.append(
            Candidate(s, losses[s.id], ratio, ms[s.id], pipe.quantized(s).compression, not failed, failed, tie)
        )
    return candidates, ms, spread, references


def fastest_deployable(
    ms: dict[str, float],
    passed: dict[str, bool],
    references: tuple[str, ...] = ("fp32",),
    spread: dict[str, float] | None = None,
) -> tuple[str, str]:
    """(name, sentence) of the fastest model that meets the gates; the FP32 ``references`` (the source, and
    FP32 with quantkit's Softmax rewrite where timed) always may, and win a tie: an INT8 model must beat them
    by more than the timings' spread (``bench.fastest``)."""
    best, tied = fastest(ms, [name for name in ms if name in references or passed.get(name)], spread)
    best = next((name for name in tied if name in references), best)
    if best in references:
        label = "FP32" if best == "fp32" else f"FP32 with the Softmax rewrite ({best})"
        return best, (
            f"FP32 is the right answer on this machine: {label}, {ms[best]:.2f} ms; no INT8 model that meets "
            "the gates is faster by more than the timings' spread"
        )
    against = ", ".join(
        f"{ms[best] / ms[r]:.2f}x {'FP32' if r == 'fp32' else 'FP32 with the Softmax rewrite'}"
        for r in references
        if r in ms
    )
    return best, f"{best} is the fastest deployable: {ms[best]:.2f} ms, {against}"


def config_toml(candidate: Candidate) -> str:
    """The chosen candidate as a manifest ``[[config]]`` entry."""
    lines = ["[[config]]", f'id = "{candidate.spec.id}"', f'preset = "{candidate.spec.preset}"']
    for key, value in candidate.spec.overrides.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (tuple, list)):
            lines.append(f"{key} = [" + ", ".join(f'"{v}"' for v in value) + "]")
        else:
            lines.append(f'{key} = "{value}"')
    excluded = candidate.spec.overrides.get("exclude", ())
    if excluded:  # the graph gate must allow the Convs kept in float on purpose (plus the DFL's)
        lines += ["[config.thresholds]", f"max_float_conv = {1 + len(excluded)}"]
    return "\n".join(lines) + "\n"
