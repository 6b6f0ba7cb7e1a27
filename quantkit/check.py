"""`quantkit check`: the main job end to end — the seed report's table, complete, with a verdict.

Quantize (default static, weight-only, dynamic; onnxruntime's defaults and Ultralytics' own ONNX INT8 export
for contrast), evaluate mAP and detection parity,
time FP32 and every INT8 model interleaved on every available EP, measure each session's memory
in a fresh process, and name the fastest deployable combination.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from . import compat, gates, peer, providers, tasks
from .measure.bench import fastest, sample_input, timed_twice
from .quantization.calibration import choose_files, load_calibration
from .cpu import cpu_info
from .errors import CalibrationError, DatasetError, EPUnavailableError, NotDecidedError, QuantkitError
from .files import copy_atomic, write_text_atomic
from .measure.evaluate import predict, score
from .manifest import THRESHOLDS, ConfigSpec, Manifest
from .pipeline import CasePipeline
from .progress import Progress, say
from .quantization.quantizer import QuantResult
from .quantization.rewrite import FAST_FP32, carries_rewrite, rewritten_copy
from .measure.session import Runner, available_eps, model_session_config
from .quantization.weights import SESSION_CONFIG
from .measure.throughput import best_throughput, describe

CHECK_CONFIGS = (
    ConfigSpec("static-qdq", "default"),
    ConfigSpec("weights", "weights", size_only=True),
    ConfigSpec("dynamic", "dynamic", size_only=True),
    ConfigSpec("naive", "naive"),
    ConfigSpec("ultralytics-ort", "ultralytics-ort"),
)  # the last two for contrast, gated all the same
GATED = "static-qdq"  # the configuration quantkit recommends: its gates decide the exit code
# The weights preset runs at FP32 speed only with the session option it stamps in the model: its file is also
# timed and gated as plain onnxruntime runs it, each row labelled with the option it ran with.
WEIGHTS, WEIGHTS_PLAIN = "weights", "weights, plain onnxruntime"
LABELS = {
    "fp32": "FP32",
    FAST_FP32: "FP32, Softmax rewritten",
    WEIGHTS: f"INT8 weights, with {', '.join(f'{k}={v}' for k, v in SESSION_CONFIG.items())}",
    WEIGHTS_PLAIN: "INT8 weights, plain onnxruntime (no session option)",
}
LATENCY_STORY = (
    "latency ms: the headline, FP32 and every model interleaved in one process ({threads} threads, medians "
    "of {rounds} rounds), so a loaded machine slows all alike; the gates and 'fastest deployable' use it. "
    "deploy ms: each model alone with its runtime's defaults (block timing, thread spinning on): what one "
    "deployed model sees on a quiet machine, and what the peer is compared by. best throughput: "
    "threads x streams (quantkit bench)."
)

_MEMORY_PROBE = """
import json, sys, numpy as np, onnxruntime as ort
def status(key):
    with open("/proc/self/status") as f:
        return next(float(l.split()[1]) / 1024 for l in f if l.startswith(key))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) so the imports' own peak does not hide the session's
before = status("VmRSS:")
opts = ort.SessionOptions()
for key, value in json.loads(sys.argv[4]).items():
    opts.add_session_config_entry(key, value)
sess = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
batch = sess.get_inputs()[0].shape[0]
x = np.zeros([batch if isinstance(batch, int) else 1, 3, int(sys.argv[2]), int(sys.argv[3])], np.float32)
for _ in range(3):
    sess.run(None, {sess.get_inputs()[0].name: x})
