"""What calibration loses with fewer images: how much of a user's folder `check` can hold out for validation.

    PYTHONPATH=. python benchmarks/holdout_share.py [--counts 25 50 75 100]

`quantkit check MODEL --calib photos/` without other validation images calibrates on part of the folder
and validates on the rest. For the YOLOv8n fixture (MinMax ranges) and the YOLO26n one-to-many fixture
(99.999th-percentile ranges), quantizes with each count of calibration images drawn from
fixtures/data/calib/images (seeded) and measures the annotated mAP50-95 drop with its CI95, the agreement
mAP and parity on the 200 val images: if fewer images lose nothing measurable, a larger held-out share buys
evidence for free. The CPU, its INT8 flags and onnxruntime are printed with the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from quantkit import compat, quantize
from quantkit.manifest import ConfigSpec, load_manifest
from quantkit.cpu import cpu_info
from quantkit.pipeline import CasePipeline

ROOT = Path(__file__).resolve().parent.parent
CASES = ("shapes-v8n-192x320", "shapes-26n-o2m-160x256")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[25, 50, 75, 100])
    args = parser.parse_args(argv)
    cases = {c.id: c for c in load_manifest(ROOT / "fixtures" / "manifest.toml").cases}
    cpu = cpu_info()
    print(
        f"CPU {cpu['brand']} [{', '.join(cpu['flags']) or 'no INT8 dot-product flags'}], CPU EP, onnxruntime "
        f"{compat.ORT_VERSION}, {time.strftime('%Y-%m-%d')}; quantkit's default preset, 200 val images"
    )
    print("| model (ranges) | calibration images | mAP drop pt [CI95] | agreement mAP [CI95] | recall / precision |")
    print("|---|---|---|---|---|")
    spec = ConfigSpec("static-qdq", "default")
    with tempfile.TemporaryDirectory() as tmp:
        for case_id in CASES:
            case = cases[case_id]
            for count in args.counts:
                out = Path(tmp) / f"{case_id}-{count}.onnx"
                q = quantize(case.model, out, calib=case.calib, calib_count=count, progress=False, range_cache=False)
                pipe = CasePipeline(case, progress=False, model_paths=lambda s, out=out: out if s else case.model)
                drop = pipe.map_bootstrap(spec)
                point = 100 * (pipe.map(None)["map50_95"] - pipe.map(spec)["map50_95"])
                a, p = pipe.agreement(spec), pipe.parity(spec)
                print(
                    f"| {case_id} ({q.config['calibrate_method']}) | {count} | {point:.2f} "
                    f"[{drop['ci95'][0]:.2f}, {drop['ci95'][1]:.2f}] | {a['map50_95']:.4f} "
                    f"[{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] | {p['recall']:.3f} / {p['precision']:.3f} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
