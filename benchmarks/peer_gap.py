"""Where the gap to the peer comes from: quantkit's INT8 and the levers quantkit controls, against
OpenVINO + NNCF INT8, on the fixture, in one process.

    PYTHONPATH=. python benchmarks/peer_gap.py [--rounds N] [--runs N] [--profile-runs N]

Timing: at a fixed 1 and 2 threads, each variant runs alone in blocks (``quantkit.peer.block_ms``:
warm-up, then ``--runs`` back-to-back inferences, median), with its runtime's deployment defaults but
the thread count; every round runs one block of every variant, in an order rotated each round, and a
variant's figure is the median of its blocks. "x peer" is the median over rounds of the variant's block
over the peer's block of the same round (drift between rounds cancels).

The levers, each a variant of quantkit's default INT8 (static QDQ, per-channel, head float, target avx2):

  (a) QOperator format (the ``qoperator`` preset)
  (b) onnxruntime's offline-optimized model: the INT8 model saved once by a session at ORT_ENABLE_ALL
      (``SessionOptions.optimized_model_filepath``), then loaded with optimizations disabled / basic
  (c) only Conv quantized (``op_types_to_quantize=["Conv"]``) instead of onnxruntime's default op set
  (d) ``extra_options``: QDQKeepRemovableActivations, ActivationSymmetric, DedicatedQDQPair
  (e) one scale per Concat: the calibrated ranges of every Concat's inputs and output, and of the
      tensors onnxruntime's QDQ quantizer ties to them (Split, Resize, MaxPool, Reshape, ... outputs take
      their input's scale), set to their union before the quantizer computes scales: what a
      ``TensorQuantOverrides`` rmin/rmax per tensor would say, taken from the calibration itself
      (NNCF unifies Concat scales the same way)
  (f) session options on the default INT8 model: intra-op spinning off (``session.intra_op.allow_spinning``
      = 0), ``session.dynamic_block_base`` = 4
  (g) without quantkit's Softmax rewrite (``fast_softmax=False``: onnxruntime's Softmax over the DFL's
      non-last axis, as quantkit made INT8 models before ``quantkit.quantization.rewrite``), and FP32 with the rewrite

Quantized models come from quantkit's cache (``CasePipeline``, the same cache as ``quantkit check``) and
are made once; the peer is ``quantkit.peer.nncf_int8``'s cached model. mAP50-95 is quantkit's
evaluation on the fixture's val set (best-class NMS), each variant run by its own session.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import inspect
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from profile_ops import op_profile  # benchmarks/ is this script's folder
from quantkit import compat
from quantkit import peer
from quantkit.measure.bench import sample_input
from quantkit.quantization.calibration import load_calibration
from quantkit.check import fast_softmax_fp32
from quantkit.cpu import cpu_info
from quantkit.errors import QuantkitError
from quantkit.measure.evaluate import predict, score
from quantkit.manifest import ConfigSpec, load_manifest
from quantkit.model import op_counts
from quantkit.pipeline import CasePipeline
from quantkit.report import markdown_table
from quantkit.measure.session import Runner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
THREADS = (1, 2)
DEFAULT = ConfigSpec("static-qdq", "default")  # check's and the gate suite's id: their cached model


_START = time.perf_counter()


def log(text: str) -> None:
    print(f"peer_gap [{time.perf_counter() - _START:5.0f} s]: {text}", file=sys.stderr, flush=True)


# -- runners ---------------------------------------------------------------------------------------


class SessionRunner:
    """An onnxruntime CPU session as quantkit's ``Runner`` makes it (``threads`` intra-op, 1 inter-op),
    plus the session options a lever changes: the optimization level and session config entries."""

    def __init__(
        self,
        model: Path,
        threads: int,
        level: ort.GraphOptimizationLevel | None = None,
        config: dict[str, str] | None = None,
    ):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        if level is not None:
            opts.graph_optimization_level = level
        for key, value in (config or {}).items():
            opts.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.input_name, self.batch, self.model_path = self.session.get_inputs()[0].name, 1, Path(model)

    def run(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: tensor})[0]

    def run_all(self, tensor: np.ndarray, first_only: bool = False) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: tensor})


@dataclass
class Variant:
    name: str
    make: Callable[[int], object]  # threads -> a runner
    model: Path | None = None  # the ONNX file, for the Q/DQ column
    note: str = ""
    map_of: str | None = (
        None  # runs the same graph as that variant (session options only): its mAP, not evaluated again
    )


# -- levers quantkit's quantize API does not expose: extra_options and shared Concat ranges ---------

# ops whose output onnxruntime's QDQ quantizer gives its input's scale (QDQDirect8BitOp, QDQSplit, QDQResize, ...)
SAME_AS_INPUT = {
    "Split",
    "Resize",
    "MaxPool",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Slice",
    "Pad",
    "Gather",
    "AveragePool",
}


def _concat_groups(model: onnx.ModelProto, excluded: set[str], names: set[str]) -> list[set[str]]:
    """Tensors that must share one scale for every quantized Concat to have one: each Concat's inputs and
    output, joined through ops whose output takes its input's scale (union-find over ``names``)."""
    parent: dict[str, str] = {}

    def find(t: str) -> str:
        while parent.setdefault(t, t) != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    def join(tensors: list[str]) -> None:
        tensors = [t for t in tensors if t in names]
        for t in tensors[1:]:
            parent[find(t)] = find(tensors[0])

    concat_tensors = set()
    for node in model.graph.node:
        if node.name in excluded:
            continue
        if node.op_type == "Concat":
            join([*node.input, *node.output])
            concat_tensors.update([*node.input, *node.output])
        elif node.op_type in SAME_AS_INPUT:
            join([node.input[0], *node.output])
    groups: dict[str, set[str]] = defaultdict(set)
    for t in parent:
        groups[find(t)].add(t)
    return [g for g in groups.values() if len(g) > 1 and g & concat_tensors]


