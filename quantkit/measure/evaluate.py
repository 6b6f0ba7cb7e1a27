"""Run a model over images and evaluate: COCO mAP against annotations, and FP32-vs-INT8 parity.

Images are decoded and letterboxed once per (folder, input size) and shared by every model that
is evaluated on them, so FP32 and INT8 see identical tensors.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import bootstrap, metrics
from .. import heads, tasks
from ..heads import boxes
from ..tasks import Detections
from ..errors import DatasetError
from ..model import inspect_model, load_model, resolve_imgsz
from ..files import write_text_atomic
from ..manifest import THRESHOLDS
from ..preprocess import Letterbox, letterbox_image, list_images, read_image, to_tensor
from ..progress import Progress
from .session import Runner

# Like `yolo val`: keep nearly every candidate, so the precision-recall curve is complete.
EVAL_CONF, EVAL_IOU, MAX_DET = 0.001, 0.7, 300
RAW_IMAGES = 16  # images whose raw outputs `compare` reports per channel group


@dataclass
class ImageSet:
    """Letterboxed images (uint8 HWC) keyed by image id, plus the files that could not be read and
    those whose decoded size disagrees with the annotations' width/height."""

    hw: tuple[int, int]
    ids: list[int]
    boxed: list[np.ndarray]
    letterboxes: list[Letterbox]
    skipped: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        items: list[tuple[int, Path]],
        hw: tuple[int, int],
        progress: bool = False,
        sizes: dict[int, tuple[int, int]] | None = None,
        fit=letterbox_image,
    ) -> "ImageSet":
        """Decode (EXIF orientation applied) and fit to the input (``fit``: the letterbox, a classifier's centre
        crop); unreadable images are skipped, counted, and left out of scoring. ``sizes`` (image id -> annotated
        (h, w)) counts images read at another size."""
        out = cls(hw, [], [], [])
        with Progress("reading images", len(items), "images", enabled=progress) as bar:
            for image_id, path in bar.iter(items):
                img = read_image(path)
                if img is None:
                    out.skipped.append(path.name)
                    continue
                if sizes and sizes.get(image_id) not in (None, img.shape[:2]):
                    out.mismatched.append(path.name)
                boxed, lb = fit(img, hw)
                out.ids.append(image_id)
                out.boxed.append(boxed)
                out.letterboxes.append(lb)
        return out


def annotated_sizes(coco) -> dict[int, tuple[int, int]]:
    """Image id -> (height, width) as the annotations state them (images without both are not checked)."""
    return {
        img["id"]: (int(img["height"]), int(img["width"]))
        for img in coco.dataset["images"]
        if img.get("height") and img.get("width")
    }


def coco_items(ann: str | Path, images_dir: str | Path):
    """(COCO, [(image_id, path)]) for every image of the annotations; missing files are an error."""
    coco = metrics.load_coco(ann)
    folder = Path(images_dir)
    if not folder.is_dir():
        raise DatasetError(f"images folder not found: {folder}: pass the folder holding the COCO images")
    items = [(img["id"], folder / img["file_name"]) for img in coco.dataset["images"]]
    missing = [p for _, p in items if not p.exists()]
    if missing:
        raise DatasetError(
            f"{len(missing)} of {len(items)} images named in {Path(ann).name} are missing from {folder} "
            f"(first: {missing[0].name}): point --images at the folder that holds them"
        )
    return coco, items


def folder_items(images_dir: str | Path) -> list[tuple[int, Path]]:
    """(index, path) of the images directly inside ``images_dir``, else of its subfolders (a folder per class)."""
    folder = Path(images_dir)
    if not folder.is_dir():
        raise DatasetError(f"images folder not found: {folder}: pass a folder of images")
    files = list_images(folder) or [f for sub in sorted(folder.iterdir()) if sub.is_dir() for f in list_images(sub)]
    if not files:
        raise DatasetError(f"no images in {folder}: pass a folder with .jpg/.png images (or a folder of such folders)")
    return list(enumerate(files))


def model_hw(model: str | Path, imgsz: tuple[int, ...] | None = None) -> tuple[tuple[int, int], int | None]:
    """(input H, W) and the number of classes (from metadata) of a model file."""
    info = inspect_model(load_model(model), model)
    return resolve_imgsz(info, imgsz, model), (len(info.names) or None)


def model_names(model: str | Path) -> dict[int, str]:
    """Class index -> name from the model's metadata ({} when it carries none)."""
    return inspect_model(load_model(model), model).names


@dataclass
class Predictions:
    """Detections of one model on an ImageSet, with where the time went and the head family that decoded them."""

    dets: dict[int, Detections]
    seconds_inference: float
    seconds_total: float
    family: heads.HeadFamily | None = None  # None: boxes only

    @property
    def task(self) -> tasks.Task:
        """What these predictions carry and are scored on: the family's task (boxes without one)."""
        return tasks.get(self.family.task if self.family is not None else None)

    @property
    def scored_on(self) -> tuple[str, ...]:
        """What these predictions are scored on, the primary first (``Task.scored_on``)."""
        return self.task.scored_on

    @property
    def overhead(self) -> float:
        """Time beyond the model's own inference, as a fraction of it (decode, NMS, tensor copies)."""
        return (self.seconds_total - self.seconds_inference) / max(self.seconds_inference, 1e-9)