print(before, status("VmHWM:"))
"""


def session_memory_mb(model: Path, hw: tuple[int, int], model_config: bool = True) -> dict:
    """Peak resident memory of a fresh process that loads ``model`` (with the session options stamped in it,
    unless ``model_config`` is False) and runs it 3 times (CPU EP).

    ``session_mb`` is the peak's growth over the resident size after importing onnxruntime
    (Linux /proc; the peak is reset after the imports). Elsewhere both are None.
    """
    if not Path("/proc/self/clear_refs").exists():
        return {"peak_rss_mb": None, "session_mb": None}
    try:
        config = json.dumps(model_session_config(model) if model_config else {})
        proc = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, str(model), str(hw[0]), str(hw[1]), config],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        raise QuantkitError(
            f"memory probe for {model.name} ran over 300 s: check the model runs on the CPU EP"
        ) from None
    if proc.returncode != 0:
        raise QuantkitError(f"memory probe failed for {model.name}: {proc.stderr.strip().splitlines()[-1:]}")
    before, peak = (float(v) for v in proc.stdout.split())
    return {"peak_rss_mb": round(peak, 1), "session_mb": round(peak - before, 1)}


def _phase(progress: bool, text: str) -> None:
    """One line on stderr as each long phase starts; within it, each long step's progress (``quantkit.progress``:
    tqdm bars on a terminal, a plain line at least every 30 s elsewhere)."""
    say(f"{text} ...", progress)


class Kind(str, Enum):
    """What a row of the table is, decided from gate results (never parsed back from display text)."""

    REFERENCE = "reference"  # the source FP32 model: deployable by definition
    CONTRAST = "contrast"  # FP32 with the Softmax rewrite: shown to separate the rewrite's gain, not a deliverable
    PASS = "pass"
    SIZE_ONLY = "size only"  # passed, and buys size, not speed
    UNVERIFIED = "not verified"  # passed what was measured, but accuracy was not measured
    UNDECIDED = "not decided"  # no gate failed, but an accuracy interval holds its threshold (too little evidence)
    NO_ACCURACY = "size and latency only"  # --no-accuracy: the user accepts a verdict without accuracy
    FAIL = "FAIL"
    PEER = "peer"

    @property
    def deployable(self) -> bool:
        return self in (Kind.REFERENCE, Kind.PASS, Kind.SIZE_ONLY, Kind.NO_ACCURACY)


@dataclass
class Verdict:
    """One row's verdict: its kind, the gates it failed, and what qualifies it (e.g. "size and latency only")."""

    kind: Kind
    failed: list[str] = field(default_factory=list)
    detail: str = ""

    def text(self) -> str:
        if self.kind is Kind.FAIL:
            return "FAIL: " + ", ".join(self.failed)
        if self.kind is Kind.UNDECIDED:
            return "not decided: " + ", ".join(self.failed)
        if self.kind is Kind.CONTRAST:
            return "reference (not deployable: its accuracy was not measured)"
        return self.kind.value + (f", {self.detail}" if self.detail else "")


@dataclass
class CheckReport:
    rows: list[dict]
    gate_results: dict[str, list[gates.GateResult]]
    fastest: dict | None
    machine: dict
    notes: list[str] = field(default_factory=list)
    throughput: dict | None = None  # the best-throughput setting of the deployable models (quantkit bench)
    gated_model: str | None = None  # the static-qdq INT8 file the gates judged (copied into --out)
    case_id: str = "model"
    kinds: list[Kind] = field(default_factory=list)  # per row: what it is, from its gate results
    row_eps: list[str] = field(default_factory=list)  # per row: the EP it ran on
    evidence: str = "accuracy: NOT measured"  # what the accuracy verdict rests on, in words
    accuracy: str = "not measured"  # "annotated", "unlabelled", "not measured" or "skipped" (--no-accuracy)
    task: str = "detect"  # the model's task (quantkit/tasks/): which column is its accuracy

    @property
    def failed(self) -> bool:
        return bool(gates.failures(self.gate_results.get(GATED, [])))

    @property
    def undecided(self) -> list[str]:
        """The recommended configuration's ``gates.undecided_lines`` ([] when its every gate decided)."""
        return gates.undecided_lines(self.gate_results.get(GATED, []))

    def latency_story(self) -> str:
        return LATENCY_STORY.format(threads=self.machine["threads"], rounds=self.machine["rounds"])

    def to_json(self) -> dict:
        rows = [{**row, "kind": kind.value, "ep": ep} for row, kind, ep in zip(self.rows, self.kinds, self.row_eps)]
        return {
            "rows": rows,
            "fastest_deployable": self.fastest,
            "machine": self.machine,
            "notes": self.notes,
            "best_throughput": self.throughput,
            "evidence": self.evidence,
            "accuracy": self.accuracy,
            "gates": {
                cid: [{**r.__dict__, "passed": r.passed, "outcome": r.outcome, "message": r.message()} for r in results]
                for cid, results in self.gate_results.items()
            },
        }