class _SharedConcatRanges:
    """onnxruntime's calibrator (quantkit's batched/cached one), whose ranges come out with every Concat
    group set to the group's union."""

    def __init__(self, calibrator, model_path: str, excluded: set[str], report: dict):
        self._calibrator, self._model_path, self._excluded, self._report = calibrator, model_path, excluded, report

    def compute_data(self):
        from onnxruntime.quantization.calibrate import TensorData

        compute = getattr(self._calibrator, "compute_data", None) or self._calibrator.compute_range
        ranges = compute()
        groups = _concat_groups(
            onnx.load(self._model_path, load_external_data=False), self._excluded, set(ranges.keys())
        )
        for group in groups:
            lo = min(ranges[t].range_value[0] for t in group)
            hi = max(ranges[t].range_value[1] for t in group)
            for t in group:
                ranges[t] = TensorData(lowest=np.asarray(lo, np.float32), highest=np.asarray(hi, np.float32))
        self._report.update(groups=len(groups), tensors=sum(map(len, groups)))
        return ranges

    compute_range = compute_data

    def __getattr__(self, name):
        return getattr(self._calibrator, name)


@contextlib.contextmanager
def ort_levers(extra_options: dict | None = None, shared_concat: bool = False, report: dict | None = None):
    """While active, quantkit's quantize passes ``extra_options`` to onnxruntime's quantize_static, and with
    ``shared_concat`` the calibrated ranges are unified per Concat group before the quantizer reads them."""
    real = compat.quantize_static
    ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")

    def quantize_static(model_input, model_output, reader, preprocessed=False, **options):
        options["extra_options"] = {**options.get("extra_options", {}), **(extra_options or {})}
        if not shared_concat:
            return real(model_input, model_output, reader, preprocessed, **options)
        inner = ort_quantize.create_calibrator  # quantkit's (ranges.fast_calibration), active around this call
        excluded = set(options.get("nodes_to_exclude") or [])
        ort_quantize.create_calibrator = lambda *a, **k: _SharedConcatRanges(
            inner(*a, **k), str(model_input), excluded, report if report is not None else {}
        )
        try:
            return real(model_input, model_output, reader, preprocessed, **options)
        finally:
            ort_quantize.create_calibrator = inner

    compat.quantize_static = quantize_static
    try:
        yield
    finally:
        compat.quantize_static = real


