"""False-alarm rate of the latency gate on the clean fixture: run it N times, count failures.

    python benchmarks/false_alarms.py --runs 20 [--manifest fixtures/manifest.toml] [--threads 1,2]

Each run times every (case, config) of the manifest at each thread count exactly as the suite's
``test_latency.py`` does (``CasePipeline.latency_gate``: interleaved medians, a confirming second
run over the threshold). Prints one line per gate with its failures and ratio spread, and the CPU,
its INT8 flags and onnxruntime, so the figure can be quoted with what it ran on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from quantkit import compat
from quantkit.cpu import cpu_info
from quantkit.manifest import load_manifest
from quantkit.pipeline import CasePipeline

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--manifest", type=Path, default=ROOT / "fixtures" / "manifest.toml")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    threads = [int(t) for t in args.threads.split(",")]
    pipes = {case.id: CasePipeline(case) for case in manifest.cases}
    ratios: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    for run in range(args.runs):
        for case, spec in manifest.pairs():
            for t in threads:
                gate_id = f"{case.id}/{spec.id}/cpu/{t}t"
                result, measured = pipes[case.id].latency_gate(spec, t, manifest.thresholds_for(case, spec), gate_id)
                ratios.setdefault(gate_id, []).append(measured["ratio"])
                failures[gate_id] = failures.get(gate_id, 0) + (not result.passed)
                if not result.passed:
                    print(f"run {run + 1}: {result.message()}", file=sys.stderr)
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    info = cpu_info()
    print(
        f"latency gate false alarms, {args.runs} runs; CPU {info['brand']} [{', '.join(info['flags'])}]; "
        f"onnxruntime {compat.ORT_VERSION}\n"
    )
    print("| gate | failed | ratio min | median | max |\n|---|---|---|---|---|")
    for gate_id, values in ratios.items():
        print(
            f"| {gate_id} | {failures[gate_id]}/{args.runs} | {min(values):.3f} | {statistics.median(values):.3f} | "
            f"{max(values):.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