def _check_evidence(pipe: CasePipeline, th: dict) -> None:
    """Before quantizing, FP32 on the validation images (cheap beside quantization): annotations FP32 scores under
    ``min_fp32_map`` on stop the run (DatasetError, exit 2), and so do too few images or FP32 detections to decide
    accuracy (NotDecidedError, exit 3, with how many more images would do)."""
    if pipe.annotated:
        fp32 = pipe.map(None)["map50_95"]
        if fp32 < th["min_fp32_map"]:
            raise DatasetError(
                f"FP32 itself scores mAP50-95 {fp32:.4f} on these annotations, under the floor {th['min_fp32_map']:g}: "
                "they do not describe these images, or the classes map wrongly: check that --coco-ann belongs to "
                "--coco-images (and --class-map)"
            )
    detections = sum(len(d) for d in pipe.deployed(None).values()) if pipe.task.uses_boxes else None
    evidence = gates.check_evidence(len(pipe.images.ids), detections, th, pipe.case.id)
    if gates.undecided(evidence):
        raise NotDecidedError(
            f"{gates.undecided_line(evidence)}: add validation images (--val-images DIR, or more images in --calib), "
            "or --no-accuracy for a size and latency only verdict"
        )


def _check_inputs(pipe: CasePipeline, eps: list[str] | None, accuracy: bool, th: dict) -> list[str]:
    """Every input checked in one line each before the first long phase, the evidence first of all; returns the
    EPs to run on."""
    for ep in eps or []:
        if ep not in available_eps():  # an unknown one is named with the known ones, a known one with how to get it
            raise QuantkitError(
                f"execution provider '{ep}' is not available here ({providers.get(ep).install}): choose from "
                f"{', '.join(available_eps())}"
            )
    if not pipe.case.calib:
        raise CalibrationError("the static configurations need calibration images: pass --calib DIR")
    choose_files(pipe.case.calib, exclude=pipe.holdout)
    pipe.hw_nc
    if accuracy and pipe.evidence:
        _check_evidence(pipe, th)
    return eps or available_eps()


@dataclass
class Quantized:
    """Phase 1: every configuration quantized, with its size and accuracy gate results."""

    specs: list[ConfigSpec]
    results: dict[str, QuantResult]
    th: dict[str, dict]  # per config: its thresholds
    gates: dict[str, list[gates.GateResult]]
    notes: list[str]
    broken: list[ConfigSpec] = field(default_factory=list)  # side rows that could not be made or run: FAIL rows


@dataclass
class Timings:
    """Phase 2: every model timed per EP (interleaved twice, block), and its session memory."""

    models: dict[str, Path]  # name -> file: FP32, FP32 with the Softmax rewrite, every config
    latency: dict[str, dict[str, float]]  # EP -> name -> interleaved ms
    spread: dict[str, dict[str, float]]  # EP -> name -> the two runs' relative difference
    block: dict[str, dict[str, float]]  # EP -> name -> ms alone, with the runtime's defaults
    memory: dict[str, dict]  # name -> session memory
    reference: dict[str, str]  # config -> the FP32 model it is timed against
    notes: list[str]


def _evidence(pipe: CasePipeline, eps: list[str], accuracy: bool) -> tuple[str, list[str]]:
    """What the accuracy verdicts rest on, in words, and the notes that qualify it."""
    if not accuracy:
        return "accuracy: not measured (--no-accuracy): size and latency only", []
    if pipe.evidence is None:
        return "accuracy: NOT measured (no validation images)", []
    notes = []
    if eps != ["cpu"]:
        notes.append(
            "accuracy (mAP50-95, agreement mAP, parity) was measured on the CPU EP; rows of other EPs "
            "show the CPU EP's figures beside their own latency"
        )
    if pipe.holdout:
        notes.append(
            f"validation: {len(pipe.holdout)} images of --calib held out (seeded), calibration drew from "
            "the rest; --val-images DIR validates on a folder of its own"
        )
    return pipe.evidence_text() + ", on the CPU EP", notes


def _side_row_failure(spec: ConfigSpec, th: dict, case_id: str, exc: Exception) -> gates.GateResult:
    """A contrast or size-only configuration that could not be quantized or evaluated: that row's FAIL, in one line."""
    from .compat import error_line

    return gates.GateResult(
        gate="quantize",
        metric="quantized_and_evaluated",
        value=None,
        op="==",
        threshold=1.0,
        case_id=case_id,
        no_evidence=f"{spec.id} could not be made or run: {error_line(exc)}",
    )


