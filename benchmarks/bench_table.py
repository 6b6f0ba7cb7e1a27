"""The thread/stream table of benchmarks/README.md: `quantkit bench`'s grid on the fixture FP32 and its
INT8 (`default` preset), repeated, with the spread across repeats, the cores other processes took
during each window (a shared machine) and the machine it ran on.

    python benchmarks/bench_table.py [--int8 INT8.onnx] [--threads 1,2] [--streams 1,2] [--seconds 2] [--repeat 3]

Without --int8 the fixture is quantized into a temporary folder first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from quantkit import quantize
from quantkit.measure.evaluate import model_hw
from quantkit.report import markdown_table
from quantkit.measure.throughput import cores, default_counts, machine, measure, parse_counts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FP32 = FIXTURES / "models" / "shapes-v8n-192x320.onnx"


def _busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


QUIET = 0.25  # other processes' cores below which a window counts as quiet


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def _measure(model: str, hw: tuple[int, int], threads: int, streams: int, seconds: float) -> dict:
    """quantkit.measure.throughput.measure on the cpu EP, plus ``others``: the cores other processes used meanwhile."""
    busy, own, wall = _busy_seconds(), sum(os.times()[:2]), time.perf_counter()
    row = measure(model, hw, "cpu", threads, streams, seconds)
    if busy is not None:
        row["others"] = max(0.0, (_busy_seconds() - busy - (sum(os.times()[:2]) - own)) / (time.perf_counter() - wall))
    return row


def _ratio_line(name: str, pairs: list[tuple[dict, dict]], n: int) -> str:
    ratios = [two["fps"] / one["fps"] for one, two in pairs]
    quiet = [two["fps"] / one["fps"] for one, two in pairs if max(one.get("others", 9), two.get("others", 9)) < QUIET]
    line = (
        f"- {name}: {n} single-thread streams give {statistics.median(ratios):.2f}x the images/s of one "
        f"(range {_spread(ratios)} over {len(ratios)} repeats)"
    )
    if quiet:
        line += (
            f"; {statistics.median(quiet):.2f}x (range {_spread(quiet)}) over the {len(quiet)} repeats where other "
            f"processes used < {QUIET} cores in both windows"
        )
    return line


def table(int8: Path, threads: list[int], streams: list[int], seconds: float, repeat: int) -> str:
    models = {str(FP32): "FP32", str(int8): "INT8 static-qdq"}
    hw = model_hw(FP32)[0]
    runs = [
        {(m, t, s): _measure(m, hw, t, s, seconds) for m in models for t in threads for s in streams}
        for _ in range(repeat)
    ]
    rows = []
    for key in runs[0]:
        fps, ms = [run[key]["fps"] for run in runs], [run[key]["latency_ms"] for run in runs]
        others = [run[key]["others"] for run in runs if "others" in run[key]]
        rows.append(
            {
                "model": models[key[0]],
                "threads": key[1],
                "streams": key[2],
                "latency ms (median)": statistics.median(ms),
                "images/s (median)": statistics.median(fps),
                "images/s (min-max)": _spread(fps),
                "other processes' cores (min-max)": _spread(others) if others else "",
                "note": "oversubscribed" if key[1] * key[2] > cores() else "",
            }
        )
    lines = [markdown_table(rows)]
    if 1 in threads and 1 in streams and max(streams) > 1:
        n = max(streams)
        lines += [
            _ratio_line(name, [(run[(path, 1, 1)], run[(path, 1, n)]) for run in runs], n)
            for path, name in models.items()
        ]
    info = machine()
    lines.append(
        f"\nCPU {info['cpu']['brand']} ({info['cores']} cores), INT8 flags {', '.join(info['cpu']['flags'])}; "
        f"onnxruntime {info['onnxruntime']}; cpu EP; {seconds} s per setting, {repeat} repeats, settings in turn"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--int8", type=Path, help="an INT8 model of the fixture (default: quantize it now)")
    parser.add_argument("--threads", type=parse_counts, default=default_counts())
    parser.add_argument("--streams", type=parse_counts, default=default_counts())
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        int8 = args.int8
        if int8 is None:
            int8 = Path(
                quantize(
                    FP32,
                    Path(tmp) / "int8.onnx",
                    preset="default",
                    calib=FIXTURES / "data" / "calib" / "images",
                    progress=False,
                ).output
            )
        print(table(int8, args.threads, args.streams, args.seconds, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
