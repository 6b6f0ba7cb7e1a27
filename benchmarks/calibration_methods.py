"""Where a head family's calibration choice (``HeadFamily.calibration``) comes from: box mAP with the drop's
paired CI95, detection parity, agreement mAP and score drift of one model per activation calibration method.

    PYTHONPATH=. python benchmarks/calibration_methods.py                      # the YOLO26n fixtures
    PYTHONPATH=. python benchmarks/calibration_methods.py --models fixtures/models/shapes-v8n-192x320.onnx
    PYTHONPATH=. python benchmarks/calibration_methods.py --models fixtures/models/shapes-v8n-obb-160x256.onnx \
        --ann fixtures/data/val/annotations-obb.json          # oriented boxes: rotated IoU

For each model (default: the YOLO26n one-to-many and end-to-end fixtures) and each recipe (quantkit's default
preset with MinMax, with the 99.999th percentile, and as it stands: ``calibrate_method = "auto"``, the choice of
that model's head family; onnxruntime's defaults for contrast), on the fixture's calibration split and all 200
annotated val images (``--images N``: the first N): FP32 and INT8 mAP50-95, the drop with its CI95, recall of
FP32's detections and precision of INT8's at conf 0.25, agreement mAP and the mean score drift of matched
detections — what the gates read. The CPU, its INT8 flags and onnxruntime are printed with them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from quantkit import compat
from quantkit.manifest import ConfigSpec, single_case
from quantkit.cpu import cpu_info
from quantkit.pipeline import CasePipeline

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "fixtures" / "data"
MODELS = [ROOT / "fixtures" / "models" / f"shapes-26n-{kind}-160x256.onnx" for kind in ("o2m", "e2e")]
RECIPES = (
    ConfigSpec("minmax", "default", {"calibrate_method": "minmax"}),
    ConfigSpec("percentile", "default", {"calibrate_method": "percentile"}),
    ConfigSpec("default", "default"),
    ConfigSpec("naive", "naive"),
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import subset, table  # noqa: E402


def row(pipe: CasePipeline, spec: ConfigSpec) -> dict:
    fp32, int8, boot, par = pipe.map(None), pipe.map(spec), pipe.map_bootstrap(spec), pipe.parity(spec)
    agreement = pipe.agreement(spec)
    return {
        "recipe": spec.id,
        "calibration": pipe.quantized(spec).config["calibrate_method"],
        "box mAP FP32 / INT8": f"{fp32['map50_95']:.4f} / {int8['map50_95']:.4f}",
        "drop pt [CI95]": f"{100 * (fp32['map50_95'] - int8['map50_95']):.2f} [{boot['ci95'][0]:.2f}, "
        f"{boot['ci95'][1]:.2f}]",
        "FP32 detections": par["fp32_count"],
        "recall / precision": f"{par['recall'] or 0:.3f} / {par['precision'] or 0:.3f}",
        "agreement mAP": f"{agreement['map50_95']:.3f}",
        "score drift mean": f"{par['score_drift_mean']:.4f}" if par["score_drift_mean"] is not None else "-",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, nargs="+", default=MODELS)
    parser.add_argument("--images", type=int, help="only the first N val images (default: all 200)")
    parser.add_argument("--ann", type=Path, default=DATA / "val" / "annotations.json", help="the val annotations")
    args = parser.parse_args(argv)
    print(f"CPU {cpu_info()['brand']} [{', '.join(cpu_info()['flags'])}], CPU EP, onnxruntime {compat.ORT_VERSION}")
    with tempfile.TemporaryDirectory() as tmp:
        ann = subset(args.ann, args.images, Path(tmp) / "ann.json")
        for model in args.models:
            case = single_case(model, DATA / "calib" / "images", DATA / "val" / "images", ann).cases[0]
            pipe = CasePipeline(case, cache_dir=Path(tmp) / "cache", progress=False)
            rows = [row(pipe, spec) for spec in RECIPES]
            print(f"\n{model.name} ({len(pipe.images.ids)} val images)\n" + table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
