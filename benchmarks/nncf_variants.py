"""Which NNCF configuration is the strongest OpenVINO peer: ignored scopes, presets, subset_size and the
LATENCY hint, each model's FakeQuantize count, mAP50-95 drop and latency, in one process.

    PYTHONPATH=.:benchmarks python benchmarks/nncf_variants.py [--rounds N] [--runs N] \\
        [--skip-map | --skip-timing] [--only TEXT]

Every variant is ``nncf.quantize`` on the fixture (shapes-v8n-192x320) read by OpenVINO from the ONNX file,
calibrated on the same 100 letterboxed images as quantkit (``load_calibration``), made once and cached under
``<cache>/peer_variants``. The model is either ``openvino.Core().read_model`` of the ONNX file (the graph as
the file spells it: SiLU as Sigmoid and Multiply, each Conv's bias broadcast through ShapeOf/Broadcast) or
``openvino.convert_model`` of it (OpenVINO's conversion transformations: SiLU fused into Swish, shape
subgraphs folded; what ``yolo export format=openvino`` quantizes, since it converts with ``convert_model``).
Ignored scopes (every one also ignores every Sigmoid by type, as Ultralytics does):

  head        the nodes of quantkit's head finder (``heads.find``): decode, DFL, the head's Concat/Reshape/Slice
  head-math   the head finder's nodes that compute (Add/Sub/Mul/Div, the DFL's Softmax and Conv), not the ones
              that only move data (Concat, Reshape, Slice, Transpose)
  patterns    name patterns, Ultralytics' ``yolo export format=openvino int8=True`` scope spelled for the ONNX
              file's node names: the head module's own Add/Sub/Mul/Div and everything under its dfl

Timing as ``benchmarks/peer_gap.py`` times: blocks of ``--runs`` inferences (median), every variant's block at
1 and 2 threads each round in a rotated order; "x ref" is the median over rounds of block / the reference
variant's block of the same round. quantkit's default INT8 (onnxruntime CPU EP) runs in the same rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import re
import statistics
import sys
import time
from pathlib import Path

import onnx

from peer_gap import DEFAULT, map50_95, time_blocks, THREADS, log
from quantkit import compat, heads
from quantkit.manifest import load_manifest
from quantkit import peer
from quantkit.cpu import cpu_info
from quantkit.measure.session import Runner
from quantkit.model import name_nodes
from quantkit.pipeline import CasePipeline
from quantkit.quantization.calibration import load_calibration
from quantkit.report import markdown_table

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MOVES_DATA = {"Concat", "Reshape", "Slice", "Transpose", "Split", "Squeeze", "Unsqueeze", "Flatten", "Gather"}


def scope(kind: str, proto: onnx.ModelProto):
    import nncf

    head = heads.find(proto)
    ops = {n.name: n.op_type for n in proto.graph.node}
    if kind == "head":
        return nncf.IgnoredScope(names=list(head.nodes), types=["Sigmoid"], validate=False)
    if kind == "head-math":
        return nncf.IgnoredScope(
            names=[n for n in head.nodes if ops[n] not in MOVES_DATA], types=["Sigmoid"], validate=False
        )
    if kind == "patterns":
        prefix = re.escape(os.path.commonprefix(list(head.nodes)).rsplit("/", 1)[0] + "/")  # "/model\.22/"
        return nncf.IgnoredScope(
            patterns=[f"{prefix}(Add|Sub|Mul|Div)(_[0-9]+)?", f"{prefix}dfl/.*"], types=["Sigmoid"], validate=False
        )
    raise ValueError(kind)


def make(model: Path, calib, cache: Path, kind: str, preset: str, subset: int, reader: str = "convert") -> Path:
    import nncf
    import openvino as ov

    key = hashlib.sha256(
        model.read_bytes() + calib.tensors.tobytes() + f"{kind}-{preset}-{subset}-{reader}-{peer.versions()}".encode()
    ).hexdigest()[:12]
    out = cache / "peer_variants" / f"{model.stem}-{reader}-{kind}-{preset}-{subset}-{key}.xml"
    if out.is_file():
        return out
    proto = onnx.load(str(model))
    name_nodes(proto)
    ov_model = ov.Core().read_model(str(model)) if reader == "read" else ov.convert_model(str(model))
    input_name = ov_model.inputs[0].get_any_name()
    dataset = nncf.Dataset(list(calib.tensors), lambda t: {input_name: t[None]})
    nncf.set_log_level(logging.WARNING)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        quantized = nncf.quantize(
            ov_model,
            dataset,
            preset=getattr(nncf.QuantizationPreset, preset),
            subset_size=subset,
            ignored_scope=scope(kind, proto),
        )
    log(f"{out.name}: nncf.quantize {time.perf_counter() - started:.1f} s")
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out))
    return out


def fake_quantize(xml: Path) -> int:
    import openvino as ov

    return sum(op.get_type_name() == "FakeQuantize" for op in ov.Core().read_model(str(xml)).get_ops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--skip-map", action="store_true", help="latency only")
    parser.add_argument("--skip-timing", action="store_true", help="FakeQuantize counts and mAP only")
    parser.add_argument("--only", default="", help="comma-separated variant labels to time (default: all)")
    args = parser.parse_args()
    case = load_manifest(FIXTURES / "manifest.toml").cases[0]
    pipe = CasePipeline(case, "cpu")
    hw, info = pipe.hw_nc[0], cpu_info()
    print(
        f"CPU {info['brand']} ({os.cpu_count()} logical cores), INT8 flags {', '.join(info['flags']) or 'none'}; "
        f"onnxruntime {compat.ORT_VERSION}; {peer.versions()}; load average {os.getloadavg()} at the start\n"
    )
    calib = load_calibration(case.calib, hw, progress=False)
    n = len(calib.tensors)
    specs = [
        ("read", "head", "MIXED", n),
        ("convert", "head", "MIXED", n),
        ("convert", "head-math", "MIXED", n),
        ("convert", "patterns", "MIXED", n),
        ("convert", "head", "PERFORMANCE", n),
        ("convert", "head", "MIXED", n // 2),
    ]
    models = {
        f"NNCF {r}_model, {k}, {p}, {s} img": make(case.model, calib, pipe.cache_dir, k, p, s, r)
        for r, k, p, s in specs
    }
    int8 = Path(pipe.quantized(DEFAULT).output)
    runners: dict[tuple[str, int], object] = {}
    labels = ["quantkit INT8 (onnxruntime CPU EP)"] + list(models)
    for t in THREADS:
        runners[(labels[0], t)] = Runner(int8, "cpu", t)
        for label, xml in models.items():
            runners[(label, t)] = peer.OVRunner(xml, t)
    # the LATENCY hint on the head-finder MIXED models
    hinted = [lab for lab in models if lab.endswith(f"head, MIXED, {n} img")]
    for label in hinted:
        name = f"{label} + LATENCY hint"
        labels.append(name)
        for t in THREADS:
            runners[(name, t)] = _HintRunner(models[label], t)
    if args.only:
        keep = [s.strip() for s in args.only.split(",")]
        labels = [lab for lab in labels if lab == labels[0] or any(k in lab for k in keep)]

    rows = {lab: {"variant": lab} for lab in labels}
    for lab in labels:
        base = lab.replace(" + LATENCY hint", "")
        rows[lab]["FakeQuantize"] = fake_quantize(models[base]) if base in models else ""
    if not args.skip_map:
        fp32 = map50_95(pipe, Runner(case.model, "cpu", 2))
        maps = {}
        for lab in labels:
            base = lab.replace(" + LATENCY hint", "")
            if base not in maps:
                log(f"mAP of {base}")
                maps[base] = map50_95(pipe, runners[(base, 2)])
            rows[lab]["mAP50-95"] = round(maps[base], 4)
            rows[lab]["drop pt"] = round(100 * (fp32 - maps[base]), 2)
        print(f"FP32 mAP50-95 {fp32:.4f}\n")
    if args.skip_timing:
        print(markdown_table(list(rows.values())))
        return
    load = os.getloadavg()
    blocks = time_blocks(runners, labels, hw, args.rounds, args.runs)
    ref = labels[1]
    for lab in labels:
        for t in THREADS:
            rows[lab][f"ms @{t}t"] = round(statistics.median(blocks[(lab, t)]), 3)
        for t in THREADS:
            rows[lab][f"x ref @{t}t"] = round(
                statistics.median([a / b for a, b in zip(blocks[(lab, t)], blocks[(ref, t)])]), 3
            )
    spread = {t: max(max(b) / min(b) for (_, tt), b in blocks.items() if tt == t) for t in THREADS}
    print(
        f"{args.rounds} rounds, {args.runs} runs a block; ref = {ref}; load average {load} before timing, "
        f"{os.getloadavg()} after; widest block spread {spread}\n"
    )
    print(markdown_table(list(rows.values())))


class _HintRunner(peer.OVRunner):
    """OVRunner compiled with PERFORMANCE_HINT=LATENCY beside INFERENCE_NUM_THREADS."""

    def __init__(self, model_path, threads):
        import openvino as ov

        self.model_path, self.ep, self.threads, self.batch = Path(model_path), peer.EP, threads, 1
        self.compiled = ov.Core().compile_model(
            str(model_path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        )
        self.request = self.compiled.create_infer_request()


if __name__ == "__main__":
    main()
