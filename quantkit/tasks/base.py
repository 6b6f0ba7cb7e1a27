"""What every task shares: ``Detections`` (with the task's fields carried openly) and the ``Task`` interface,
whose defaults are the detector's: axis-aligned boxes, class-wise NMS, pycocotools' bbox scoring.

A task module declares what its predictions carry beyond boxes, scores and classes (``fields``), how two
predictions are matched (``iou``), how candidates are suppressed (``suppress``), what they are scored on
against annotations (``scored_on``: pycocotools iouTypes or the task's own kinds, the first the primary), the
figures of matched FP32/INT8 pairs (``pair_figures``) and the thresholds of its own gates (``thresholds``).
Nothing here imports onnxruntime: tasks are arrays in, numbers out.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..gates.base import Gate, GateResult, Target, Threshold
from ..gates.map_drop import _drop_gate
from ..gates.parity import _measured, too_few_pairs
from ..measure.intervals import LEVEL, ratio_interval
from ..preprocess import letterbox_image


@dataclass
class Detections:
    """One image's detections, highest score first. ``fields`` holds what the task adds per detection
    (masks, keypoints, oriented boxes: see its module), each a list or an array with one entry per detection."""

    boxes: np.ndarray  # [K, 4] float32 xyxy in original image pixels (an oriented box's axis-aligned hull)
    scores: np.ndarray  # [K] float32
    classes: np.ndarray  # [K] int64 class index
    fields: dict = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index) -> Detections:
        """The detections at ``index`` (positions or a boolean mask), every field included."""
        index = np.asarray(index)
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64).reshape(-1)
        fields = {k: [v[i] for i in index] if isinstance(v, list) else v[index] for k, v in self.fields.items()}
        return Detections(self.boxes[index], self.scores[index], self.classes[index], fields)

    def above(self, conf: float) -> Detections:
        """The detections scoring at least ``conf``."""
        return self.take(self.scores >= conf)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: [A, 4] x [B, 4] -> [A, B]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mean_and_interval(per_image: list[list[float]], level: float) -> tuple[float | None, list[float], list | None]:
    """The mean of per-image lists of pair figures, the flat list, and the mean's per-image bootstrap interval."""
    flat = [v for image in per_image for v in image]
    sums, counts = [sum(image) for image in per_image], [len(image) for image in per_image]
    return (float(np.mean(flat)) if flat else None), flat, ratio_interval(sums, counts, level, bounds=None)


