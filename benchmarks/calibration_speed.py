"""Static quantization wall time, side by side in fresh processes: the seed's own path against quantkit.

    python benchmarks/calibration_speed.py [--rounds 3]

- seed: onnxruntime's ``quant_pre_process`` then ``quantize_static`` with a plain letterbox reader
  over the same 100 calibration images (what the seed report ran, with the head left to onnxruntime);
- quantkit cold: ``quantkit quantize --calib`` with an empty range cache (batched calibration);
- quantkit warm: the same with ``--format qoperator`` after it, reusing the cached ranges.

The three alternate ``--rounds`` times (a loaded machine moves each run by seconds); the best of
each is reported with the CPU, its INT8 flags and onnxruntime. ``--stages`` then times one more cold
run of each with timers around onnxruntime's stages (no profiler) and prints where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from quantkit import compat
from quantkit.cpu import cpu_info

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "fixtures" / "models" / "shapes-v8n-192x320.onnx"
CALIB = ROOT / "fixtures" / "data" / "calib" / "images"

SEED = """
import sys, random, numpy as np, cv2
from pathlib import Path
from onnxruntime.quantization import quantize_static, QuantFormat, QuantType, CalibrationDataReader
from onnxruntime.quantization.shape_inference import quant_pre_process

def letterbox(img, h=192, w=320):
    s = min(h / img.shape[0], w / img.shape[1])
    nh, nw = round(img.shape[0] * s), round(img.shape[1] * s)
    top, left = (h - nh) // 2, (w - nw) // 2
    out = cv2.copyMakeBorder(cv2.resize(img, (nw, nh)), top, h - nh - top, left, w - nw - left,
                             cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return np.ascontiguousarray(out[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0

class Reader(CalibrationDataReader):
    def __init__(self, files):
        self.files = iter(files)
    def get_next(self):
        path = next(self.files, None)
        return None if path is None else {"images": letterbox(cv2.imread(str(path)))}

model, calib, out = sys.argv[1:4]
files = sorted(random.Random(0).sample(sorted(Path(calib).glob("*.jpg")), 100))
quant_pre_process(model, out + ".pre.onnx")
quantize_static(out + ".pre.onnx", out, Reader(files), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
"""


def _timed(cmd: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=tempfile.gettempdir())
    return time.perf_counter() - start


# Stages, each the wall time spent in one function (onnxruntime's, or quantkit's where named)
STAGED = """
import atexit, importlib, json, os, runpy, sys, time
import onnxruntime.quantization.calibrate as calibrate
import onnxruntime.quantization.qdq_quantizer as qdq
import onnxruntime.quantization.shape_inference as shape_inference
ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")  # the package's `quantize` is a function
seconds = {}
def timed(owner, attr, stage):
    real = getattr(owner, attr)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
    setattr(owner, attr, wrapper)
timed(shape_inference, "quant_pre_process", "quant_pre_process")
timed(ort_quantize, "create_calibrator", "calibrator setup (augmented graph, session; quantkit's batch-free copy)")
timed(calibrate.MinMaxCalibrater, "collect_data", "calibration inference + ranges (the seed reads its images here)")
timed(qdq.QDQQuantizer, "quantize_model", "onnxruntime quantize_model (Python)")
args = sys.argv[1:]
if args[0] == "-m":
    quantizer = importlib.import_module("quantkit.quantization.quantizer")
    timed(quantizer, "load_calibration", "quantkit: read + letterbox 100 images")
atexit.register(lambda: open(os.environ["STAGES_OUT"], "w").write(json.dumps(seconds)))
sys.argv = args[1:] if args[0] == "-m" else args
if sys.argv[0] == "quantkit":
    runpy.run_module(sys.argv[0], run_name="__main__")
else:
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def stage_seconds(command: list[str], env: dict | None = None) -> dict[str, float]:
    """Wall seconds of ``command`` (a script path or ``-m quantkit ...``) in a fresh process, split into
    the functions STAGED times; the rest is imports, process start, loading/saving and checks."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stages.json"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", STAGED, *command],
            check=True,
            capture_output=True,
            env={**(env or os.environ), "STAGES_OUT": str(out)},
            cwd=tmp,
        )
        total = time.perf_counter() - start
        stages = json.loads(out.read_text())
    return {**stages, "other (imports, process start, load/save, checks)": total - sum(stages.values()), "total": total}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", action="store_true", help="also profile one cold run of each and split it by stage")
    args = parser.parse_args(argv)
    best = {"seed": [], "quantkit cold": [], "quantkit warm (cached ranges)": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "QUANTKIT_CACHE": tmp}
            best["seed"].append(_timed([sys.executable, "-c", SEED, str(MODEL), str(CALIB), f"{tmp}/seed.onnx"]))
            quantize = [sys.executable, "-m", "quantkit", "quantize", str(MODEL), "--calib", str(CALIB), "--json"]
            best["quantkit cold"].append(_timed(quantize + ["-o", f"{tmp}/qdq.onnx"], env))
            best["quantkit warm (cached ranges)"].append(
                _timed(quantize + ["-o", f"{tmp}/qop.onnx", "--format", "qoperator"], env)
            )
    info = cpu_info()
    seed = min(best["seed"])
    print(
        f"static quantization of the fixture, 100 calibration images, fresh processes, best of {args.rounds}; "
        f"CPU {info['brand']} [{', '.join(info['flags'])}], {os.cpu_count()} cores; onnxruntime {compat.ORT_VERSION}\n"
    )
    print("| path | best s | all runs s | vs seed |\n|---|---|---|---|")
    for name, runs in best.items():
        print(f"| {name} | {min(runs):.2f} | {', '.join(f'{r:.2f}' for r in runs)} | {min(runs) / seed:.2f}x |")
    if args.stages:
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "seed.py"
            script.write_text(SEED)
            seed_stages = stage_seconds([str(script), str(MODEL), str(CALIB), f"{tmp}/seed.onnx"])
            ours = stage_seconds(
                ["-m", "quantkit", "quantize", str(MODEL), "--calib", str(CALIB), "-o", f"{tmp}/qdq.onnx"],
                {**os.environ, "QUANTKIT_CACHE": tmp},
            )
        print("\nwhere a cold run's time goes (one more run of each, seconds):\n")
        print("| stage | seed | quantkit cold |\n|---|---|---|")
        for name in dict.fromkeys([*ours, *seed_stages]):
            print(f"| {name} | {seed_stages.get(name, 0.0):.2f} | {ours.get(name, 0.0):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
