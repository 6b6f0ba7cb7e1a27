"""Accuracy from arrays: COCO mAP via pycocotools, FP32-vs-INT8 detection parity, raw-output stats."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .. import tasks
from ..heads.boxes import head_layout
from ..tasks import Detections, Task
from ..errors import DatasetError, ModelError
from .intervals import LEVEL, ratio_interval

# Class index of a COCO-trained (80-class) detector -> category id in the 91-id COCO annotations.
COCO80_TO_91 = [
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
    27,
    28,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    38,
    39,
    40,
    41,
    42,
    43,
    44,
    46,
    47,
    48,
    49,
    50,
    51,
    52,
    53,
    54,
    55,
    56,
    57,
    58,
    59,
    60,
    61,
    62,
    63,
    64,
    65,
    67,
    70,
    72,
    73,
    74,
    75,
    76,
    77,
    78,
    79,
    80,
    81,
    82,
    84,
    85,
    86,
    87,
    88,
    89,
    90,
]

MAX_DETS = [1, 10, 300]
_REQUIRED_KEYS = {
    "images": ("id", "file_name"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id",),
}


def _fill_optional(annotation: dict) -> None:
    """``iscrowd`` 0 and ``area`` from the bbox (w*h) where missing, as pycocotools' loadRes fills them."""
    annotation.setdefault("iscrowd", 0)
    if "area" not in annotation:
        annotation["area"] = float(annotation["bbox"][2]) * float(annotation["bbox"][3])


def load_coco(ann_path: str | Path) -> COCO:
    """Load COCO annotations without pycocotools' prints; DatasetError for anything unusable."""
    path = Path(ann_path)
    if not path.is_file():
        raise DatasetError(f"COCO annotations not found: {path}: pass the annotations JSON of the evaluation images")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}): pass a COCO annotations file") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} is not a COCO annotations object: pass a COCO annotations file")
    for section, keys in _REQUIRED_KEYS.items():
        if not isinstance(data.get(section), list):
            raise DatasetError(f"{path} has no '{section}' list: a COCO file needs images, annotations and categories")
        for i, item in enumerate(data[section]):
            missing = [k for k in keys if k not in item] if isinstance(item, dict) else list(keys)
            if missing:
                raise DatasetError(f"{path}: {section}[{i}] lacks {', '.join(missing)}: fix the COCO file")
    for i, ann in enumerate(data["annotations"]):
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise DatasetError(
                f"{path}: annotations[{i}] bbox {str(bbox)[:60]} is not [x, y, width, height]: fix the COCO file"
            )
        _fill_optional(ann)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


@dataclass
class ClassMap:
    """Class index -> COCO category id, and how it was decided."""

    cat_ids: list[int]
    how: str  # "names", "explicit" or "sorted ids"
    notes: list[str] = field(default_factory=list)


def _norm(name) -> str:
    return str(name).strip().lower()


def _resolve_explicit(coco_gt: COCO, explicit, nc: int | None) -> list[int]:
    """An explicit map (list, or dict of index -> category id or name) as a list of category ids."""
    by_name = {_norm(c.get("name", "")): c["id"] for c in coco_gt.dataset["categories"]}
    if isinstance(explicit, dict):
        index = {int(k): v for k, v in explicit.items()}
        size = nc or len(index)
        missing = sorted(set(range(size)) - set(index))
        if missing:
            raise DatasetError(f"class map does not cover class indices {missing}: map every index 0..{size - 1}")
        explicit = [index[i] for i in range(size)]
    ids = []
    for i, value in enumerate(explicit):
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            if _norm(value) not in by_name:
                raise DatasetError(
                    f"class map: class {i} -> '{value}' names no category of the annotations "
                    f"({sorted(by_name)}): fix the class map"
                )
            ids.append(by_name[_norm(value)])
        else:
            ids.append(int(value))
    unknown = sorted(set(ids) - set(coco_gt.getCatIds()))
    if unknown:
        raise DatasetError(
            f"class map names category ids {unknown} that the annotations lack "
            f"(known: {sorted(coco_gt.getCatIds())}): fix the class map"
        )
    return ids