def lever_spec(name: str, extra_options: dict | None = None, shared_concat: bool = False, **overrides) -> ConfigSpec:
    """A ConfigSpec whose id names what the pipeline's cache key cannot see (extra options, shared ranges),
    so each lever gets its own cached model (remade when the Concat grouping code changes)."""
    code = inspect.getsource(_concat_groups) + inspect.getsource(_SharedConcatRanges) + str(sorted(SAME_AS_INPUT))
    tag = hashlib.sha256(
        json.dumps([extra_options, code if shared_concat else None], sort_keys=True).encode()
    ).hexdigest()[:8]
    return ConfigSpec(f"gap-{name}-{tag}", "default", overrides)


def graph_digest(path: Path) -> str:
    """The graph's bytes (nodes, weights, scales), metadata aside."""
    return hashlib.sha256(onnx.load(str(path)).graph.SerializeToString()).hexdigest()


def concat_scales(model: onnx.ModelProto) -> str:
    """'k/n': QDQ Concats whose inputs' DequantizeLinear and output's QuantizeLinear all have one scale."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            consumers[i].append(n)
    total = shared = 0
    for node in model.graph.node:
        if node.op_type != "Concat":
            continue
        scales = [
            inits.get(producer[i].input[1])
            for i in node.input
            if i in producer and producer[i].op_type == "DequantizeLinear"
        ]
        scales += [inits.get(c.input[1]) for c in consumers[node.output[0]] if c.op_type == "QuantizeLinear"]
        if len(scales) < 2 or any(s is None for s in scales):
            continue  # a float Concat (the head) or a QOperator graph
        total += 1
        shared += all(np.allclose(s, scales[0]) for s in scales)
    return f"{shared}/{total}"


# -- the variants -----------------------------------------------------------------------------------


def build(pipe: CasePipeline, notes: list[str]) -> list[Variant]:
    """FP32, quantkit's default INT8, each lever, and the peer; a lever that cannot be built is a note."""
    fp32 = pipe.case.model
    variants = [Variant("FP32 (onnxruntime CPU EP)", lambda t: Runner(fp32, "cpu", t), fp32)]

    def quantized(name: str, spec: ConfigSpec, extra: dict | None = None, shared: bool = False) -> Path | None:
        report: dict = {}
        log(f"quantizing {name} (cached after the first run)")
        try:
            with ort_levers(extra, shared, report):
                path = Path(pipe.quantized(spec).output)
        except QuantkitError as exc:
            notes.append(f"{name}: not built ({exc})")
            return None
        if shared and report:
            notes.append(f"{name}: {report['groups']} Concat groups, {report['tensors']} tensors given one range each")
        return path

    int8 = quantized("quantkit INT8", DEFAULT)
    if int8 is None:
        raise QuantkitError("quantkit's default INT8 model could not be made: nothing to compare")
    variants.append(Variant("quantkit INT8 (default, QDQ)", lambda t: Runner(int8, "cpu", t), int8))

    def lever(label: str, spec: ConfigSpec, extra: dict | None = None, shared: bool = False) -> None:
        path = quantized(label, spec, extra, shared)
        if path is not None:
            same = graph_digest(path) == graph_digest(int8)
            variants.append(
                Variant(
                    label,
                    lambda t: Runner(path, "cpu", t),
                    path,
                    "the same graph as quantkit INT8: a no-op on this model" if same else "",
                    variants[1].name if same else None,
                )
            )

    lever("(a) QOperator", ConfigSpec("static-qoperator", "qoperator"))
    optimized = offline_optimized(int8, pipe.cache_dir, notes)
    if optimized is not None:
        for label, level in (
            ("disabled", ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
            ("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
        ):
            variants.append(
                Variant(
                    f"(b) ORT-optimized offline, loaded {label}",
                    lambda t, level=level: SessionRunner(optimized, t, level),
                    optimized,
                )
            )
    lever("(c) only Conv quantized", lever_spec("conv-only", op_types=("Conv",)))
    for option in ("QDQKeepRemovableActivations", "ActivationSymmetric", "DedicatedQDQPair"):
        extra = {option: True}
        lever(f"(d) {option}", lever_spec(option, extra), extra)
    lever("(e) one scale per Concat", lever_spec("shared-concat", None, True), shared=True)
    for label, config in (
        ("spinning off", {"session.intra_op.allow_spinning": "0"}),
        ("dynamic_block_base 4", {"session.dynamic_block_base": "4"}),
    ):
        variants.append(
            Variant(
                f"(f) {label}",
                lambda t, config=config: SessionRunner(int8, t, config=config),
                int8,
                map_of=variants[1].name,
            )
        )

    lever("(g) without the Softmax rewrite", lever_spec("slow-softmax", fast_softmax=False))
    rewritten = fast_softmax_fp32(fp32, pipe.cache_dir, pipe.hw_nc[0])
    if rewritten:
        variants.append(
            Variant("(g) FP32 with the Softmax rewrite", lambda t: Runner(rewritten[0], "cpu", t), rewritten[0])
        )

    if peer.available():
        log("the peer: NNCF INT8 (cached after the first run)")
        calib = load_calibration(pipe.case.calib, pipe.hw_nc[0], progress=False)
        xml = peer.nncf_int8(fp32, calib, pipe.cache_dir)
        variants.append(Variant(peer.LABEL, lambda t: peer.OVRunner(xml, t), None, "OpenVINO's defaults but threads"))
    else:
        notes.append(f"peer: OpenVINO + NNCF not installed ({peer.INSTALL}): no peer row, no ratios")
    return variants


def offline_optimized(int8: Path, cache_dir: Path, notes: list[str]) -> Path | None:
    """``int8`` as a session at ORT_ENABLE_ALL saves it (hardware-specific: NCHWc layouts, this CPU's kernels)."""
    out = (
        cache_dir
        / "peer_gap"
        / f"{int8.stem}-ort{compat.ORT_VERSION}-all-{cpu_info()['brand'].replace(' ', '')[:24]}.onnx"
    )
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(out)
    try:
        ort.InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        notes.append(f"(b) offline-optimized model not saved ({compat.error_line(exc)})")
        return None
    return out


# -- timing, accuracy, profiles -------------------------------------------------------------------------


def time_blocks(
    runners: dict[tuple[str, int], object], names: list[str], hw: tuple[int, int], rounds: int, runs: int
) -> dict:
    """{(name, threads): [block ms per round]}: every round, every variant's block at each thread count,
    the variant order rotated by one each round."""
    tensor = sample_input(hw)
    blocks: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in range(rounds):
        started = time.perf_counter()
        order = names[r % len(names) :] + names[: r % len(names)]
        for threads in THREADS:
            for name in order:
                blocks[(name, threads)].append(peer.block_ms(runners[(name, threads)], tensor, runs))
        log(f"round {r + 1}/{rounds} ({time.perf_counter() - started:.0f} s)")
    return blocks


def map50_95(pipe: CasePipeline, runner) -> float:
    return score(pipe.coco[0], predict(runner, pipe.images, pipe.hw_nc[1]), pipe.images, pipe.classes)["metrics"][
        "map50_95"
    ]


def ov_profile(xml: Path, hw: tuple[int, int], runs: int) -> list[dict]:
    """OpenVINO's per-layer times (PERF_COUNT, 1 thread) summed by layer type and kernel (exec type), with the
    runtime precisions of those layers."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERF_COUNT": True, "INFERENCE_NUM_THREADS": 1})
    precision = {
        op.get_friendly_name(): op.get_rt_info()["runtimePrecision"].astype(str)
        for op in compiled.get_runtime_model().get_ordered_ops()
    }
    request, tensor = compiled.create_infer_request(), sample_input(hw)
    for _ in range(5):
        request.infer([tensor])
    totals: dict[tuple[str, str], float] = defaultdict(float)
    precisions: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _ in range(runs):
        request.infer([tensor])
        for info in request.profiling_info:
            if str(info.status).endswith("EXECUTED"):
                key = (info.node_type, info.exec_type)
                totals[key] += info.real_time.total_seconds()
                precisions[key].add(precision.get(info.node_name, "?"))
    total = sum(totals.values())
    return [
        {
            "layer": layer,
            "kernel": kernel,
            "precision": ",".join(sorted(precisions[(layer, kernel)])),
            "ms / inference": round(1e3 * s / runs, 3),
            "share %": round(100 * s / total, 1),
        }
        for (layer, kernel), s in sorted(totals.items(), key=lambda kv: -kv[1])
        if s > 0
    ]


CATEGORIES = (  # first match wins: QLinearConv is a convolution, QLinearConcat a Concat
    ("convolution", ("Conv",)),
    ("pooling", ("Pool",)),
    (
        "concat / split / layout / resize",
        (
            "Concat",
            "Split",
            "Reshape",
            "Transpose",
            "Slice",
            "Reorder",
            "Resize",
            "Interpolate",
            "Gather",
            "Squeeze",
            "Flatten",
        ),
    ),
    ("quantize / dequantize", ("QuantizeLinear", "DequantizeLinear", "FakeQuantize")),
    (
        "elementwise / activation (OpenVINO 'Subgraph': fused elementwise)",
        ("Sigmoid", "Mul", "Add", "Sub", "Div", "Softmax", "Subgraph", "Eltwise", "Swish"),
    ),
)


def category(op: str) -> str:
    return next((name for name, keys in CATEGORIES if any(k in op for k in keys)), "other")


def by_category(ort_rows: list[dict], ov_rows: list[dict]) -> list[dict]:
    cats: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in ort_rows:
        cats[category(row["op"])][0] += row["ms / inference"]
    for row in ov_rows:
        cats[category(row["layer"])][1] += row["ms / inference"]
    order = [name for name, _ in CATEGORIES] + ["other"]
    rows = [
        {"category": c, "onnxruntime INT8 ms": round(cats[c][0], 3), "OpenVINO INT8 ms": round(cats[c][1], 3)}
        for c in order
        if c in cats
    ]
    rows.append(
        {
            "category": "all nodes",
            "onnxruntime INT8 ms": round(sum(r["ms / inference"] for r in ort_rows), 3),
            "OpenVINO INT8 ms": round(sum(r["ms / inference"] for r in ov_rows), 3),
        }
    )
    return rows


# -- main --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="blocks per variant and thread count")
    parser.add_argument("--runs", type=int, default=30, help="timed inferences per block (after 5 warm-up)")
    parser.add_argument("--profile-runs", type=int, default=50, help="inferences profiled per runtime")
    args = parser.parse_args()
    started = time.perf_counter()
    case = load_manifest(FIXTURES / "manifest.toml").cases[0]  # shapes-v8n-192x320 and its calib and val data
    pipe = CasePipeline(case, "cpu")
    hw, info = pipe.hw_nc[0], cpu_info()
    print(f"# The gap to the peer: {case.model.name}, {'x'.join(map(str, hw))}\n")
    print(
        f"CPU {info['brand']} ({os.cpu_count()} logical cores), INT8 flags {', '.join(info['flags']) or 'none'}; "
        f"onnxruntime {compat.ORT_VERSION}; {peer.versions() if peer.available() else 'openvino/nncf not installed'}; "
        f"load average {os.getloadavg()[0]:.2f} at the start\n"
    )

    notes: list[str] = []
    variants = build(pipe, notes)
    names = [v.name for v in variants]
    runners = {(v.name, t): v.make(t) for v in variants for t in THREADS}

    log(f"mAP50-95 of {sum(not v.map_of for v in variants)} variants on {len(pipe.images.ids)} val images")
    maps = {v.name: map50_95(pipe, runners[(v.name, THREADS[-1])]) for v in variants if not v.map_of}
    maps.update({v.name: maps[v.map_of] for v in variants if v.map_of})
    log(f"timing: {args.rounds} rounds x {len(variants)} variants x threads {THREADS}, {args.runs} runs a block")
    blocks = time_blocks(runners, names, hw, args.rounds, args.runs)

    has_peer = peer.LABEL in names
    fp32_map = maps[names[0]]
    rows = []
    for v in variants:
        row = {"variant": v.name}
        for t in THREADS:
            row[f"ms @{t}t"] = round(statistics.median(blocks[(v.name, t)]), 3)
        for t in THREADS:
            row[f"x peer @{t}t"] = (
                round(statistics.median([a / b for a, b in zip(blocks[(v.name, t)], blocks[(peer.LABEL, t)])]), 3)
                if has_peer
                else None
            )
        row["mAP50-95"] = round(maps[v.name], 4)
        row["drop pt"] = round(100 * (fp32_map - maps[v.name]), 2)
        if v.model is not None:
            model = onnx.load(str(v.model), load_external_data=False)
            ops = op_counts(model)
            row["Q/DQ"] = f"{ops.get('QuantizeLinear', 0)}/{ops.get('DequantizeLinear', 0)}"
            row["Concat one scale"] = concat_scales(model)
        else:
            row["Q/DQ"], row["Concat one scale"] = "", ""
        row["note"] = v.note or (f"same graph as {v.map_of}: its mAP" if v.map_of else "")
        rows.append(row)
    spread = {t: max(max(b) / min(b) for (_, tt), b in blocks.items() if tt == t) for t in THREADS}
    print(f"## Latency and accuracy ({args.rounds} rounds, {args.runs} runs a block; median of block medians)\n")
    print(markdown_table(rows))
    print(
        "\nms @Nt: median block time at N threads; x peer @Nt: median over rounds of the block's time over the peer's "
        "block of the same round; drop pt: FP32 mAP50-95 minus the variant's, in points; Q/DQ: QuantizeLinear/"
        "DequantizeLinear nodes in the ONNX file; Concat one scale: QDQ Concats whose inputs and output share one "
        "scale."
    )
    print(
        "\nWidest max/min block ratio of a variant across rounds: "
        + ", ".join(f"{spread[t]:.2f} at {t} thread(s)" for t in THREADS)
        + " (above ~1.1: a noisy machine, rerun)"
    )
    for note in notes:
        print(f"- {note}")

    log(f"op profiles at 1 thread ({args.profile_runs} runs each)")
    ort_rows = op_profile(variants[1].model, 1, args.profile_runs)  # quantkit's default INT8
    print("\n## Where the time goes, 1 thread: onnxruntime per op type (quantkit INT8, after onnxruntime's fusions)\n")
    print(markdown_table(ort_rows))
    if has_peer:
        ov_rows = ov_profile(runners[(peer.LABEL, 1)].model_path, hw, args.profile_runs)
        print(
            "\n## OpenVINO per layer type and kernel (NNCF INT8, PERF_COUNT; precision: the layers' runtime "
            "precision)\n"
        )
        print(markdown_table(ov_rows))
        print("\n## Side by side, by category (ms per inference, 1 thread; profilers' node times, not wall time)\n")
        print(markdown_table(by_category(ort_rows, ov_rows)))
    print(f"\n(run took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
