"""Typed results of one case, each computed once on first use: what one model does on the case's validation images
(``ModelRun``: FP32 or a configuration's INT8) and what a configuration's INT8 model does against FP32 (``PairRun``:
parity, agreement, the paired mAP drops, the graph, the record). ``CasePipeline`` holds one of each per model and
configuration; its inputs (model, images, annotations, task) are the pipeline's."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
import onnx

from . import compat
from .errors import QuantkitError
from .heads import head_is_float
from .manifest import ConfigSpec
from .measure import bootstrap
from .measure.evaluate import EVAL_IOU, Predictions, agreement_report, parity_report, predict, score
from .measure.metrics import coco_results, operating_point
from .measure.session import Runner
from .model import float_convs, op_counts, quantized_convs
from .tasks import Detections


class ModelRun:
    """One model, FP32 (``spec`` None) or a configuration's INT8, on the case's validation images."""

    def __init__(self, pipe, spec: ConfigSpec | None):  # pipe: the case's ``pipeline.CasePipeline``
        self.pipe, self.spec = pipe, spec

    @cached_property
    def path(self) -> Path:
        return self.pipe.model_path(self.spec)

    def runner(self) -> Runner:
        """A session of the model on the case's EP (not kept: a suite holds many cases' pipelines at once)."""
        return Runner(self.path, self.pipe.ep, self.pipe.threads)

    @cached_property
    def predictions(self) -> Predictions:
        """Its predictions at the evaluation's confidence (every candidate: complete precision-recall curves)."""
        pipe = self.pipe
        preds = predict(self.runner(), pipe.images, pipe.hw_nc[1], progress=pipe.progress, nms=pipe.case.nms)
        family = preds.family
        if pipe.case.task and family is not None and family.task != pipe.case.task:
            raise QuantkitError(
                f"case '{pipe.case.id}' declares task = \"{pipe.case.task}\" but {self.path.name} "
                f"is a {family.task} model ({family.covers}): fix the case's task or its model"
            )
        return preds

    @cached_property
    def deployed(self) -> dict[int, Detections]:
        """Detections at the case's conf and NMS IoU, as deployed: the evaluation's, filtered, where the IoU is the
        evaluation's; decoded again at that IoU otherwise."""
        case = self.pipe.case
        if case.iou == EVAL_IOU:
            return {i: d.above(case.conf) for i, d in self.predictions.dets.items()}
        pipe = self.pipe
        return predict(self.runner(), pipe.images, pipe.hw_nc[1], case.conf, pipe.progress, case.iou, case.nms).dets

    @cached_property
    def scored(self) -> dict:
        """``evaluate.score`` against the annotations: mAP of each kind the task scores, and their evaluators."""
        return score(self.pipe.coco[0], self.predictions, self.pipe.images, self.pipe.classes)

    @cached_property
    def _tables(self) -> dict[str, bootstrap.MatchTable]:
        """Per kind scored, the per-image matches of its evaluator (the bootstrap reuses them)."""
        evaluators = {self.pipe.task.scored_on[0]: self.scored["evaluator"], **self.scored["evaluators"]}
        ids = self.pipe.images.ids
        return {kind: bootstrap.MatchTable.from_evaluator(e, ids) for kind, e in evaluators.items() if e is not None}

    def table(self, kind: str) -> bootstrap.MatchTable:
        """Per-image matches of ``kind`` (without any detection: against the annotations alone)."""
        if kind not in self._tables:
            pipe = self.pipe
            results = coco_results(self.predictions.dets, pipe.classes.cat_ids, kind, pipe.task)
            self._tables[kind] = bootstrap.MatchTable.from_results(
                pipe.coco[0], results, pipe.images.ids, pipe.classes.cat_ids, kind, pipe.task
            )
        return self._tables[kind]

    @cached_property
    def operating_point(self) -> dict:
        """Precision, recall and F1 at the case's conf and NMS IoU against the annotations."""
        pipe = self.pipe
        return operating_point(
            pipe.coco[0],
            self.deployed,
            pipe.classes.cat_ids,
            pipe.case.conf,
            iou_thr=pipe.thresholds["match_iou"],
            task=pipe.task,
        )