def predict(
    runner: Runner,
    images: ImageSet,
    nc: int | None = None,
    conf: float = EVAL_CONF,
    progress: bool = False,
    iou: float = EVAL_IOU,
    nms: str = "best_class",
) -> Predictions:
    """Run ``runner`` on every image, ``runner.batch`` at a time, and decode its detections (boxes in
    original pixels; ``nms``: see heads/boxes.py); the head family is picked from the outputs' layout."""
    dets, infer = {}, 0.0
    start = time.perf_counter()
    items = list(zip(images.ids, images.boxed, images.letterboxes))
    batches = [items[i : i + runner.batch] for i in range(0, len(items), runner.batch)]
    family, meta = None, runner.session.get_modelmeta().custom_metadata_map
    with Progress(f"inference ({Path(runner.model_path).name})", len(items), "images", enabled=progress) as bar:
        for batch in batches:
            tensor = np.concatenate([to_tensor(boxed) for _, boxed, _ in batch])
            t0 = time.perf_counter()
            outs = runner.run_all(tensor)
            infer += time.perf_counter() - t0
            family = family or heads.for_outputs([(1, *o.shape[1:]) for o in outs], nc, meta, runner.model_path)
            for row, (image_id, _, lb) in enumerate(batch):
                dets[image_id] = family.decode([o[row : row + 1] for o in outs], lb, conf, iou, MAX_DET, nc, nms)
            bar.update(len(batch))
    return Predictions(dets, infer, time.perf_counter() - start, family)


def score(coco, preds: Predictions, images: ImageSet, classes: metrics.ClassMap) -> dict:
    """COCO mAP of ``preds`` over the readable images and the mapped categories, plus timings, the
    results list and pycocotools' evaluator (None without detections). ``classes`` maps class index ->
    category id (``metrics.map_classes``). The task's primary kind (boxes, oriented boxes) gives the top-level
    stats; each further kind (masks, keypoints) its own under its label (None, with a note, where the annotations
    carry none) and its evaluator under "evaluators"."""
    task, ids = preds.task, images.ids
    primary, *others = task.scored_on
    if not task.carries(coco, primary, ids):
        raise DatasetError(
            f"the annotations lack \"{task.annotation_field[primary]}\" on some objects, which a {task.name} model "
            f"is scored on: annotate every object with it (docs/layouts.md)"
        )
    results, kept = metrics.coco_results(preds.dets, classes.cat_ids, primary, task), {}
    t0 = time.perf_counter()
    stats = metrics.coco_map(coco, results, ids, classes.cat_ids, keep=kept, kind=primary, task=task)
    evaluators, notes = {}, []
    for kind in others:
        label = task.label(kind)
        if not task.carries(coco, kind, ids):
            stats[label] = None
            notes.append(
                f"the annotations carry no {label.rstrip('s')}s ({task.annotation_field[kind]}): "
                f"{label} mAP not measured, boxes only"
            )
            continue
        task.check_annotations(coco, preds.dets)
        kept_kind: dict = {}
        typed = metrics.coco_results(preds.dets, classes.cat_ids, kind, task)
        stats[label] = metrics.coco_map(coco, typed, ids, classes.cat_ids, keep=kept_kind, kind=kind, task=task)
        evaluators[kind] = kept_kind.get("evaluator")
    if preds.family is not None:
        stats["task"] = task.name
    stats.update(
        skipped=len(images.skipped),
        size_mismatched=len(images.mismatched),
        class_map=classes.how,
        seconds_inference=round(preds.seconds_inference, 3),
        seconds_total=round(preds.seconds_total, 3),
        overhead=round(preds.overhead, 3),
        seconds_cocoeval=round(time.perf_counter() - t0, 3),
    )
    return {
        "metrics": stats,
        "results": results,
        "evaluator": kept.get("evaluator"),
        "evaluators": evaluators,
        "notes": notes,
    }