def _quantize_all(pipe: CasePipeline, manifest: Manifest, measured: bool, progress: bool) -> Quantized:
    """Quantize every CHECK_CONFIGS entry, gate its size and (``measured``) its accuracy; the weights file
    once more as plain onnxruntime runs it (``WEIGHTS_PLAIN``: the same file, its gates carried over). A side
    row that cannot be made or run (any configuration but ``GATED``) reads FAIL with its reason (``broken``);
    only the recommended configuration's failure ends the run."""
    case, specs = pipe.case, list(CHECK_CONFIGS)
    th = {spec.id: manifest.thresholds_for(case, manifest.spec(spec.id), pipe.task.name) for spec in specs}
    results, gate_results, by_note, broken = {}, {}, {}, []
    for spec in list(specs):
        _phase(progress, f"quantizing {spec.id}")
        case_id = f"{case.id}/{spec.id}"
        try:
            q = pipe.quantized(spec)
            if measured:
                _phase(
                    progress, f"evaluating {spec.id} ({'mAP, ' if pipe.annotated else ''}agreement with FP32, parity)"
                )
            unmeasured = () if measured else ("accuracy",)
            checks = pipe.gate_results(spec, th[spec.id], case_id, "size", "inputs", "accuracy", exclude=unmeasured)
        except Exception as exc:  # noqa: BLE001 - a side row's failure of any kind is that row's FAIL
            if spec.id == GATED:
                raise
            gate_results[spec.id] = [_side_row_failure(spec, th[spec.id], case_id, exc)]
            specs.remove(spec)
            broken.append(spec)
            continue
        results[spec.id] = q
        for note in q.notes + [
            f"made for target CPU '{q.config.get('target_cpu')}'"
            f"{' (7-bit weights, reduce_range)' if q.config.get('reduce_range') else ' (full 8-bit weights)'}"
        ]:
            by_note.setdefault(note, []).append(spec.id)
        gate_results[spec.id] = checks
    notes = [f"{', '.join(ids)}: {note}" for note, ids in by_note.items()]  # each note once, with every config it is of
    if WEIGHTS in results and model_session_config(Path(results[WEIGHTS].output)):
        plain = ConfigSpec(WEIGHTS_PLAIN, WEIGHTS, size_only=True)
        specs.insert([s.id for s in specs].index(WEIGHTS) + 1, plain)  # its row beside the weights row
        results[plain.id], th[plain.id], gate_results[plain.id] = (
            results[WEIGHTS],
            th[WEIGHTS],
            list(gate_results[WEIGHTS]),
        )
    return Quantized(specs, results, th, gate_results, notes, broken)