class PairRun:
    """A configuration's INT8 model against FP32 on the case's validation images."""

    def __init__(self, pipe, spec: ConfigSpec):  # pipe: the case's ``pipeline.CasePipeline``
        self.pipe, self.spec = pipe, spec
        self.fp32, self.int8 = pipe.run(None), pipe.run(spec)
        self._drops: dict[str, dict] = {}  # per kind scored: the paired bootstrap of its mAP drop

    @cached_property
    def parity(self) -> dict:
        """Detection parity at the case's conf, with its intervals (``evaluate.parity_report``)."""
        return parity_report(
            self.fp32.predictions, self.int8.predictions, score_thr=self.pipe.case.conf, th=self.pipe.thresholds
        )

    @cached_property
    def agreement(self) -> dict:
        """Agreement mAP with FP32's deployed detections as the ground truth, with its bootstrap interval."""
        pipe = self.pipe
        level = pipe.thresholds["decision_level"]
        return agreement_report(
            self.fp32.deployed, self.int8.predictions.dets, pipe.images, pipe.hw_nc[1], level, pipe.task
        )

    def map_drop(self, kind: str | None = None) -> dict:
        """Paired bootstrap of the FP32 - INT8 mAP50-95 drop (``bootstrap.paired_drop``) of the task's primary kind
        (boxes, oriented boxes), or of a further ``kind`` it is scored on (masks, keypoints)."""
        kind = kind or self.pipe.task.scored_on[0]
        if kind not in self._drops:
            tables = self.fp32.table(kind), self.int8.table(kind)
            self._drops[kind] = bootstrap.paired_drop(*tables, level=self.pipe.thresholds["decision_level"])
        return self._drops[kind]

    @cached_property
    def graph(self) -> dict:
        """Op counts of the INT8 model, its float Convs, and whether the head stayed float."""
        q = self.pipe.quantized(self.spec)
        model = onnx.load(q.output)
        counts = op_counts(model)
        return {
            "ops": counts,
            "float_convs": float_convs(model),
            "quantized_convs": quantized_convs(model),
            "head_found": bool(q.head_nodes),
            "head_float": bool(q.head_nodes) and head_is_float(model, q.head_nodes),
            "quantize_linear": counts.get("QuantizeLinear", 0),
            "dequantize_linear": counts.get("DequantizeLinear", 0),
        }

    def record(self) -> dict:
        """Every number of the pair, for results files and baselines: size; the task's own figures
        (``Task.pair_report``); a box task's parity and agreement on any validation images; with annotations also
        mAP, its CI95, AP by size and class, and F1."""
        pipe, q = self.pipe, self.pipe.quantized(self.spec)
        record = {
            "case": pipe.case.id,
            "config": self.spec.id,
            "ep": pipe.ep,
            "onnxruntime": compat.ORT_VERSION,
            "fp32_bytes": q.source_bytes,
            "int8_bytes": q.output_bytes,
            "compression": round(q.compression, 4),
            "quantize_seconds": round(q.seconds, 2),
            "evidence": pipe.evidence,
            "task": pipe.task.name,
            "ops": self.graph["ops"],
            "float_nodes": len(q.float_nodes),
            "notes": q.notes,
            "target_cpu": q.config.get("target_cpu"),
            "reduce_range": q.config.get("reduce_range"),
            "inputs": {
                "calibration": q.calibration,
                "eval_images": len(pipe.images.ids),
                "eval_skipped": len(pipe.images.skipped),
                "eval_size_mismatched": len(pipe.images.mismatched),
            },
            **pipe.task.pair_report(pipe, self.spec),
        }
        if pipe.task.uses_boxes:
            kept = ("map50_95", "map50", "ci95", "images", "fp32_detections")
            record["agreement"] = {k: self.agreement.get(k) for k in kept}
            record["parity"] = {k: v for k, v in self.parity.items() if k != "raw"}
        return {**record, **self._annotated()} if pipe.annotated else record

    def _annotated(self) -> dict:
        """The record's figures against the annotations: mAP of each kind with its drop's CI95, AP by size and
        class, the operating point."""
        pipe, fp32, int8, boot = self.pipe, self.fp32.scored["metrics"], self.int8.scored["metrics"], self.map_drop()
        out = {}
        for kind in pipe.task.scored_on[1:]:  # masks, keypoints: their mAP and its drop's CI95
            label = pipe.task.label(kind)
            if fp32.get(label) is not None:
                f, q = fp32[label]["map50_95"], int8[label]["map50_95"]
                ci95 = [round(v, 3) for v in self.map_drop(kind)["ci95"]]
                out[label] = {"fp32_map50_95": f, "int8_map50_95": q, "map_drop_pt": round(100 * (f - q), 3)}
                out[label]["map_drop_ci95"] = ci95
        points = {name: run.operating_point for name, run in (("fp32", self.fp32), ("int8", self.int8))}
        return {
            **out,
            "fp32_map50_95": fp32["map50_95"],
            "int8_map50_95": int8["map50_95"],
            "fp32_map50": fp32["map50"],
            "int8_map50": int8["map50"],
            "class_map": pipe.classes.how,
            "map_drop_pt": round(100 * (fp32["map50_95"] - int8["map50_95"]), 3),
            "fp32_ap_by_size": {k: fp32[k] for k in ("aps", "apm", "apl")},
            "int8_ap_by_size": {k: int8[k] for k in ("aps", "apm", "apl")},
            "nms": pipe.case.nms,
            "map_drop_ci95": [round(v, 3) for v in boot["ci95"]],
            "map_drop_bootstrap": {k: boot[k] for k in ("resamples", "seed", "images")},
            "fp32_per_class": fp32["per_class"],
            "int8_per_class": int8["per_class"],
            "operating_point": {
                "conf": pipe.case.conf,
                "iou": pipe.case.iou,
                **{name: {k: v for k, v in op.items() if k != "per_image"} for name, op in points.items()},
            },
        }
