"""Where the segmentation and pose defaults come from: box / mask / keypoint mAP, parity and latency
of the task fixtures' INT8 recipes, and (``--protos``) which part of the prototype branch stays float.

    PYTHONPATH=. python benchmarks/tasks.py [--protos] [--images N] [--threads 1 2]
    PYTHONPATH=. python benchmarks/tasks.py --protos --latency-only --model yolo11n-seg.onnx

For the segmentation and pose fixtures (the cases of fixtures/manifest.toml that declare a task) and the recipes
static-qdq (quantkit's default) and naive (onnxruntime's defaults), prints FP32 and INT8 mAP50-95 of
boxes and of masks or keypoints with the drop's paired CI95, the parity figures the gates read
(recall, mask IoU or keypoint distance of matched detections), and INT8 / FP32 latency (interleaved
medians, 60 rounds, per thread count). ``--protos`` quantizes the segmentation fixture once per
``segment.PROTOS_CHOICES`` policy (each in its own cache folder) and prints the same figures per
policy: what PROTOS_FLOAT rests on. ``--latency-only --model PATH`` times the policies on any segmentation
export (no annotations, no accuracy: an untrained ``YOLO("yolo11n-seg.yaml").export(format="onnx",
imgsz=(160, 256), opset=17, simplify=True)`` serves, since latency does not depend on the weights'
values). The CPU, its INT8 flags and onnxruntime are printed with them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import onnx

from quantkit import compat
from quantkit.heads import segment
from quantkit.manifest import ConfigSpec, load_manifest, single_case
from quantkit.measure.bench import latency_ratio
from quantkit.cpu import cpu_info
from quantkit.model import float_convs
from quantkit.pipeline import CasePipeline

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "fixtures" / "data"
MODELS = {
    case.task: case.model
    for case in load_manifest(ROOT / "fixtures" / "manifest.toml").cases
    if case.task in ("segment", "pose")
}
RECIPES = (ConfigSpec("static-qdq", "default"), ConfigSpec("naive", "naive"))


def subset(ann: Path, images: int | None, out: Path) -> Path:
    """The first ``images`` images of ``ann`` with their annotations (all of them without a count)."""
    if not images:
        return ann
    data = json.loads(ann.read_text())
    data["images"] = data["images"][:images]
    keep = {i["id"] for i in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    out.write_text(json.dumps(data))
    return out


def row(pipe: CasePipeline, spec: ConfigSpec, threads: list[int], label: str) -> dict:
    fp32, int8 = pipe.map(None), pipe.map(spec)
    iou_type = pipe.task.scored_on[1]
    kind = pipe.task.label(iou_type)
    box, task = pipe.map_bootstrap(spec), pipe.map_bootstrap(spec, iou_type)
    par = pipe.parity(spec)
    q = pipe.quantized(spec)
    out = {
        "recipe": label,
        "float nodes": len(q.float_nodes),
        "float Convs": len(float_convs(onnx.load(q.output))),
        "box mAP FP32 / INT8": f"{fp32['map50_95']:.4f} / {int8['map50_95']:.4f}",
        "box drop pt [CI95]": f"{100 * (fp32['map50_95'] - int8['map50_95']):.2f} [{box['ci95'][0]:.2f}, "
        f"{box['ci95'][1]:.2f}]",
        f"{kind} mAP FP32 / INT8": f"{fp32[kind]['map50_95']:.4f} / {int8[kind]['map50_95']:.4f}",
        f"{kind} drop pt [CI95]": f"{100 * (fp32[kind]['map50_95'] - int8[kind]['map50_95']):.2f} "
        f"[{task['ci95'][0]:.2f}, {task['ci95'][1]:.2f}]",
        "recall / precision": f"{par['recall'] or 0:.3f} / {par['precision'] or 0:.3f}",
        "INT8 detections kept": f"{int8['detections'] / max(fp32['detections'], 1):.3f}",
    }
    if "mask_iou_mean" in par:
        out["mask IoU mean"] = f"{par['mask_iou_mean']:.4f}" if par["mask_iou_mean"] is not None else "-"
    if "keypoint_distance_mean" in par:
        out["kpt distance mean"] = (
            f"{par['keypoint_distance_mean']:.4f}" if par["keypoint_distance_mean"] is not None else "-"
        )
    for t in threads:
        lat = latency_ratio(pipe.fp32_reference(spec), pipe.model_path(spec), pipe.hw_nc[0], "cpu", t, rounds=60)
        out[f"INT8/FP32 {t}t (ms)"] = f"{lat['ratio']:.3f} ({lat['int8_ms']:.2f}/{lat['fp32_ms']:.2f})"
    return out


def latency_row(pipe: CasePipeline, spec: ConfigSpec, threads: list[int], label: str, repeats: int = 2) -> dict:
    """Float nodes and Convs of the recipe, and INT8 / FP32 interleaved (60 rounds) ``repeats`` times per thread
    count."""
    q = pipe.quantized(spec)
    out = {"recipe": label, "float nodes": len(q.float_nodes), "float Convs": len(float_convs(onnx.load(q.output)))}
    for t in threads:
        runs = [
            latency_ratio(pipe.fp32_reference(spec), pipe.model_path(spec), pipe.hw_nc[0], "cpu", t, rounds=60)
            for _ in range(repeats)
        ]
        out[f"INT8/FP32 {t}t"] = " / ".join(f"{r['ratio']:.3f}" for r in runs)
        out[f"INT8 ms {t}t"] = " / ".join(f"{r['int8_ms']:.2f}" for r in runs)
    return out


def table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protos", action="store_true", help="sweep the segmentation fixture's prototype policies")
    parser.add_argument("--images", type=int, help="only the first N val images (default: all 200)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(MODELS), choices=("segment", "pose"))
    parser.add_argument("--model", type=Path, help="the segmentation model (default: the fixture)")
    parser.add_argument("--latency-only", action="store_true", help="time the recipes only (no annotations used)")
    args = parser.parse_args(argv)
    if args.model:
        args.tasks = ["segment"]
    print(f"CPU {cpu_info()['brand']} [{', '.join(cpu_info()['flags'])}], CPU EP, onnxruntime {compat.ORT_VERSION}")
    with tempfile.TemporaryDirectory() as tmp:
        ann = subset(DATA / "val" / "annotations.json", args.images, Path(tmp) / "ann.json")
        for task in args.tasks:
            model = args.model or MODELS.get(task)
            if model is None:
                parser.error(f'fixtures/manifest.toml has no case with task = "{task}": pass --model PATH')
            case = single_case(
                model, DATA / "calib" / "images", *(() if args.latency_only else (DATA / "val" / "images", ann))
            ).cases[0]
            measure = latency_row if args.latency_only else row
            rows = []
            if args.protos and task == "segment":
                default = segment.FAMILY.protos
                for policy in segment.PROTOS_CHOICES:
                    segment.FAMILY.protos = policy  # a cache folder per policy: the cache key does not see it
                    pipe = CasePipeline(case, cache_dir=Path(tmp) / policy, progress=False)
                    rows.append(measure(pipe, RECIPES[0], args.threads, f"static-qdq, protos float: {policy}"))
                segment.FAMILY.protos = default
            else:
                pipe = CasePipeline(case, progress=False)
                rows = [measure(pipe, spec, args.threads, spec.id) for spec in RECIPES]
            where = "" if args.latency_only else f" ({len(pipe.images.ids)} val images)"
            print(f"\n{model.name}{where}\n" + table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