def map_classes(coco_gt: COCO, names: dict[int, str] | None = None, explicit=None) -> ClassMap:
    """Class index -> category id: ``explicit`` if given, else by class name, else the sorted ids.

    Matching by name ignores case and surrounding whitespace; categories no model class names (a
    dataset-name or supercategory entry) are left out of the evaluation with a note. No overlap, or
    a model class that no category names, is a DatasetError that prints both lists.
    """
    cats = coco_gt.dataset["categories"]
    nc = len(names) if names else None
    if explicit is not None:
        return ClassMap(_resolve_explicit(coco_gt, explicit, nc), "explicit")
    sorted_ids = sorted(coco_gt.getCatIds())
    if not names:
        return ClassMap(
            sorted_ids,
            "sorted ids",
            [
                f"the model carries no class names: class index i is scored as the i-th of the annotations' "
                f"{len(sorted_ids)} category ids sorted ({sorted_ids[:10]}); pass a class map if that is wrong"
            ],
        )
    by_name: dict[str, int] = {}
    for c in cats:
        by_name.setdefault(_norm(c.get("name", "")), c["id"])
    model_names = [names[i] for i in sorted(names)]
    missing = [n for n in model_names if _norm(n) not in by_name]
    if missing:
        overlap = (
            "no overlap at all" if len(missing) == len(model_names) else f"model classes {missing} have no category"
        )
        raise DatasetError(
            f"class names do not match the annotations ({overlap}): model classes {model_names}, "
            f"annotation categories {[c.get('name') for c in cats]}: rename the categories or pass a "
            "class map (class_map in the manifest case, --class-map FILE)"
        )
    ids = [by_name[_norm(n)] for n in model_names]
    notes = []
    exact = {c.get("name") for c in cats}
    loose = [n for n in model_names if n not in exact]
    if loose:
        notes.append(f"model classes {loose} matched their categories ignoring case and surrounding spaces")
    ignored = [c.get("name") for c in cats if c["id"] not in set(ids)]
    if ignored:
        notes.append(f"annotation categories {ignored} name no model class: left out of the evaluation")
    if len(cats) != len(model_names):
        notes.append(f"the model has {len(model_names)} classes, the annotations {len(cats)} categories")
    return ClassMap(ids, "names", notes)


def coco_results(
    dets_by_image: dict[int, Detections], cat_ids: list[int], kind: str = "bbox", task: Task | None = None
) -> list[dict]:
    """COCO results list: image_id, category_id, score (5 decimals) and the fields ``task`` scores ``kind`` on
    (``Task.result_fields``: "bbox" a bbox [x, y, w, h] of 3 decimals, a segmentation, keypoints, corners; "all":
    every field the detections have, the ``--detections`` file)."""
    task = task or tasks.get(None)
    lookup = np.asarray(cat_ids, np.int64)
    results = []
    for image_id, dets in dets_by_image.items():
        if len(dets) == 0:
            continue
        bad = dets.classes[(dets.classes < 0) | (dets.classes >= len(lookup))]
        if bad.size:
            raise DatasetError(
                f"class index {int(bad[0])} has no COCO category id ({len(lookup)} categories mapped): "
                "pass a category map that covers every class of the model"
            )
        fields = task.result_fields(dets, kind)
        scores, cats = np.round(dets.scores.astype(np.float64), 5).tolist(), lookup[dets.classes].tolist()
        for k in range(len(dets)):
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": cats[k],
                    **{f: v[k] for f, v in fields.items()},
                    "score": scores[k],
                }
            )
    return results


def evaluated(
    coco_gt: COCO,
    results: list[dict],
    image_ids: list[int],
    cat_ids: list[int] | None = None,
    kind: str = "bbox",
    task: Task | None = None,
) -> COCOeval:
    """pycocotools' COCOeval of ``kind`` (``task``'s evaluator) over ``image_ids`` (and ``cat_ids``) with maxDets
    [1, 10, 300], after ``evaluate()`` (per-image matching, ``evalImgs``) and before ``accumulate()``. ``results``
    must not be empty."""
    task = task or tasks.get(None)
    coco_dt = task.load_results(coco_gt, results)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = task.evaluator(coco_gt, coco_dt, kind)
        evaluator.params.imgIds = [int(i) for i in image_ids]
        if cat_ids is not None:
            evaluator.params.catIds = sorted(set(int(c) for c in cat_ids))
        evaluator.params.maxDets = list(MAX_DETS)
        evaluator.evaluate()
    return evaluator


