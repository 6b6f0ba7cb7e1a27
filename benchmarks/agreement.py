"""Where the agreement gate's defaults come from: agreement mAP with FP32 beside the annotated mAP drop.

    PYTHONPATH=. python benchmarks/agreement.py [--holdout]

For the unpruned and pruned fixtures and three recipes (quantkit's default, per-tensor weights, and
onnxruntime's defaults), prints the agreement mAP50-95 (INT8 against FP32's detections at conf 0.25)
with its bootstrap CI95 beside the annotated mAP50-95 drop, on the 200 val images; ``--holdout`` adds
the CI95 half-width on the 25 images `check` holds out of the 100-image calibration folder (what the
evidence minimums rest on). The CPU, its INT8 flags and onnxruntime are printed with the figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quantkit import compat
from quantkit.cpu import cpu_info
from quantkit.manifest import ConfigSpec, single_case
from quantkit.pipeline import CasePipeline

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "fixtures" / "data"
RECIPES = (
    ConfigSpec("static-qdq", "default"),
    ConfigSpec("per-tensor", "default", {"per_channel": False, "target_cpu": "vnni"}),
    ConfigSpec("naive", "naive"),
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", action="store_true", help="also the CI95 half-width on 25 held-out images")
    args = parser.parse_args(argv)
    print(f"CPU {cpu_info()['brand']} [{', '.join(cpu_info()['flags'])}], CPU EP, onnxruntime {compat.ORT_VERSION}")
    print("| model | recipe | agreement mAP50-95 | CI95 | FP32 detections | annotated mAP drop pt |")
    print("|---|---|---|---|---|---|")
    for name in ("shapes-v8n-192x320", "shapes-v8n-pruned-192x320"):
        case = single_case(
            ROOT / "fixtures" / "models" / f"{name}.onnx",
            DATA / "calib" / "images",
            DATA / "val" / "images",
            DATA / "val" / "annotations.json",
        ).cases[0]
        pipe = CasePipeline(case, progress=False)
        for spec in RECIPES:
            a = pipe.agreement(spec)
            drop = 100 * (pipe.map(None)["map50_95"] - pipe.map(spec)["map50_95"])
            ci = "[{:.3f}, {:.3f}]".format(*a["ci95"])
            print(f"| {name} | {spec.id} | {a['map50_95']:.4f} | {ci} | {a['fp32_detections']} | {drop:.2f} |")
    if args.holdout:
        case = single_case(ROOT / "fixtures" / "models" / "shapes-v8n-192x320.onnx", DATA / "calib" / "images").cases[0]
        pipe = CasePipeline(case, progress=False)
        a = pipe.agreement(RECIPES[0])
        print(
            f"held out of fixtures/data/calib: {a['images']} images, {a['fp32_detections']} FP32 detections, "
            f"static-qdq agreement {a['map50_95']:.4f}, CI95 half-width {a['halfwidth']:.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
