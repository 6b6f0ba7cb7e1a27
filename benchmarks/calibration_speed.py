"""Static quantization wall time, side by side in fresh processes: the seed's own path against quantkit.

    python benchmarks/calibration_speed.py [--rounds 3]

- seed: onnxruntime's ``quant_pre_process`` then ``quantize_static`` with a plain letterbox reader
  over the same 100 calibration images (what the seed report ran, with the head left to onnxruntime);
- quantkit cold: ``quantkit quantize --calib`` with an empty range cache (batched calibration);
- quantkit warm: the same with ``--format qoperator`` after it, reusing the cached ranges.

The three alternate ``--rounds`` times (a loaded machine moves each run by seconds); the best of
each is reported with the CPU, its INT8 flags and onnxruntime. ``--stages`` then profiles one more
cold run of each (cProfile, which inflates Python-heavy stages) and prints where its time goes.
"""

from __future__ import annotations

import argparse
import os
import pstats
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


# (stage, file suffix, function) whose cumulative time the profile reports; the rest is "other"
STAGES = (
    ("read + letterbox 100 images", "quantkit/calibration.py", "load_calibration"),
    ("read + letterbox 100 images", "seed.py", "get_next"),
    ("quant_pre_process", "quantization/shape_inference.py", "quant_pre_process"),
    ("calibrator: augment graph + session", "quantization/calibrate.py", "create_calibrator"),
    ("calibrator: inference + ranges", "quantization/calibrate.py", "collect_data"),
    ("onnxruntime quantize_model (Python)", "quantization/qdq_quantizer.py", "quantize_model"),
)


def stage_seconds(command: list[str], env: dict | None = None) -> dict[str, float]:
    """Wall seconds of ``command`` in a fresh process under cProfile, split into STAGES."""
    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp) / "run.prof"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), *command], check=True, capture_output=True,
                       env=env, cwd=tmp)
        total = time.perf_counter() - start
        stats = pstats.Stats(str(prof)).stats  # {(file, line, function): (calls, primitive, tottime, cumtime, callers)}
    out = dict.fromkeys([name for name, _, _ in STAGES], 0.0)
    for (path, _, function), (_, _, _, cumulative, _) in stats.items():
        for name, suffix, wanted in STAGES:
            if function == wanted and path.endswith(suffix):
                out[name] += cumulative
    out["other (imports, process start, load/save, checks)"] = total - sum(out.values())
    out["total"] = total
    return out


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
            best["quantkit warm (cached ranges)"].append(_timed(quantize + ["-o", f"{tmp}/qop.onnx", "--format", "qoperator"], env))
    info = cpu_info()
    seed = min(best["seed"])
    print(f"static quantization of the fixture, 100 calibration images, fresh processes, best of {args.rounds}; "
          f"CPU {info['brand']} [{', '.join(info['flags'])}], {os.cpu_count()} cores; onnxruntime {compat.ORT_VERSION}\n")
    print("| path | best s | all runs s | vs seed |\n|---|---|---|---|")
    for name, runs in best.items():
        print(f"| {name} | {min(runs):.2f} | {', '.join(f'{r:.2f}' for r in runs)} | {min(runs) / seed:.2f}x |")
    if args.stages:
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "seed.py"
            script.write_text(SEED)
            seed_stages = stage_seconds([str(script), str(MODEL), str(CALIB), f"{tmp}/seed.onnx"])
            ours = stage_seconds(["-m", "quantkit", "quantize", str(MODEL), "--calib", str(CALIB), "-o", f"{tmp}/qdq.onnx"],
                                 {**os.environ, "QUANTKIT_CACHE": tmp})
        print("\nwhere a cold run's time goes (one profiled run each, seconds):\n")
        print("| stage | seed | quantkit cold |\n|---|---|---|")
        for name in seed_stages:
            print(f"| {name} | {seed_stages[name]:.2f} | {ours[name]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