def category_names(coco_gt: COCO, cat_ids) -> dict[int, str]:
    """Category id -> its name in the annotations (the id as text where a category has no name; with the
    id appended where two categories share a name)."""
    names = {int(c): str(coco_gt.cats[int(c)].get("name") or c) for c in cat_ids}
    counts = {n: list(names.values()).count(n) for n in names.values()}
    return {c: n if counts[n] == 1 else f"{n} ({c})" for c, n in names.items()}


def _table_stats(evaluator: COCOeval, names: dict[int, str]) -> dict:
    """mAP50-95 / 50 / 75, AR and AP by area at the last maxDets, and AP50-95 per category, from the
    accumulated tables (pycocotools' summarize() reads fixed maxDets that [1, 10, 300] lacks: 100 for
    boxes and masks, 20 for keypoints; its formulas otherwise)."""
    p = evaluator.params
    precision = evaluator.eval["precision"][..., -1]  # [IoU, recall, category, area]
    recall = evaluator.eval["recall"][..., -1]  # [IoU, category, area]
    everything = p.areaRngLbl.index("all")

    def mean(a):
        return float(a[a > -1].mean()) if (a > -1).any() else -1.0

    def area(label):
        return mean(precision[..., p.areaRngLbl.index(label)]) if label in p.areaRngLbl else -1.0

    iou = list(np.round(p.iouThrs, 2))
    at = precision[..., everything]
    return {
        "map50_95": mean(at),
        "map50": mean(at[iou.index(0.5)]),
        "map75": mean(at[iou.index(0.75)]),
        "ar300": mean(recall[..., everything]),
        "aps": area("small"),
        "apm": area("medium"),
        "apl": area("large"),
        "per_class": {names[cat]: mean(at[:, :, k]) for k, cat in enumerate(p.catIds)},
    }


def coco_map(
    coco_gt: COCO,
    results: list[dict],
    image_ids: list[int],
    cat_ids: list[int] | None = None,
    keep: dict | None = None,
    kind: str = "bbox",
    task: Task | None = None,
) -> dict:
    """pycocotools mAP of ``kind`` (bbox, segm, keypoints, obb: what ``task`` scores) over ``image_ids`` (and
    ``cat_ids``, default all) only, with maxDets [1, 10, 300].

    Besides mAP50-95/50/75 and AR: COCO's small/medium/large AP (``aps``/``apm``/``apl``, -1 where no
    object of that size exists; keypoints have no small) and AP50-95 per category, keyed by category name
    (``per_class``). ``keep`` receives the COCOeval under "evaluator" (its per-image matches serve the bootstrap)."""
    image_ids = [int(i) for i in image_ids]
    if not image_ids:
        raise DatasetError("no images to evaluate: pass at least one image id")
    unknown_images = sorted(set(image_ids) - set(coco_gt.getImgIds()))
    if unknown_images:
        raise DatasetError(
            f"image ids {unknown_images[:10]} are not in the COCO annotations: evaluate images of that file"
        )
    unknown = sorted({r["category_id"] for r in results} - set(coco_gt.getCatIds()))
    if unknown:
        raise DatasetError(
            f"results name category ids {unknown} that the COCO annotations lack "
            f"(known: {sorted(coco_gt.getCatIds())}): fix the class index -> category id map"
        )
    stray = sorted({r["image_id"] for r in results} - set(coco_gt.getImgIds()))
    if stray:
        raise DatasetError(
            f"results name image ids {stray[:10]} that the COCO annotations lack: match images to annotations"
        )
    if not coco_gt.getAnnIds(imgIds=image_ids):
        raise DatasetError(
            f"the {len(image_ids)} images to evaluate have no annotations, so mAP is undefined: "
            "evaluate annotated images"
        )
    summary = {"images": len(image_ids), "detections": len(results)}
    names = category_names(coco_gt, sorted(set(cat_ids or coco_gt.getCatIds())))
    zeros = {
        "map50_95": 0.0,
        "map50": 0.0,
        "map75": 0.0,
        "ar300": 0.0,
        "aps": 0.0,
        "apm": 0.0,
        "apl": 0.0,
        "per_class": {name: 0.0 for name in names.values()},
    }
    if not results:  # pycocotools' loadRes cannot take an empty list
        return {**zeros, **summary}
    evaluator = evaluated(coco_gt, results, image_ids, cat_ids, kind, task)
    if keep is not None:
        keep["evaluator"] = evaluator
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.accumulate()
    return {**_table_stats(evaluator, names), **summary}