class Task:
    """An Ultralytics task. Subclasses override what differs from the detector."""

    name = "detect"
    fields: tuple[str, ...] = ()  # per-detection fields beyond boxes, scores, classes
    # what predictions are scored on against annotations, the primary first, each with the label stats and gates
    # use for it ("box": the mAP gates read it)
    scored_on: tuple[str, ...] = ("bbox",)
    labels: dict[str, str] = {"bbox": "box"}
    annotation_field: dict[str, str] = {"bbox": "bbox"}  # what an annotation must carry to be scored on a kind
    defaults: dict[str, float] = {}  # the gate table's thresholds this task sets otherwise, by measurement
    uses_boxes = True  # box-level gates (parity by matched boxes, agreement mAP, F1 at the operating point) apply
    loss_threshold = "max_map_drop_pt"  # the threshold `quantkit tune` weighs its accuracy loss (``loss_pt``) against
    accuracy_column, drop_metric = "mAP50-95", "map50_95_drop_pt"  # `quantkit check`'s accuracy column and its gate

    fit = staticmethod(letterbox_image)  # how an image is fitted to the input, for calibration and evaluation

    def label(self, kind: str) -> str:
        return self.labels[kind]

    def accuracy_of(self, dets: list[Detections], labels: list[str], names: dict[int, str]) -> dict:
        """One model's accuracy on images labelled by their folder (only tasks that label by folder score so)."""
        raise NotImplementedError(f"a {self.name} model is scored against COCO annotations")

    def labelled_images(self, folder: Path) -> list[tuple[Path, str]] | None:
        """Images this task labels by their folder, with their labels (None: labels come from COCO annotations)."""
        return None

    # -- matching and suppression ---------------------------------------------------------------------
    def iou(self, a: Detections, ai: np.ndarray, b: Detections, bi: np.ndarray) -> np.ndarray:
        """IoU of detections ``a[ai]`` with ``b[bi]`` ([A, B]): what matches an FP32 to an INT8 prediction."""
        return box_iou(a.boxes[ai].astype(np.float64), b.boxes[bi].astype(np.float64))

    def suppress(self, preds: np.ndarray, keep: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float):
        """Class-wise NMS of the candidates ``keep`` of a channels-first output ``preds`` [C, N] (cx, cy, w, h
        first): the positions in ``keep`` it retains."""
        cx, cy, w, h = preds[:4, keep].astype(np.float32)
        xywh = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
        # Candidates already passed `conf` (inclusive); OpenCV's threshold is strict (>) and must be >= 0.
        picked = cv2.dnn.NMSBoxesBatched(xywh, scores, classes.astype(np.int32), 0.0, iou)
        return np.asarray(picked, dtype=np.int64).reshape(-1)

    # -- scoring against annotations -----------------------------------------------------------------------
    def result_fields(self, dets: Detections, kind: str) -> dict[str, list]:
        """The COCO results fields of ``dets`` that ``kind`` is scored on ("all": every field they have)."""
        xywh = dets.boxes.astype(np.float64)
        xywh[:, 2:] -= xywh[:, :2]
        return {"bbox": np.round(xywh, 3).tolist()}

    def annotation_fields(self, dets: Detections, k: int) -> dict:
        """Ground-truth fields beyond the bbox for detection ``k`` when FP32's detections are the ground truth."""
        return {}

    def evaluator(self, coco_gt: COCO, coco_dt: COCO, kind: str) -> COCOeval:
        """pycocotools' evaluator of ``kind`` (before ``evaluate()``)."""
        return COCOeval(coco_gt, coco_dt, kind)

    def load_results(self, coco_gt: COCO, results: list[dict]) -> COCO:
        with contextlib.redirect_stdout(io.StringIO()):
            return coco_gt.loadRes([dict(r) for r in results])  # loadRes writes into the dicts it gets

    def carries(self, coco_gt: COCO, kind: str, image_ids: Sequence[int]) -> bool:
        """True when every annotation of ``image_ids`` has what ``kind`` scores."""
        name = self.annotation_field[kind]
        anns = [a for i in image_ids for a in coco_gt.imgToAnns.get(int(i), [])]
        return bool(anns) and all(a.get(name) for a in anns)

    def counted(self, annotation: dict, kind: str) -> bool:
        """Whether pycocotools counts ``annotation`` when scoring ``kind`` (crowds are ignored)."""
        return not annotation.get("iscrowd")

    def check_annotations(self, coco_gt: COCO, dets: dict[int, Detections]) -> None:
        """DatasetError where the predictions cannot be scored on these annotations (e.g. another keypoint count)."""

    def ground_truth(self, annotations: list[dict]) -> Detections:
        """Annotations as detections (score 1, class = category id), for matching at the operating point."""
        boxes = np.array([a["bbox"] for a in annotations], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        classes = np.array([a["category_id"] for a in annotations], np.int64)
        return Detections(boxes, np.ones(len(annotations), np.float32), classes)

    # -- FP32 vs INT8 pairs ----------------------------------------------------------------------------
    def pair_figures(self, fp32: Detections, int8: Detections, pairs: list) -> dict[str, list[float]]:
        """Per matched (FP32, INT8) pair of one image, the task's own figures ({} for boxes alone)."""
        return {}

    def pair_report(self, pipeline, spec) -> dict:
        """The task's own figures of an INT8 model against FP32 beyond box parity (``quantkit compare``'s report)."""
        return {}

    def eval_lines(self, stats: dict) -> list[str]:
        """`quantkit eval`'s lines for ``evaluate.evaluate``'s stats: mAP of boxes, then of each further kind."""
        lines = [
            f"mAP50-95 {stats['map50_95']:.4f}  mAP50 {stats['map50']:.4f}  ({stats['images']} images, "
            f"{stats['skipped']} unreadable skipped, {stats['size_mismatched']} read at another size than annotated, "
            f"classes mapped by {stats['class_map']}, NMS {stats['nms']}, {stats['seconds_total']:.1f} s)"
        ]
        for label in (self.label(k) for k in self.scored_on[1:]):  # where the annotations carry them
            if stats.get(label):
                lines.append(
                    f"{label} mAP50-95 {stats[label]['map50_95']:.4f}  {label} mAP50 {stats[label]['map50']:.4f}"
                )
        return lines

    def report_lines(self, report: dict) -> list[str]:
        """Lines `quantkit compare` prints for the task's own figures in ``report``."""
        return []

    def loss_pt(self, pipeline, spec) -> float:
        """What a configuration loses, in points, for `quantkit tune`'s ranking: the mAP50-95 drop with annotations,
        else the agreement mAP's shortfall from 1."""
        if pipeline.annotated:
            return 100 * (pipeline.map(None)["map50_95"] - pipeline.map(spec)["map50_95"])
        return 100 * (1 - (pipeline.agreement(spec)["map50_95"] or 0.0))

    def baseline_figures(self) -> list[tuple[str, tuple[str, ...], str, float]]:
        """What a saved run is compared on (``gates.check_baseline``): (metric, the figure's path in a record, the
        threshold key, the scale to its unit), each higher-is-better: INT8 mAP (boxes, then each further kind),
        agreement mAP with FP32, parity recall."""
        maps = [("int8_map50_95_loss_pt", ("int8_map50_95",), "baseline_map_drop_pt", 100.0)]
        for label in (self.label(k) for k in self.scored_on[1:]):
            maps.append((f"int8_{label}_map50_95_loss_pt", (label, "int8_map50_95"), "baseline_map_drop_pt", 100.0))
        return maps + [
            ("agreement_map50_95_loss", ("agreement", "map50_95"), "baseline_agreement_drop", 1.0),
            ("parity_recall_loss", ("parity", "recall"), "baseline_recall_drop", 1.0),
        ]

    def columns(self, pipeline, spec, measured: bool, reference: bool = False) -> dict:
        """`quantkit check`'s accuracy columns of one row (FP32: ``spec`` None; ``reference``: an FP32 timing
        reference, not scored) where accuracy was ``measured``: with annotations the mAP, its drop and each further
        kind's mAP (masks, keypoints); the agreement mAP of INT8 rows."""
        fp32 = pipeline.map(None) if measured and pipeline.annotated else None
        scores = pipeline.map(spec) if fp32 is not None and not reference else None
        agree = pipeline.agreement(spec)["map50_95"] if measured and spec is not None else None
        out = {
            "mAP50-95": round(scores["map50_95"], 4) if scores else None,
            "mAP drop": round(100 * (fp32["map50_95"] - scores["map50_95"]), 2) if scores else None,
        }
        for label in (self.label(k) for k in self.scored_on[1:]):
            if fp32 is not None and fp32.get(label):
                out[f"{label} mAP50-95"] = round(scores[label]["map50_95"], 4) if scores else None
        return {**out, "agreement mAP": round(agree, 4) if agree is not None else None}

    def summarize_pairs(
        self, fp32: list[Detections], figures: list[dict[str, list[float]]], level: float = LEVEL
    ) -> tuple[dict, dict]:
        """The task's parity figures over all images (``pair_figures`` per image) and their intervals."""
        return {}, {}


def map_drop_gate(task: Task, kind: str, threshold: Threshold) -> Gate:
    """The gate of the FP32 - INT8 mAP50-95 drop of a further ``kind`` ``task`` is scored on (masks, keypoints),
    decided like the box drop from its paired interval; nothing where the annotations carry no such kind."""
    label = task.label(kind)

    def run(t: Target) -> list[GateResult]:
        pipe = t.pipeline
        fp32, int8 = (pipe.map(None), pipe.map(t.spec)) if pipe.task.name == task.name else ({}, {})
        if fp32.get(label) is None or int8.get(label) is None:
            return []
        boot = pipe.map_bootstrap(t.spec, kind)
        f, q = fp32[label]["map50_95"], int8[label]["map50_95"]
        return [_drop_gate(f"{label}_", f, q, t.th[threshold.key], t.case_id, boot, pipe.case.nms)]

    return Gate(f"{label} mAP", run, needs=("coco",), thresholds=(threshold,), tags=("accuracy", "task", "task mAP"))


def pair_gate(
    task: Task,
    figure: str,
    threshold: Threshold,
    op: str,
    metric: str,
    shown: tuple[str, str] | None = None,
    labels: tuple[str, str] = ("FP32", "INT8"),
    note: str = "",
) -> Gate:
    """The gate of a parity ``figure`` of ``task``'s matched pairs (``Task.summarize_pairs``: a mean with its
    interval) against ``threshold`` with ``op``, reported as ``metric`` with the parity fields ``shown`` under
    ``labels``; ``note`` may name parity's fields ({keypoint_pairs}). Not measured (fails closed) with too few
    matched pairs."""

    def run(t: Target) -> list[GateResult]:
        parity = t.pipeline.parity(t.spec) if t.pipeline.task.name == task.name else {}
        if figure not in parity:  # predictions without the task's field (a detector's boxes)
            return []
        value = parity[figure]
        thin = too_few_pairs(parity, t.th) or (None if value is not None else f"no matched pair has {task.fields[0]}")
        return [
            GateResult(
                gate="parity",
                metric=metric,
                value=value,
                op=op,
                threshold=t.th[threshold.key],
                case_id=t.case_id,
                fp32=parity.get(shown[0]) if shown else None,
                int8=parity.get(shown[1]) if shown else None,
                labels=labels,
                no_evidence=thin,
                note=note.format(**parity),
                **_measured(parity, figure),
            )
        ]

    return Gate(metric, run, needs=("val", "boxes"), thresholds=(threshold,), tags=("accuracy", "parity", "task"))
