"""`quantkit check`: the main job end to end — the seed report's table, complete, with a verdict.

Quantize (default static, weight-only, dynamic, and naive for contrast), evaluate mAP and detection parity,
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
from pathlib import Path

import numpy as np

from . import compat, gates, peer
from .bench import interleaved, sample_input
from .calibration import choose_files, load_calibration
from .cpu import cpu_info
from .errors import CalibrationError, EPUnavailableError, QuantkitError
from .evaluate import predict, score
from .manifest import ConfigSpec, Manifest
from .pipeline import CasePipeline
from .rewrite import FAST_FP32, carries_rewrite, rewritten_copy
from .session import Runner, available_eps
from .throughput import best_throughput, describe

CHECK_CONFIGS = (ConfigSpec("static-qdq", "default"), ConfigSpec("weights", "weights", size_only=True),
                 ConfigSpec("dynamic", "dynamic", size_only=True), ConfigSpec("naive", "naive"))
GATED = "static-qdq"  # the configuration quantkit recommends: its gates decide the exit code

_MEMORY_PROBE = """
import sys, numpy as np, onnxruntime as ort
def status(key):
    with open("/proc/self/status") as f:
        return next(float(l.split()[1]) / 1024 for l in f if l.startswith(key))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) so the imports' own peak does not hide the session's
before = status("VmRSS:")
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
batch = sess.get_inputs()[0].shape[0]
x = np.zeros([batch if isinstance(batch, int) else 1, 3, int(sys.argv[2]), int(sys.argv[3])], np.float32)
for _ in range(3):
    sess.run(None, {sess.get_inputs()[0].name: x})