def reference_coco(
    dets_by_image: dict[int, Detections],
    shapes: dict[int, tuple[int, int]],
    n_classes: int,
    task: Task | None = None,
) -> COCO:
    """A COCO ground truth made of one model's detections (FP32's at the deployed confidence), so any
    image folder can score another model against it: category ``k + 1`` is class index ``k``;
    ``shapes`` gives each image's (height, width); ``task`` adds its fields (an oriented box's corners)."""
    task = task or tasks.get(None)
    images = [
        {"id": int(i), "file_name": str(i), "height": int(shapes[i][0]), "width": int(shapes[i][1])}
        for i in dets_by_image
    ]
    annotations = []
    for image_id, dets in dets_by_image.items():
        for k, (box, cls) in enumerate(zip(dets.boxes.astype(np.float64).tolist(), dets.classes.tolist())):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(image_id),
                    "category_id": int(cls) + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    **task.annotation_fields(dets, k),
                }
            )
    coco = COCO()
    coco.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": str(k)} for k in range(n_classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def agreement_map(
    fp32_ref: dict[int, Detections],
    int8: dict[int, Detections],
    shapes: dict[int, tuple[int, int]],
    n_classes: int,
    keep: dict | None = None,
    task: Task | None = None,
) -> dict:
    """Agreement mAP: pycocotools' mAP (of ``task``'s primary kind: boxes, oriented boxes) of ``int8``'s ranked
    detections with ``fp32_ref`` (FP32's detections at the deployed confidence) as the ground truth; FP32 scored
    this way reads 1.0. Needs no annotations. ``fp32_detections`` counts the reference boxes; without any the mAP
    is None."""
    task = task or tasks.get(None)
    ids = sorted(fp32_ref)
    coco = reference_coco(fp32_ref, shapes, n_classes, task)
    cat_ids = list(range(1, n_classes + 1))
    count = sum(len(d) for d in fp32_ref.values())
    out = {"images": len(ids), "fp32_detections": count, "int8_detections": sum(len(int8[i]) for i in ids)}
    if not count:
        return {**out, "map50_95": None, "map50": None, "coco": coco, "cat_ids": cat_ids}
    kind = task.scored_on[0]
    results = coco_results({i: int8[i] for i in ids}, cat_ids, kind, task)
    stats = coco_map(coco, results, ids, cat_ids, keep=keep, kind=kind, task=task)
    return {**out, "map50_95": stats["map50_95"], "map50": stats["map50"], "coco": coco, "cat_ids": cat_ids}


def _match(
    fp32: Detections, int8: Detections, score_thr: float, iou_thr: float, task: Task | None = None
) -> tuple[list, int, int]:
    """Greedy one-to-one matching by ``task``'s IoU, highest FP32 score first: ([(fp32 score, int8 score, iou,
    fp32 index, int8 index)], nf, ni)."""
    fi = np.flatnonzero(fp32.scores >= score_thr)
    fi = fi[np.argsort(-fp32.scores[fi], kind="stable")]
    ii = np.flatnonzero(int8.scores >= score_thr)
    pairs = []
    if fi.size and ii.size:
        ious = (task or tasks.get(None)).iou(fp32, fi, int8, ii)
        ious[fp32.classes[fi][:, None] != int8.classes[ii][None, :]] = -1.0
        for row, f in enumerate(fi):
            col = int(ious[row].argmax())
            if ious[row, col] >= iou_thr:
                pairs.append(
                    (float(fp32.scores[f]), float(int8.scores[ii[col]]), float(ious[row, col]), int(f), int(ii[col]))
                )
                ious[:, col] = -1.0
    return pairs, fi.size, ii.size


def _crossings(
    fp32: Detections, int8: Detections, pairs: list, conf: float, margin: float, iou_thr: float, task: Task
):
    """Detections that crossed the deployed ``conf`` by no more than ``margin`` (the measured score drift):
    FP32 detections at or above ``conf`` that INT8 has (same class, IoU) just under it ("down": not lost, a
    threshold crossing; the INT8 scores returned), and INT8 detections FP32 has just under it ("up")."""
    down, up = [], 0
    if margin <= 0:
        return down, up
    fp32_kept, int8_kept = {p[3] for p in pairs}, {p[4] for p in pairs}
    for a, b, kept_a, kept_b, is_down in (
        (fp32, int8, fp32_kept, int8_kept, True),
        (int8, fp32, int8_kept, fp32_kept, False),
    ):
        lost = [i for i in np.flatnonzero(a.scores >= conf) if i not in kept_a and a.scores[i] < conf + margin]
        near = [j for j in np.flatnonzero((b.scores < conf) & (b.scores >= conf - margin)) if j not in kept_b]
        if not lost or not near:
            continue
        lost = sorted(lost, key=lambda i: -a.scores[i])
        ious = task.iou(a, np.asarray(lost), b, np.asarray(near))
        ious[a.classes[lost][:, None] != b.classes[near][None, :]] = -1.0
        for row in range(len(lost)):
            col = int(ious[row].argmax())
            if ious[row, col] >= iou_thr:
                ious[:, col] = -1.0
                if is_down:
                    down.append(float(b.scores[near[col]]))
                else:
                    up += 1
    return down, up