def _time_all(
    pipe: CasePipeline, quantized: Quantized, eps: list[str], threads: int | None, rounds: int, progress: bool
) -> Timings:
    """Time FP32 (and FP32 with the Softmax rewrite, the reference of INT8's own gain) and every config on
    every EP: interleaved twice, then each alone by block; then each model's session memory. An EP where FP32
    does not run is dropped with a note; EPUnavailableError when none is left."""
    case, hw, notes = pipe.case, pipe.hw_nc[0], []
    models = {"fp32": case.model, **{spec.id: Path(quantized.results[spec.id].output) for spec in quantized.specs}}
    rewritten = fast_softmax_fp32(case.model, pipe.cache_dir, hw)
    if rewritten:  # beside the INT8 rows, so the table separates the rewrite's gain from INT8's
        path, diff = rewritten
        models = {"fp32": case.model, FAST_FP32: path, **{k: v for k, v in models.items() if k != "fp32"}}
        notes.append(
            f"FP32, Softmax rewritten: the FP32 model with the rewrite every INT8 model here carries "
            f"(quantkit.quantization.rewrite; outputs within {diff:.1e} of FP32's on the timing input): the "
            "reference of 'INT8 gain %' and the latency gates, not a deliverable"
        )
    latency, spread = {}, {}
    for ep in eps:
        _phase(progress, f"timing FP32 and INT8 on {ep} ({rounds} rounds, twice)")
        runners = {}
        for name, path in models.items():
            try:
                runners[name] = Runner(path, ep, threads, spin=False, model_config=name != WEIGHTS_PLAIN)
            except QuantkitError as exc:
                notes.append(f"{ep}: {name} does not run there ({exc})")
        if "fp32" not in runners:
            notes.append(f"{ep}: dropped — FP32 does not run there, so nothing on it can be compared")
            continue
        latency[ep], spread[ep] = timed_twice(runners, sample_input(hw), rounds, progress)
    if not latency:
        raise EPUnavailableError(
            f"none of the execution providers {', '.join(eps)} ran the model: " + "; ".join(notes[-len(eps) :])
        )
    # what else ran while we timed: the 1-minute load average less the one core this process kept busy
    load = max(0.0, os.getloadavg()[0] - 1) if hasattr(os, "getloadavg") else 0.0
    if load > quantized.th[GATED]["max_other_load_per_core"] * (os.cpu_count() or 1):
        notes.append(
            f"the machine was loaded while timing (load average {load:.1f} beside quantkit's own, on "
            f"{os.cpu_count()} cores): 'deploy ms' and throughput are not reliable; 'latency ms' "
            "(interleaved) still compares models"
        )
    _phase(progress, "block timing with deployment defaults (one runtime at a time)")
    runs = rounds * sum(len(by_model) for by_model in latency.values())
    with Progress("block timing", runs, "runs", enabled=progress) as bar:
        block = {
            ep: {
                name: peer.block_ms(
                    Runner(path, ep, threads, model_config=name != WEIGHTS_PLAIN), sample_input(hw), rounds, bar=bar
                )
                for name, path in models.items()
                if name in by_model
            }
            for ep, by_model in latency.items()
        }
    _phase(progress, "memory of each model in a fresh process")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # one process each; their peaks are their own
        with Progress("memory", len(models), "models", enabled=progress) as bar:
            measured = pool.map(lambda item: session_memory_mb(item[1], hw, item[0] != WEIGHTS_PLAIN), models.items())
            memory = {}
            for name, mb in zip(models, measured):  # in order, each counted as it comes
                memory[name] = mb
                bar.update()
    # each config against its EP's FP32, with the same Softmax rewrite where the INT8 model carries it
    reference = {
        spec.id: FAST_FP32 if FAST_FP32 in models and carries_rewrite(models[spec.id]) else "fp32"
        for spec in quantized.specs
    }
    return Timings(models, latency, spread, block, memory, reference, notes)


def _gate_latency(
    pipe: CasePipeline, quantized: Quantized, timings: Timings, case_id: str, threads: int | None
) -> None:
    """Append each config's latency gate per EP to its gate results; an INT8 model that did not run on an EP
    fails there (no evidence is never a pass)."""
    for spec in quantized.specs:
        th = quantized.th[spec.id]
        for ep, ms in timings.latency.items():
            ref = timings.reference[spec.id] if timings.reference[spec.id] in ms else "fp32"
            where = f"{case_id}/{spec.id}/{ep}"
            measured = {
                "ep": ep,
                "threads": threads,
                "fp32_ms": ms[ref],
                "int8_ms": ms.get(spec.id),
                "ratio": ms[spec.id] / ms[ref] if spec.id in ms else None,  # None: it did not run there
            }
            (result,) = pipe.gate_results(spec, th, where, "latency", given={"timing": measured})
            if ref == FAST_FP32 and spec.id in ms:
                result.note += "; FP32 timed with the same Softmax rewrite as the INT8 model"
            quantized.gates[spec.id].append(result)