print(before, status("VmHWM:"))
"""


def session_memory_mb(model: Path, hw: tuple[int, int]) -> dict:
    """Peak resident memory of a fresh process that loads ``model`` and runs it 3 times (CPU EP).

    ``session_mb`` is the peak's growth over the resident size after importing onnxruntime
    (Linux /proc; the peak is reset after the imports). Elsewhere both are None.
    """
    if not Path("/proc/self/clear_refs").exists():
        return {"peak_rss_mb": None, "session_mb": None}
    try:
        proc = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(model), str(hw[0]), str(hw[1])],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise QuantkitError(f"memory probe for {model.name} ran over 300 s: check the model runs on the CPU EP") from None
    if proc.returncode != 0:
        raise QuantkitError(f"memory probe failed for {model.name}: {proc.stderr.strip().splitlines()[-1:]}")
    before, peak = (float(v) for v in proc.stdout.split())
    return {"peak_rss_mb": round(peak, 1), "session_mb": round(peak - before, 1)}


def _phase(progress: bool, text: str) -> None:
    """One line on stderr as each long phase starts; on a terminal, tqdm bars show progress within it."""
    if progress:
        print(f"quantkit: {text} ...", file=sys.stderr, flush=True)


@dataclass
class CheckReport:
    rows: list[dict]
    gate_results: dict[str, list[gates.GateResult]]
    fastest: dict | None
    machine: dict
    notes: list[str] = field(default_factory=list)
    throughput: dict | None = None  # the best-throughput setting of the deployable models (quantkit bench)

    @property
    def failed(self) -> bool:
        return bool(gates.failures(self.gate_results.get(GATED, [])))

    def to_json(self) -> dict:
        return {"rows": self.rows, "fastest_deployable": self.fastest, "machine": self.machine, "notes": self.notes,
                "best_throughput": self.throughput,
                "gates": {cid: [{**r.__dict__, "passed": r.passed, "message": r.message()} for r in results]
                          for cid, results in self.gate_results.items()}}


def run_check(manifest: Manifest, eps: list[str] | None = None, threads: int | None = None,
              cache_dir: Path | None = None, progress: bool = True, rounds: int = 30) -> CheckReport:
    """The main job on the manifest's first case; thresholds per config come from the manifest."""
    case = manifest.cases[0]
    unknown = sorted(set(eps or []) - set(available_eps()))
    if unknown:
        raise QuantkitError(f"execution provider {', '.join(unknown)} is not available here: choose from {', '.join(available_eps())}")
    eps = eps or available_eps()
    missing = [ep for ep in eps if ep not in available_eps()]
    if len(missing) == len(eps):
        raise EPUnavailableError(f"execution provider(s) {', '.join(missing)} not available in this onnxruntime "
                                 f"(available: {', '.join(available_eps())}): install its build or pick --ep cpu")
    pipe = CasePipeline(case, "cpu", cache_dir, threads, progress=progress)
    hw = pipe.hw_nc[0]
    has_coco = bool(case.coco_images and case.coco_ann)
    notes = [] if has_coco else ["no --coco-images/--coco-ann: accuracy and parity were not measured"]

    specs = list(CHECK_CONFIGS)
    # bad input fails here, in one line, before the first long phase
    if not case.calib:
        raise CalibrationError("the static configurations need calibration images: pass --calib DIR")
    choose_files(case.calib)
    if has_coco:
        pipe.classes  # the annotations and the class map (names or --class-map) against the model
    th_for = {spec.id: manifest.thresholds_for(case, manifest.spec(spec.id)) for spec in specs}
    results, gate_results = {}, {}
    for spec in specs:
        th = th_for[spec.id]
        _phase(progress, f"quantizing {spec.id}")
        results[spec.id] = pipe.quantized(spec)
        q = results[spec.id]
        notes += [f"{spec.id}: {note}" for note in q.notes]
        notes.append(f"{spec.id}: made for target CPU '{q.config.get('target_cpu')}'"
                     f"{' (7-bit weights, reduce_range)' if q.config.get('reduce_range') else ' (full 8-bit weights)'}")
        checks = gates.check_size(q.source_bytes, q.output_bytes, th, f"{case.id}/{spec.id}")
        if has_coco:
            _phase(progress, f"evaluating {spec.id} (mAP, parity)")
            checks += pipe.map_gates(spec, th, f"{case.id}/{spec.id}")
            checks += gates.check_operating_point(pipe.operating_point(None), pipe.operating_point(spec), th,
                                                  f"{case.id}/{spec.id}", case.iou)
            checks += gates.check_parity(pipe.parity(spec), th, f"{case.id}/{spec.id}")
        gate_results[spec.id] = checks

    models = {"fp32": case.model, **{spec.id: Path(results[spec.id].output) for spec in specs}}
    rewritten = fast_softmax_fp32(case.model, pipe.cache_dir, hw)
    if rewritten:  # beside the INT8 rows, so the table separates the rewrite's gain from INT8's
        path, diff = rewritten
        models = {"fp32": case.model, FAST_FP32: path, **{k: v for k, v in models.items() if k != "fp32"}}
        notes.append(f"FP32, Softmax rewritten: the FP32 model with the rewrite every INT8 model here carries "
                     f"(quantkit.rewrite; outputs within {diff:.1e} of FP32's on the timing input), so its mAP is FP32's")
    latency: dict[str, dict[str, float]] = {}
    for ep in eps:
        _phase(progress, f"timing FP32 and INT8 on {ep} ({rounds} rounds)")
        runners = {}
        for name, path in models.items():
            try:
                runners[name] = Runner(path, ep, threads, spin=False)
            except QuantkitError as exc:
                notes.append(f"{ep}: {name} does not run there ({exc})")
        if "fp32" not in runners:
            notes.append(f"{ep}: dropped — FP32 does not run there, so nothing on it can be compared")
            continue
        latency[ep] = interleaved(runners, sample_input(hw), rounds)
    if not latency:
        raise EPUnavailableError(f"none of the execution providers {', '.join(eps)} ran the model: "
                                 + "; ".join(notes[-len(eps):]))
    eps = list(latency)
    # each EP's INT8 against that EP's own FP32, with the same Softmax rewrite where the INT8 model carries it
    reference = {spec.id: FAST_FP32 if FAST_FP32 in models and carries_rewrite(models[spec.id]) else "fp32" for spec in specs}
    for spec in specs:
        for ep, ms in latency.items():
            ref = reference[spec.id] if reference[spec.id] in ms else "fp32"
            if spec.id in ms:
                result = gates.check_latency(ms[spec.id] / ms[ref], ep, th_for[spec.id], f"{case.id}/{spec.id}/{ep}",
                                             ms[ref], ms[spec.id], spec.size_only, threads)
                if ref == FAST_FP32:
                    result.note += "; FP32 timed with the same Softmax rewrite as the INT8 model"
                gate_results[spec.id].append(result)
    _phase(progress, "block timing with deployment defaults (one runtime at a time)")
    block = {ep: {name: peer.block_ms(Runner(path, ep, threads), sample_input(hw), rounds)
                  for name, path in models.items() if name in latency[ep]} for ep in eps}
    _phase(progress, "memory of each model in a fresh process")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # one process each; their peaks are their own
        memory = dict(zip(models, pool.map(lambda path: session_memory_mb(path, hw), models.values())))

    fp32_bytes, fp32_map = results[specs[0].id].source_bytes, pipe.map(None)["map50_95"] if has_coco else None
    rows, raw_ms = [], []
    for ep in eps:
        for name in models:
            ms = latency[ep].get(name)
            q = results.get(name)
            size = q.output_bytes if q else fp32_bytes
            label = {"fp32": "FP32", FAST_FP32: "FP32, Softmax rewritten"}.get(name, f"INT8 {name}")
            map_ = (pipe.map(None) if q is None else pipe.map(next(s for s in specs if s.id == name)))["map50_95"] if has_coco else None
            ep_results = [] if q is None else [r for r in gate_results[name] if r.gate != "latency" or r.case_id.endswith("/" + ep)]
            failed = sorted({r.gate for r in ep_results if not r.passed})
            timed = [r for r in ep_results if r.gate == "latency"]
            size_only = q is not None and next(s for s in specs if s.id == name).size_only
            if q is None:
                verdict = "reference"
            elif failed:
                verdict = "FAIL: " + ", ".join(failed)
            elif timed and (size_only or timed[0].verdict == "no gain"):
                slower = ", slower" if timed[0].value > 1.05 else ""  # within 5 %: the same speed
                same = " (against FP32 with the same Softmax rewrite)" if reference[name] == FAST_FP32 else ""
                verdict = f"pass, size only: {timed[0].value:.2f}x FP32 latency{slower}{same}"
            else:
                verdict = "pass"
            ep_base = latency[ep].get("fp32")
            rows.append({
                "model": f"{label} @ {ep}", "size MB": round(size / 1e6, 2),
                "latency ms": round(ms, 3) if ms else None, "FPS": round(1000 / ms, 1) if ms else None,
                "deploy ms": round(block[ep][name], 3) if name in block[ep] else None,
                "size change %": round(100 * (size / fp32_bytes - 1), 1),
                "speed change %": round(100 * (ep_base / ms - 1), 1) if ms and ep_base else None,
                "peak memory MB": memory[name]["session_mb"], "mAP50-95": round(map_, 4) if map_ is not None else None,
                "mAP drop": round(100 * (fp32_map - map_), 2) if map_ is not None else None,
                "quantize s": round(q.seconds, 1) if q else None,
                "verdict": verdict,
            })
            raw_ms.append(block[ep].get(name))
    if peer.available():
        _phase(progress, "the peer: OpenVINO + NNCF INT8")
        rows.append(_peer_row(pipe, threads, rounds, fp32_bytes, fp32_map))
        raw_ms.append(rows[-1]["deploy ms"])
        notes.append(f"peer: {peer.versions()} — quantized like `yolo export format=openvino int8=True` (preset MIXED, "
                     "head in float, found by quantkit's head finder), timed by block like every 'deploy ms'")
    else:
        notes.append(f"peer: OpenVINO + NNCF not installed ({peer.INSTALL} adds its row)")
    deployable = [(ms, row) for ms, row in zip(raw_ms, rows) if ms and row["verdict"].startswith(("pass", "reference"))]
    fastest = None
    if deployable:  # by block timing: what a deployment of that model alone would see
        ms, row = min(deployable, key=lambda d: d[0])
        base_block = block.get("cpu", {}).get("fp32")
        fastest = {**row, "vs CPU FP32": round(ms / base_block, 3) if base_block else None}
    machine = {"cpu": cpu_info(), "onnxruntime": compat.ORT_VERSION, "eps": eps, "threads": threads or "default",
               "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    _phase(progress, "throughput of the deployable models (threads x streams)")
    passed = dict.fromkeys(n for n, row in zip([n for _ in eps for n in models], rows) if row["verdict"].startswith(("pass", "reference")))
    # a window of about 200 inferences of the slowest model, within 0.25..1 s: the fixture keeps 1 s,
    # a tiny graph is not timed for 1 s per setting
    window = min(1.0, max(0.25, 0.2 * max(ms for by_model in block.values() for ms in by_model.values())))
    return CheckReport(rows, gate_results, fastest, machine, notes,
                       best_throughput({n: models[n] for n in passed}, hw, eps, window))


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
    calib = load_calibration(pipe.case.calib, hw, progress=False)
    xml = peer.nncf_int8(pipe.case.model, calib, pipe.cache_dir)
    runner = peer.OVRunner(xml, threads)
    ms = peer.block_ms(runner, sample_input(hw), rounds)
    size = xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    map_ = None
    if fp32_map is not None:
        preds = predict(runner, pipe.images, pipe.hw_nc[1])
        map_ = score(pipe.coco[0], preds, pipe.images, pipe.classes)["metrics"]["map50_95"]
    return {"model": peer.LABEL, "size MB": round(size / 1e6, 2), "latency ms": None, "FPS": round(1000 / ms, 1),
            "deploy ms": round(ms, 3), "size change %": round(100 * (size / fp32_bytes - 1), 1), "speed change %": None,
            "peak memory MB": None, "mAP50-95": round(map_, 4) if map_ is not None else None,
            "mAP drop": round(100 * (fp32_map - map_), 2) if map_ is not None else None, "quantize s": None,
            "verdict": "peer"}


def write_report(report: CheckReport, out: Path) -> list[Path]:
    """report.md, report.json and two PNG plots in ``out``; returns the written paths."""
    from . import report as render

    out.mkdir(parents=True, exist_ok=True)
    md = ["# quantkit check", "", render.markdown_table(report.rows), ""]
    if report.fastest:
        md.append(f"**Fastest deployable:** {report.fastest['model']} — {report.fastest['deploy ms']} ms by block timing, "
                  f"{report.fastest['vs CPU FP32']}x the CPU FP32 latency.")
    md.append(f"\n**Best throughput:** {describe(report.throughput)}")
    md += ["", "## Gates", ""]
    for cid, results in report.gate_results.items():
        md += [f"- {r.message()}" for r in results]
    md += ["", "## Machine", "", f"CPU {report.machine['cpu']['brand']}, flags {', '.join(report.machine['cpu']['flags'])}; "
           f"onnxruntime {report.machine['onnxruntime']}; EPs {', '.join(report.machine['eps'])}; threads {report.machine['threads']}"]
    md += [f"- note: {n}" for n in report.notes]
    paths = [out / "report.md", out / "report.json", out / "latency_vs_map.png", out / "sizes.png"]
    render.write_text_atomic(paths[0], "\n".join(md) + "\n")
    render.write_text_atomic(paths[1], json.dumps(report.to_json(), indent=1, default=str))
    gated = report.gate_results[GATED]
    drop = next((r for r in gated if r.metric == "map50_95_drop_pt"), None)
    title = (f"{gated[0].case_id.split('/')[0] if gated else ''} — {report.machine['cpu']['brand']}, "
             f"onnxruntime {report.machine['onnxruntime']}")
    rows = [r for r in report.rows if r["latency ms"]]
    if all(r["mAP50-95"] is not None for r in rows):
        render.plot_latency_vs_map(rows, paths[2], threshold=drop.fp32 - drop.threshold / 100 if drop else None,
                                   title=f"latency vs mAP50-95: {title}")
    else:
        paths.remove(paths[2])
    render.plot_sizes([r for r in report.rows if r["model"].endswith("@ " + report.machine["eps"][0])], paths[-1],
                      title=f"model sizes: {title}")
    return paths