def parity(
    fp32: list[Detections],
    int8: list[Detections],
    score_thr: float = 0.25,
    iou_thr: float = 0.5,
    collapse_ratio: float = 0.5,
    level: float = LEVEL,
    task: Task | None = None,
) -> dict:
    """FP32 vs INT8 detections in both directions: how many FP32 detections INT8 reproduces (same
    class, ``task``'s IoU >= ``iou_thr``; ``recall``), how many INT8 detections FP32 also has (``precision``),
    how closely the matched ones agree, and on how many images INT8's best score collapsed.

    Detections below ``score_thr`` are ignored, except in the max scores (over all detections),
    which expose scores that left [0, 1], and in threshold crossings: a detection one model keeps and the
    other scores just under ``score_thr`` (within the 95th percentile of the matched pairs' score drift) is
    a crossing, counted apart (``crossings``), neither lost nor a false alarm. A figure with nothing to
    measure is None, never a pass. ``ci`` holds each figure's ``level`` interval from a per-image bootstrap.
    The task adds its own figures of the matched pairs (``Task.pair_figures``: a mask's IoU, keypoints' distance).
    """
    if len(fp32) != len(int8):
        raise ValueError(f"parity needs one FP32 and one INT8 result per image, got {len(fp32)} and {len(int8)}")
    task = task or tasks.get(None)
    matches = [_match(f, q, score_thr, iou_thr, task) for f, q in zip(fp32, int8)]
    drifts = np.array([abs(p[0] - p[1]) for m in matches for p in m[0]], np.float64)
    margin = float(np.percentile(drifts, 95)) if drifts.size else 0.0
    per_image = {k: [] for k in ("matched", "fp32", "int8", "drift", "iou", "scored", "collapsed")}
    figures, down, up = [], [], 0
    for f, q, (p, nf, ni) in zip(fp32, int8, matches):
        crossed_down, crossed_up = _crossings(f, q, p, score_thr, margin, iou_thr, task)
        down, up = down + crossed_down, up + crossed_up
        figures.append(task.pair_figures(f, q, p))
        fp32_best = float(f.scores.max()) if len(f) else 0.0
        scored = fp32_best >= score_thr
        for key, value in (
            ("matched", len(p)),
            ("fp32", nf - len(crossed_down)),
            ("int8", ni - crossed_up),
            ("drift", sum(abs(x[0] - x[1]) for x in p)),
            ("iou", sum(x[2] for x in p)),
            ("scored", scored),
            ("collapsed", scored and (float(q.scores.max()) if len(q) else 0.0) < fp32_best * collapse_ratio),
        ):
            per_image[key].append(float(value))
    n = {k: np.asarray(v) for k, v in per_image.items()}
    matched, fp32_count, int8_count, scored_images = (int(n[k].sum()) for k in ("matched", "fp32", "int8", "scored"))
    pairs = np.asarray([x for m in matches for x in m[0]], np.float64).reshape(-1, 5)
    ci = {
        "recall": ratio_interval(n["matched"], n["fp32"], level),
        "precision": ratio_interval(n["matched"], n["int8"], level),
        "score_drift_mean": ratio_interval(n["drift"], n["matched"], level),
        "iou_mean": ratio_interval(n["iou"], n["matched"], level),
        "collapsed_fraction": ratio_interval(n["collapsed"], n["scored"], level),
    }
    own, own_ci = task.summarize_pairs(fp32, figures, level)
    return {
        **own,
        "recall": matched / fp32_count if fp32_count else None,
        "precision": matched / int8_count if int8_count else None,
        "fp32_count": fp32_count,
        "int8_count": int8_count,
        "matched": matched,
        "crossings": {
            "margin": round(margin, 4),
            "fp32_kept_int8_under_conf": len(down),
            "int8_kept_fp32_under_conf": up,
            "int8_keeps_all_at_conf": round(min(down), 4) if down else None,
        },
        "score_drift_mean": float(drifts.mean()) if drifts.size else None,
        "score_drift_max": float(drifts.max()) if drifts.size else None,
        "iou_mean": float(pairs[:, 2].mean()) if pairs.size else None,
        "collapsed_fraction": n["collapsed"].sum() / scored_images if scored_images else None,
        "collapsed_images": int(n["collapsed"].sum()),
        "scored_images": scored_images,
        "images": len(fp32),
        "int8_max_score": max((float(d.scores.max()) for d in int8 if len(d)), default=0.0),
        "fp32_max_score": max((float(d.scores.max()) for d in fp32 if len(d)), default=0.0),
        "ci": {**ci, **own_ci},
        "level": level,
    }