def _rows(pipe: CasePipeline, quantized: Quantized, timings: Timings, measured: bool, accuracy: bool):
    """The table: a row per (model, EP), its verdict from its gate results, and its timing spread."""
    fp32_bytes = quantized.results[GATED].source_bytes
    spec_of = {spec.id: spec for spec in quantized.specs}
    rows, verdicts, spreads, row_eps = [], [], [], []
    for ep, latency in timings.latency.items():
        for name in timings.models:
            spec, q, ms = spec_of.get(name), quantized.results.get(name), latency.get(name)
            measured_spec = spec_of[WEIGHTS] if name == WEIGHTS_PLAIN else spec  # the same file: its accuracy
            verdict = _verdict(
                name, spec, quantized.gates, ep, measured, accuracy, timings.reference, quantized.th.get(name)
            )
            size = q.output_bytes if q else fp32_bytes
            label = LABELS.get(name, f"INT8 {name}")
            accuracy_columns = pipe.task.columns(pipe, measured_spec, measured, reference=name == FAST_FP32)
            ep_base, ref_ms = latency.get("fp32"), latency.get(timings.reference.get(name, "fp32"))
            rows.append(
                {
                    "model": f"{label} @ {ep}",
                    "size MB": round(size / 1e6, 2),
                    "latency ms": round(ms, 3) if ms else None,
                    "FPS": round(1000 / ms, 1) if ms else None,
                    "deploy ms": round(timings.block[ep][name], 3) if name in timings.block[ep] else None,
                    "size change %": round(100 * (size / fp32_bytes - 1), 1),
                    "speed change %": round(100 * (ep_base / ms - 1), 1) if ms and ep_base else None,
                    "INT8 gain %": round(100 * (ref_ms / ms - 1), 1) if spec and ms and ref_ms else None,
                    "peak memory MB": timings.memory[name]["session_mb"],
                    **accuracy_columns,  # the task's: mAP, its drop, agreement; a classifier's top-1
                    "quantize s": round(q.seconds, 1) if q else None,
                    "verdict": verdict.text(),
                }
            )
            verdicts.append(verdict)
            spreads.append(timings.spread[ep].get(name, 0.0))
            row_eps.append(ep)
    for spec in quantized.broken:  # no model to time or plot: its row carries the reason alone
        reason = quantized.gates[spec.id][0].no_evidence
        rows.append({**{key: None for key in rows[0]}, "model": f"INT8 {spec.id}", "verdict": f"FAIL: {reason}"})
        verdicts.append(Verdict(Kind.FAIL, [reason]))
        spreads.append(0.0)
        row_eps.append("-")
    return rows, verdicts, spreads, row_eps


