"""Peak memory and wall time of static quantization against the number of calibration images and the input size.

    python benchmarks/calibration_memory.py [--counts 25 100 300] [--calib DIR]

Each run is ``quantkit quantize`` in a fresh child process with an empty range cache (so calibration really
runs); its peak resident set size comes from ``os.wait4`` (the child's own rusage, ru_maxrss) and its wall time
from a clock around it. Two models: the fixture detector at its 192x320, and the same architecture with
dynamic H/W (``shapes-v8n-dynamic.onnx``) at 640x640, YOLOv8n's size. Without ``--calib`` the images are the
fixture dataset's training split, generated into a temporary folder with as many images as the largest count
(``fixtures/make_dataset.py --splits train``); every count draws from that folder.

Run it against another checkout of quantkit (the code before a change, say) with
``PYTHONPATH=/path/to/checkout``: the child processes import quantkit as this process does.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import quantkit
from quantkit import compat
from quantkit.cpu import cpu_info

ROOT = Path(__file__).resolve().parent.parent
MODELS = {  # label -> (model, --imgsz or None for the model's own)
    "fixture 192x320": (ROOT / "fixtures" / "models" / "shapes-v8n-192x320.onnx", None),
    "YOLOv8n-size 640x640": (ROOT / "fixtures" / "models" / "shapes-v8n-dynamic.onnx", "640"),
}


def measure(model: Path, imgsz: str | None, calib: Path, count: int) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one cold ``quantkit quantize`` in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "quantkit", "quantize", str(model), "--calib", str(calib)]
        cmd += ["--calib-count", str(count), "-o", f"{tmp}/int8.onnx", "--json"]
        cmd += ["--imgsz", imgsz] if imgsz else []
        env = {**os.environ, "QUANTKIT_CACHE": tmp}
        start = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {child.stderr.read().decode()[-2000:]}")
        return usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KiB on Linux


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[25, 100, 300])
    parser.add_argument("--calib", type=Path, help="image folder (default: the generated training split)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        calib = args.calib
        if calib is None:
            make = [sys.executable, str(ROOT / "fixtures" / "make_dataset.py"), "--splits", "train"]
            subprocess.run([*make, "--out", tmp, "--count", str(max(args.counts))], check=True, capture_output=True)
            calib = Path(tmp) / "train" / "images"
        rows = []
        for label in args.models:
            model, imgsz = MODELS[label]
            for count in args.counts:
                peak, seconds = measure(model, imgsz, calib, count)
                rows.append((label, count, peak, seconds))
                print(f"{label}, {count} images: {peak:.0f} MB, {seconds:.1f} s", file=sys.stderr, flush=True)
    info = cpu_info()
    print(
        f"`quantkit quantize` (default preset, MinMax), cold range cache, one fresh process per row; quantkit from "
        f"{Path(quantkit.__file__).parent.parent}; CPU {info['brand']} [{', '.join(info['flags']) or 'no INT8 flags'}]"
        f", {os.cpu_count()} cores; onnxruntime {compat.ORT_VERSION}; {datetime.date.today().isoformat()}\n"
    )
    print("| model, input | images | peak RSS MB | seconds |\n|---|---|---|---|")
    for label, count, peak, seconds in rows:
        print(f"| {label} | {count} | {peak:.0f} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