def operating_point(
    coco_gt: COCO,
    dets_by_image: dict[int, Detections],
    cat_ids: list[int],
    conf: float,
    iou_thr: float = 0.5,
    task: Task | None = None,
) -> dict:
    """Precision, recall and F1 of the detections with score >= ``conf`` against the annotations of the
    images in ``dets_by_image``: greedy one-to-one matching, highest score first, same category, ``task``'s IoU
    >= ``iou_thr``. Crowd annotations and categories outside ``cat_ids`` are left out. Without detections
    precision is None and F1 0; without annotations recall and F1 are None. ``per_image`` holds each image's
    counts (matched, detections, annotations)."""
    task = task or tasks.get(None)
    lookup = np.asarray(cat_ids, np.int64)
    wanted = set(int(c) for c in cat_ids)
    matched = n_dets = n_gt = 0
    per_image: dict[str, list[int]] = {"matched": [], "detections": [], "annotations": []}
    for image_id, dets in dets_by_image.items():
        anns = [
            a for a in coco_gt.imgToAnns.get(int(image_id), []) if not a.get("iscrowd") and a["category_id"] in wanted
        ]
        gt = task.ground_truth(anns)
        mapped = Detections(dets.boxes, dets.scores, lookup[dets.classes] if len(dets) else dets.classes, dets.fields)
        pairs, nd, _ = _match(mapped, gt, conf, iou_thr, task)
        matched, n_dets, n_gt = matched + len(pairs), n_dets + nd, n_gt + len(anns)
        for key, value in (("matched", len(pairs)), ("detections", nd), ("annotations", len(anns))):
            per_image[key].append(value)
    precision = matched / n_dets if n_dets else None
    recall = matched / n_gt if n_gt else None
    if recall is None:
        f1 = None
    else:  # no detection at all finds nothing: F1 0
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "conf": conf,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "matched": matched,
        "detections": n_dets,
        "annotations": n_gt,
        "per_image": per_image,  # in dets_by_image's order: the F1 drop's paired interval (gates.check_operating_point)
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two tensors flattened; 1.0 when both are zero, 0.0 when one is."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float(na == nb)
    return float(a @ b / (na * nb))


def raw_output_stats(fp32_out: np.ndarray, int8_out: np.ndarray, box_channels: int = 4) -> dict:
    """Per channel group ("box": first ``box_channels`` channels, "cls": the rest) of the raw head output:
    cosine, max abs diff and both maxima. A whole-tensor cosine is dominated by the box pixels and can
    read ~0.99 while the class branch is broken; the "cls" group shows it.
    """
    fp32_out, int8_out = np.asarray(fp32_out), np.asarray(int8_out)
    if fp32_out.shape != int8_out.shape:
        raise ModelError(
            f"FP32 output {list(fp32_out.shape)} and INT8 output {list(int8_out.shape)} differ in shape: "
            "compare outputs of the same model on the same input"
        )
    if head_layout(fp32_out.shape) == "channels_last":
        fp32_out, int8_out = fp32_out.transpose(0, 2, 1), int8_out.transpose(0, 2, 1)
    stats = {}
    for name, sl in (("box", slice(None, box_channels)), ("cls", slice(box_channels, None))):
        a, b = fp32_out[:, sl], int8_out[:, sl]
        stats[name] = {
            "cosine": _cosine(a, b),
            "max_abs_diff": float(np.abs(a.astype(np.float64) - b).max()),
            "fp32_max": float(a.max()),
            "int8_max": float(b.max()),
        }
    return stats