def run_check(
    manifest: Manifest,
    *,
    eps: list[str] | None = None,
    threads: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    rounds: int | None = None,
    accuracy: bool = True,
) -> CheckReport:
    """The main job on the manifest's first case, in phases: quantize and gate size and accuracy; time;
    gate latency; the table and its verdicts; the peer; throughput. Thresholds per config come from the manifest.

    ``accuracy=False`` (--no-accuracy) skips validation: verdicts then say "size and latency only"."""
    case = manifest.cases[0]
    pipe = CasePipeline(case, "cpu", cache_dir, threads, progress=progress)
    eps = _check_inputs(pipe, eps, accuracy, manifest.thresholds_for(case, manifest.spec(GATED), pipe.task.name))
    hw = pipe.hw_nc[0]
    measured = accuracy and pipe.evidence is not None
    evidence, notes = _evidence(pipe, eps, accuracy)
    quantized = _quantize_all(pipe, manifest, measured, progress)
    rounds = rounds or int(quantized.th[GATED]["latency_rounds"])
    timings = _time_all(pipe, quantized, eps, threads, rounds, progress)
    _gate_latency(pipe, quantized, timings, case.id, threads)
    notes += quantized.notes + timings.notes
    rows, verdicts, spreads, row_eps = _rows(pipe, quantized, timings, measured, accuracy)
    fp32_map = pipe.map(None)["map50_95"] if measured and pipe.annotated else None
    if peer.available():
        _phase(progress, "the peer: OpenVINO + NNCF INT8")
        try:
            peer_row = _peer_row(pipe, threads, rounds, quantized.results[GATED].source_bytes, fp32_map)
            rows.append({**dict.fromkeys(rows[0]), **peer_row})
            verdicts.append(Verdict(Kind.PEER))
        except Exception as exc:  # noqa: BLE001 - the peer's failure is its row's FAIL, never the run's end
            from .compat import error_line

            rows.append({**{key: None for key in rows[0]}, "model": peer.LABEL, "verdict": f"FAIL: {error_line(exc)}"})
            verdicts.append(Verdict(Kind.FAIL, [f"the peer could not be made or run: {error_line(exc)}"]))
        spreads.append(0.0)
        row_eps.append(peer.EP)
        notes.append(
            f"peer: {peer.versions()} — quantized like `yolo export format=openvino int8=True` (preset MIXED, "
            "head in float, found by quantkit's head finder), timed by block like every 'deploy ms'"
        )
    else:
        notes.append(f"peer: OpenVINO + NNCF not installed ({peer.INSTALL} adds its row)")
    best = fastest_deployable(rows, verdicts, timings.latency.get("cpu", {}).get("fp32"), spreads)
    eps = list(timings.latency)
    machine = {
        "cpu": cpu_info(),
        "onnxruntime": compat.ORT_VERSION,
        "eps": eps,
        "threads": threads or "default",
        "rounds": rounds,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    _phase(progress, "throughput of the deployable models (threads x streams)")
    names = [n for _ in eps for n in timings.models]  # the rows' model names, EP by EP (the peer's row comes after)
    passed = [
        (name, timings.models[name], ep)
        for name, v, ep in zip(names, verdicts, row_eps)
        if v.kind.deployable and name != WEIGHTS_PLAIN
    ]  # throughput sessions read the model's own options
    # a window of about 200 inferences of the slowest model, within 0.25..1 s: the fixture keeps 1 s,
    # a tiny graph is not timed for 1 s per setting
    window = min(1.0, max(0.25, 0.2 * max(ms for by_model in timings.block.values() for ms in by_model.values())))
    return CheckReport(
        rows=rows,
        gate_results=quantized.gates,
        fastest=best,
        machine=machine,
        notes=notes,
        throughput=best_throughput(passed, hw, window, progress),
        gated_model=str(timings.models[GATED]),
        case_id=case.id,
        task=pipe.task.name,
        evidence=evidence,
        accuracy=pipe.evidence if measured else ("skipped" if not accuracy else "not measured"),
        kinds=[v.kind for v in verdicts],
        row_eps=row_eps,
    )


def fastest_deployable(
    rows: list[dict], verdicts: list[Verdict], fp32_ms: float | None, spreads: list[float] | None = None
) -> dict | None:
    """The deployable row (reference or passing its own EP's gates; every (model, EP) a row) with the lowest
    interleaved latency, with its ratio to the CPU FP32 row and the rows tied with it (within the timings'
    spread, ``bench.fastest``); a tie with a reference row goes to the reference. None when none was timed."""
    ms = {i: row["latency ms"] for i, (row, v) in enumerate(zip(rows, verdicts)) if v.kind.deployable}
    best, tied = fastest(ms, ms, dict(enumerate(spreads)) if spreads else None)
    if best is None:
        return None
    best = next((i for i in tied if verdicts[i].kind is Kind.REFERENCE), best)
    row = rows[best]
    return {
        **row,
        "vs CPU FP32": round(row["latency ms"] / fp32_ms, 3) if fp32_ms else None,
        "kind": verdicts[best].kind.value,
        "tied": [rows[i]["model"] for i in tied if i != best],
    }


def _verdict(
    name: str,
    spec: ConfigSpec | None,
    gate_results: dict,
    ep: str,
    measured: bool,
    accuracy: bool,
    reference: dict,
    th: dict | None = None,
) -> Verdict:
    """The verdict of one (model, EP) row from its gate results: failed gates first; without measured
    accuracy it is "not verified" (or, with --no-accuracy, "size and latency only"), never a pass."""
    if spec is None:
        return Verdict(Kind.CONTRAST if name == FAST_FP32 else Kind.REFERENCE)
    ep_results = [r for r in gate_results[name] if r.gate != "latency" or r.case_id.endswith("/" + ep)]
    order = [r.gate for r in ep_results]
    failed = sorted({r.gate for r in ep_results if r.failed}, key=order.index)
    if failed:
        return Verdict(Kind.FAIL, failed)
    undecided = sorted({r.gate for r in gates.undecided(ep_results)}, key=order.index)
    if undecided:
        return Verdict(Kind.UNDECIDED, undecided)
    if not measured:  # never a pass: not verified, or what the user accepted with --no-accuracy
        return Verdict(Kind.NO_ACCURACY if not accuracy else Kind.UNVERIFIED, detail="accuracy NOT measured")
    timed = next(r for r in ep_results if r.gate == "latency")
    if spec.size_only or timed.verdict == "no gain":
        slower = ", slower" if timed.value > (th or THRESHOLDS)["same_speed_ratio"] else ""
        same = " (against FP32 with the same Softmax rewrite)" if reference[name] == FAST_FP32 else ""
        return Verdict(Kind.SIZE_ONLY, detail=f"{timed.value:.2f}x FP32 latency{slower}{same}")
    return Verdict(Kind.PASS)


def fast_softmax_fp32(model: Path, cache_dir: Path, hw: tuple[int, int]) -> tuple[Path, float] | None:
    """``model`` with quantkit's Softmax rewrite (rewrite.rewritten_copy) and its largest output difference
    from ``model`` on the timing input; None when it has no Softmax to rewrite."""
    out = rewritten_copy(model, cache_dir)
    if out is None:
        return None
    x = sample_input(hw)
    return out, float(np.abs(Runner(model).run(x) - Runner(out).run(x)).max())


def _peer_row(pipe: CasePipeline, threads: int | None, rounds: int, fp32_bytes: int, fp32_map: float | None) -> dict:
    """The OpenVINO + NNCF INT8 row: size, block latency with OpenVINO's defaults, mAP, verdict by the same gates."""
    hw = pipe.hw_nc[0]
    calib = load_calibration(pipe.case.calib, hw, progress=False, exclude=pipe.holdout, fit=pipe.task.fit)  # not val
    xml = peer.nncf_int8(pipe.case.model, calib, pipe.cache_dir)
    runner = peer.OVRunner(xml, threads)
    ms = peer.block_ms(runner, sample_input(hw), rounds)
    size = xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    map_ = None
    if fp32_map is not None:
        preds = predict(runner, pipe.images, pipe.hw_nc[1])
        map_ = score(pipe.coco[0], preds, pipe.images, pipe.classes)["metrics"]["map50_95"]
    return {
        "model": peer.LABEL,
        "size MB": round(size / 1e6, 2),
        "latency ms": None,
        "FPS": round(1000 / ms, 1),
        "deploy ms": round(ms, 3),
        "size change %": round(100 * (size / fp32_bytes - 1), 1),
        "speed change %": None,
        "peak memory MB": None,
        **({"mAP50-95": round(map_, 4), "mAP drop": round(100 * (fp32_map - map_), 2)} if map_ is not None else {}),
        "quantize s": None,
        "verdict": "peer",
    }


def write_report(report: CheckReport, out: Path) -> list[Path]:
    """report.md, report.json and two PNG plots in ``out``; returns the written paths."""
    from . import report as render

    out.mkdir(parents=True, exist_ok=True)
    md = ["# quantkit check", "", render.markdown_table(report.rows), "", f"**Evidence:** {report.evidence}", ""]
    if report.fastest:
        md.append(
            f"**Fastest deployable:** {report.fastest['model']} — {report.fastest['latency ms']} ms interleaved, "
            f"{report.fastest['vs CPU FP32']}x the CPU FP32 latency."
        )
    md.append("\n" + report.latency_story())
    md.append(f"\n**Best throughput:** {describe(report.throughput)}")
    md += ["", "## Gates", ""]
    for cid, results in report.gate_results.items():
        md += [f"- {r.message()}" for r in results]
    md += [
        "",
        "## Machine",
        "",
        f"CPU {report.machine['cpu']['brand']}, flags {', '.join(report.machine['cpu']['flags'])}; "
        f"onnxruntime {report.machine['onnxruntime']}; EPs {', '.join(report.machine['eps'])}; threads "
        f"{report.machine['threads']}",
    ]
    md += [f"- note: {n}" for n in report.notes]
    paths = [out / "report.md", out / "report.json", out / "latency_vs_map.png", out / "sizes.png"]
    write_text_atomic(paths[0], "\n".join(md) + "\n")
    write_text_atomic(paths[1], json.dumps(report.to_json(), indent=1, default=str))
    gated, task = report.gate_results[GATED], tasks.get(report.task)
    drop = next((r for r in gated if r.metric == task.drop_metric), None)
    title = (
        f"{gated[0].case_id.split('/')[0] if gated else ''} — {report.machine['cpu']['brand']}, "
        f"onnxruntime {report.machine['onnxruntime']}"
    )
    typed = [{**row, "kind": kind.value} for row, kind in zip(report.rows, report.kinds)]
    column = task.accuracy_column
    rows = [r for r in typed if r["latency ms"] and r.get(column) is not None]  # measured rows only
    if rows:
        render.plot_latency_vs_map(
            rows,
            paths[2],
            threshold=drop.fp32 - drop.threshold / 100 if drop else None,
            title=f"latency vs {column}: {title}",
            column=column,
        )
    else:
        paths.remove(paths[2])
    render.plot_sizes(
        [r for r, ep in zip(typed, report.row_eps) if ep == report.machine["eps"][0]],
        paths[-1],
        title=f"model sizes: {title}",
    )
    if report.gated_model:  # the very file the verdict is about, so what is deployed is what was gated
        paths.append(out / f"{report.case_id}.{GATED}.int8.onnx")
        copy_atomic(report.gated_model, paths[-1])
    return paths