def evaluate(
    model: str | Path,
    images_dir: str | Path,
    ann: str | Path | None,
    *,
    ep: str = "cpu",
    imgsz=None,
    threads: int | None = None,
    class_map=None,
    progress: bool = True,
    detections_out: str | Path | None = None,
    nms: str = "best_class",
) -> dict:
    """mAP50-95 / mAP50 of one model on a COCO-annotated image folder (the `quantkit eval` job); without ``ann``,
    what its task scores on a folder that labels its images (a classifier's top-1 / top-5 on a folder per class).

    Classes are matched to categories by name (or ``class_map``); the stats carry the notes and the NMS mode."""
    if ann is None:
        return labelled_accuracy(model, images_dir, ep, threads, imgsz, progress)
    hw, nc = model_hw(model, imgsz)
    coco, items = coco_items(ann, images_dir)
    classes = metrics.map_classes(coco, model_names(model), class_map)
    images = ImageSet.load(items, hw, progress, annotated_sizes(coco))
    if not images.ids:
        raise DatasetError(f"none of the {len(items)} images in {images_dir} could be read: check the files")
    preds = predict(Runner(model, ep, threads), images, nc, progress=progress, nms=boxes.nms_mode(nms))
    scored = score(coco, preds, images, classes)
    if detections_out:  # every field the detections have: boxes, masks (RLE), keypoints
        results = metrics.coco_results(preds.dets, classes.cat_ids, "all", preds.task)
        write_text_atomic(detections_out, json.dumps(results))
    return {**scored["metrics"], "nms": boxes.nms_mode(nms), "notes": classes.notes + scored["notes"]}


def labelled_accuracy(model: str | Path, images_dir: str | Path, ep: str, threads, imgsz, progress: bool) -> dict:
    """A model's accuracy on a folder its task labels (``Task.labelled_images``, ``Task.accuracy_of``); the model
    file read once for its input, names and head."""
    proto = load_model(model)
    info = inspect_model(proto, model)
    hw, nc = resolve_imgsz(info, imgsz, model), (len(info.names) or None)
    head = heads.find(proto)
    task = tasks.get(heads.family(head.family).task if head else None)
    labelled = task.labelled_images(Path(images_dir))
    if labelled is None:
        raise DatasetError(
            f"a {task.name} model is scored against annotations: pass --ann (COCO instances JSON of {images_dir})"
        )
    images = ImageSet.load(list(enumerate(p for p, _ in labelled)), hw, progress, fit=task.fit)
    preds = predict(Runner(model, ep, threads), images, nc, progress=progress)
    return task.accuracy_of([preds.dets[i] for i in images.ids], [labelled[i][1] for i in images.ids], info.names)


def parity_report(
    fp32: Predictions,
    int8: Predictions,
    raw_fp32: np.ndarray | None = None,
    raw_int8: np.ndarray | None = None,
    score_thr: float = 0.25,
    th: dict | None = None,
) -> dict:
    """Detection-level parity of detections scoring at least ``score_thr`` (the deployed confidence), matched
    and judged collapsed by ``th`` (``match_iou``, ``collapse_score_ratio``; THRESHOLDS by default), plus
    raw-output statistics per channel group when tensors are given."""
    th = th or THRESHOLDS
    ids = sorted(fp32.dets)
    report = metrics.parity(
        [fp32.dets[i] for i in ids],
        [int8.dets[i] for i in ids],
        score_thr,
        th["match_iou"],
        th["collapse_score_ratio"],
        th["decision_level"],
        fp32.task,
    )
    report["score_thr"] = score_thr
    if raw_fp32 is not None:
        report["raw"] = metrics.raw_output_stats(raw_fp32, raw_int8)
    return report


def agreement_report(
    reference: dict[int, Detections],
    int8: dict[int, Detections],
    images: ImageSet,
    nc: int | None = None,
    level: float = THRESHOLDS["decision_level"],
    task: tasks.Task | None = None,
) -> dict:
    """Agreement mAP of ``int8``'s ranked detections with ``reference`` (FP32's at the deployed confidence)
    as the ground truth (``metrics.agreement_map``), with its bootstrap CI95 and ``level`` interval over the images."""
    classes = max((int(d.classes.max()) + 1 for d in (*reference.values(), *int8.values()) if len(d)), default=1)
    shapes = {i: lb.shape for i, lb in zip(images.ids, images.letterboxes)}
    kept: dict = {}
    out = metrics.agreement_map(reference, int8, shapes, max(nc or 0, classes), keep=kept, task=task)
    for key in ("coco", "cat_ids"):
        out.pop(key)
    if "evaluator" in kept:
        table = bootstrap.MatchTable.from_evaluator(kept["evaluator"], sorted(reference))
        out.update({k: v for k, v in bootstrap.interval(table, level).items() if k != "images"})
    elif out["map50_95"] is not None:  # INT8 detected nothing: 0 on every resample
        out.update(ci95=[0.0, 0.0], ci=[0.0, 0.0], level=level, halfwidth=0.0)
    return out


def raw_outputs(runner: Runner, images: ImageSet, nc: int | None, count: int = RAW_IMAGES) -> np.ndarray:
    """Raw first outputs of the first ``count`` images as their head family lays them out for per-channel-group
    statistics (box channels first, then scores), joined along the anchor axis ([1, C, N*count])."""
    outputs = [runner.run_all(to_tensor(boxed)) for boxed in images.boxed[:count]]
    family = heads.for_outputs(
        [o.shape for o in outputs[0]], nc, runner.session.get_modelmeta().custom_metadata_map, runner.model_path
    )
    return np.concatenate([family.raw_channels(outs[0], nc) for outs in outputs], axis=2)
