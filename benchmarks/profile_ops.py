"""Where the time goes: onnxruntime's per-node profile, summed by op type, FP32 beside INT8.

    python benchmarks/profile_ops.py fixtures/models/shapes-v8n-192x320.onnx int8.onnx [--threads 1] [--runs 50]

Prints one Markdown table per model: op type, total ms per inference, share of node time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import onnxruntime as ort

from quantkit.measure.bench import sample_input
from quantkit.measure.evaluate import model_hw
from quantkit.report import markdown_table


def op_profile(model: Path, threads: int, runs: int) -> list[dict]:
    """Per op type: mean microseconds per inference and share of all node time."""
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "profile")
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: sample_input(model_hw(model)[0])}
        for _ in range(5):
            sess.run(None, feed)
        for _ in range(runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"]
    total = sum(totals.values())
    per_run = runs + 5
    return [
        {"op": op, "ms / inference": round(us / per_run / 1e3, 3), "share %": round(100 * us / total, 1)}
        for op, us in sorted(totals.items(), key=lambda kv: -kv[1])
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    for model in args.models:
        print(f"\n### {model.name} ({args.threads} thread(s))\n")
        print(markdown_table(op_profile(model, args.threads, args.runs)[:8]))


if __name__ == "__main__":
    main()
