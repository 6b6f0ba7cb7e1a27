"""One case through the whole pipeline, each step done once: quantize -> run -> evaluate.

Used by the pytest plugin and by `quantkit check`, so the pipeline is written once. The quantized
models come from ``quantization/cached.py`` (on disk, keyed by content hashes, safe under ``pytest -n``);
everything here is computed in memory once per pipeline.
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable
from pathlib import Path

import onnx

from .measure import bootstrap
from . import compat, gates
from .measure.bench import latency_ratio
from .quantization.calibration import split_folder
from .errors import QuantkitError
from .measure.evaluate import (
    EVAL_IOU,
    ImageSet,
    Predictions,
    agreement_report,
    annotated_sizes,
    coco_items,
    folder_items,
    parity_report,
    predict,
    score,
)
from . import heads, tasks
from .heads import HeadFamily, head_is_float
from .manifest import THRESHOLDS, Case, ConfigSpec
from .measure.metrics import ClassMap, coco_results, map_classes, operating_point
from .model import (
    ModelInfo,
    float_convs,
    inspect_model,
    load_model,
    name_nodes,
    op_counts,
    quantized_convs,
    resolve_imgsz,
)
from .quantization.cached import QuantCache
from .quantization.quantizer import QuantResult
from .quantization.rewrite import carries_rewrite, rewritten_copy
from .cache import default_cache_dir
from .tasks import Task
from .measure.session import Runner


class CasePipeline:
    """Lazily computed, memoised results for one case on one execution provider."""

    def __init__(
        self,
        case: Case,
        ep: str = "cpu",
        cache_dir: Path | None = None,
        threads: int | None = None,
        preset: str | None = None,
        progress: bool = False,
        model_paths: Callable[[ConfigSpec | None], Path] | None = None,
    ):
        """``model_paths`` (spec or None for FP32 -> file) stands in for the quantizer, e.g. a planted model in a
        test."""
        self.case, self.ep, self.threads, self.progress = case, ep, threads, progress
        self.preset = preset  # forces every config onto one preset (e.g. 'naive')
        self.cache_dir = Path(cache_dir or default_cache_dir())
        self._model_paths = model_paths
        self._preds: dict[str, Predictions] = {}
        self._deployed: dict[str, dict] = {}  # detections at the case's conf/iou, per model
        self._maps: dict[str, dict] = {}
        self._tables: dict[str, bootstrap.MatchTable] = {}

    # -- inputs ------------------------------------------------------------------------------
    @cached_property
    def thresholds(self) -> dict:
        """The case's thresholds over the defaults (the policy numbers the measurements use: match IoU, level)."""
        return {**THRESHOLDS, **self.case.thresholds}

    @cached_property
    def fp32_model(self) -> onnx.ModelProto:
        """The case's model, loaded and checked once (nodes named as the quantizer names them)."""
        model = load_model(self.case.model)
        name_nodes(model)
        return model

    @cached_property
    def info(self) -> ModelInfo:
        return inspect_model(self.fp32_model, self.case.model)

    @cached_property
    def hw_nc(self) -> tuple[tuple[int, int], int | None]:
        return resolve_imgsz(self.info, self.case.imgsz, self.case.model), (len(self.info.names) or None)

    @cached_property
    def family(self) -> HeadFamily | None:
        """The FP32 model's head family, found once, by graph structure (None where no family finds it)."""
        head = heads.find(self.fp32_model)
        return heads.family(head.family) if head else None

    @cached_property
    def task(self) -> Task:
        """The model's task (``quantkit/tasks/``): its head's, else the case's declared one, else detect."""
        return tasks.get(self.family.task if self.family else self.case.task)

    @cached_property
    def labelled(self) -> list[tuple[Path, str]] | None:
        """Validation images the task labels by their folder (classification: one folder per class) with their
        labels, else None (detection tasks take labels from COCO annotations)."""
        if self.annotated or not self.case.val_images:
            return None
        return self.task.labelled_images(self.case.val_images)

    @cached_property
    def labels(self) -> list[str] | None:
        """The label of each validation image, in ``images``' order (None without ``labelled`` images)."""
        if self.labelled is None:
            return None
        return [self.labelled[i][1] for i in self.images.ids]

    @cached_property
    def coco(self):
        if not (self.case.coco_images and self.case.coco_ann):
            raise QuantkitError(
                f"case '{self.case.id}' has no coco_images/coco_ann: add them to evaluate mAP and parity"
            )
        return coco_items(self.case.coco_ann, self.case.coco_images)

    @cached_property
    def classes(self) -> ClassMap:
        """Class index -> category id: the case's class_map, else by the model's class names."""
        return map_classes(self.coco[0], self.info.names, self.case.class_map)

    @property
    def annotated(self) -> bool:
        return bool(self.case.coco_images and self.case.coco_ann)

    @cached_property
    def holdout(self) -> list[Path]:
        """Calibration images held out for validation: only when the case has neither annotated nor
        unlabelled validation images; calibration never uses them (``calibration.split_folder``)."""
        if self.annotated or self.case.val_images or not self.case.calib:
            return []
        return split_folder(self.case.calib, self.case.calib_count)

    @property
    def evidence(self) -> str | None:
        """What accuracy is judged on: "annotated" images (COCO annotations, or a folder per class), "unlabelled"
        images (agreement with FP32), or None."""
        if self.annotated or self.labelled:
            return "annotated"
        return "unlabelled" if self.case.val_images or self.holdout else None

    def evidence_text(self) -> str:
        """The verdict's words for the accuracy evidence, e.g. 'agreement with FP32 on 25 unlabelled images'."""
        if self.evidence is None:
            return "accuracy: NOT measured"
        n = len(self.images.ids)
        if self.labelled:
            return f"accuracy: {self.task.name} on {n} images labelled by their folders in {self.case.val_images.name}/"
        if self.evidence == "annotated":
            return f"accuracy: annotated mAP on {n} images"
        where = f"held out of {self.case.calib.name}/" if self.holdout else f"in {self.case.val_images.name}/"
        return f"accuracy: agreement with FP32 on {n} unlabelled images ({where})"

    @cached_property
    def images(self) -> ImageSet:
        """The validation images: the annotated ones, else the unlabelled folder, else those held out of calib."""
        if self.annotated:
            return ImageSet.load(self.coco[1], self.hw_nc[0], self.progress, annotated_sizes(self.coco[0]))
        if self.labelled:
            return ImageSet.load(list(enumerate(p for p, _ in self.labelled)), self.hw_nc[0], self.progress)
        if self.case.val_images:
            return ImageSet.load(folder_items(self.case.val_images), self.hw_nc[0], self.progress)
        if self.holdout:
            return ImageSet.load(list(enumerate(self.holdout)), self.hw_nc[0], self.progress)
        raise QuantkitError(
            f"case '{self.case.id}' has no validation images: pass --val-images DIR, annotated images "
            "(--coco-images/--coco-ann), or a --calib folder of two or more images to hold some out"
        )

    # -- quantize ----------------------------------------------------------------------------
    @cached_property
    def models(self) -> QuantCache:
        """The case's INT8 models, quantized once per cache key (``quantization/cached.py``)."""
        return QuantCache(
            self.case,
            self.cache_dir,
            self.preset,
            self.progress,
            holdout=lambda: self.holdout,
            hw=lambda: self.hw_nc[0],
        )

    def quantized(self, spec: ConfigSpec) -> QuantResult:
        return self.models.quantized(spec)

    # -- run and evaluate ----------------------------------------------------------------------
    def model_path(self, spec: ConfigSpec | None) -> Path:
        """FP32 (``spec=None``) or the config's INT8 file; a ``model_paths`` given to the constructor decides first."""
        if self._model_paths is not None:
            return Path(self._model_paths(spec))
        return self.case.model if spec is None else Path(self.quantized(spec).output)

    def predictions(self, spec: ConfigSpec | None = None) -> Predictions:
        """Detections of FP32 (``spec=None``) or the config's INT8 model on the case's images."""
        key = spec.id if spec else "fp32"
        if key not in self._preds:
            runner = Runner(self.model_path(spec), self.ep, self.threads)
            self._preds[key] = predict(runner, self.images, self.hw_nc[1], progress=self.progress, nms=self.case.nms)
            family = self._preds[key].family
            if self.case.task and family is not None and family.task != self.case.task:
                raise QuantkitError(
                    f"case '{self.case.id}' declares task = \"{self.case.task}\" but {self.model_path(spec).name} "
                    f"is a {family.task} model ({family.covers}): fix the case's task or its model"
                )
        return self._preds[key]

    def map(self, spec: ConfigSpec | None = None) -> dict:
        key = spec.id if spec else "fp32"
        if key not in self._maps:
            scored = score(self.coco[0], self.predictions(spec), self.images, self.classes)
            self._maps[key] = scored["metrics"]
            if scored["evaluator"] is not None:  # the bootstrap reuses these per-image matches
                self._tables[key] = bootstrap.MatchTable.from_evaluator(scored["evaluator"], self.images.ids)
            for kind, evaluator in scored["evaluators"].items():  # the task's further kinds: masks, keypoints
                if evaluator is not None:
                    self._tables[f"{key}@{kind}"] = bootstrap.MatchTable.from_evaluator(evaluator, self.images.ids)
        return self._maps[key]

    def map_bootstrap(self, spec: ConfigSpec, kind: str | None = None) -> dict:
        """Paired bootstrap of the FP32 - INT8 mAP50-95 drop over the case's images (``bootstrap.paired_drop``)
        of the task's primary kind (boxes, oriented boxes), or of a further ``kind`` it is scored on (segm,
        keypoints)."""
        task, tables = self.task, []
        primary = task.scored_on[0]
        kind = kind or primary
        for key, s in (("fp32", None), (spec.id, spec)):
            self.map(s)
            key = key if kind == primary else f"{key}@{kind}"
            if key not in self._tables:  # no detections at all: matches against the annotations alone
                results = coco_results(self.predictions(s).dets, self.classes.cat_ids, kind, task)
                self._tables[key] = bootstrap.MatchTable.from_results(
                    self.coco[0], results, self.images.ids, self.classes.cat_ids, kind, task
                )
            tables.append(self._tables[key])
        return bootstrap.paired_drop(*tables, level=self.thresholds["decision_level"])

    def map_gates(self, spec: ConfigSpec, th: dict, case_id: str) -> list[gates.GateResult]:
        """The INT8 mAP gates of ``spec`` (the drop with its CI95, resolution, small objects, worst class)."""
        return gates.map_drops(self.map(None), self.map(spec), th, case_id, self.map_bootstrap(spec), self.case.nms)

    def deployed(self, spec: ConfigSpec | None = None) -> dict:
        """Detections at the case's conf and NMS IoU, as deployed: the evaluation's, filtered, where the
        IoU is the evaluation's; decoded again at that IoU otherwise."""
        key = spec.id if spec else "fp32"
        if key not in self._deployed:
            if self.case.iou == EVAL_IOU:
                conf = self.case.conf
                self._deployed[key] = {i: d.above(conf) for i, d in self.predictions(spec).dets.items()}
            else:
                self._deployed[key] = predict(
                    Runner(self.model_path(spec), self.ep, self.threads),
                    self.images,
                    self.hw_nc[1],
                    self.case.conf,
                    self.progress,
                    self.case.iou,
                    self.case.nms,
                ).dets
        return self._deployed[key]

    def gate_results(
        self, spec: ConfigSpec | None, th: dict, case_id: str, *tags: str, exclude=(), given: dict | None = None
    ) -> list[gates.GateResult]:
        """The registered gates carrying any of ``tags`` (none of ``exclude``) on ``spec`` (None: the case's own),
        each whose needs the case meets (``gates.run``); ``given``: measurements made by the caller (timing)."""
        return gates.run(gates.Target(self, spec, th, case_id, given or {}), *tags, exclude=exclude)

    def accuracy_gates(self, spec: ConfigSpec, th: dict, case_id: str) -> list[gates.GateResult]:
        """Every accuracy gate the case's evidence allows (those tagged "accuracy"): the evidence counted,
        agreement with FP32 and detection parity on any validation images; with annotations also the FP32 floor,
        the mAP and F1 gates. No validation images at all is one failed gate: accuracy is never passed unmeasured."""
        return self.gate_results(spec, th, case_id, "accuracy")

    def operating_point(self, spec: ConfigSpec | None = None) -> dict:
        """Precision, recall and F1 at the case's conf and NMS IoU against the annotations."""
        key = (spec.id if spec else "fp32") + "@op"
        if key not in self._maps:
            self._maps[key] = operating_point(
                self.coco[0],
                self.deployed(spec),
                self.classes.cat_ids,
                self.case.conf,
                iou_thr=self.thresholds["match_iou"],
                task=self.task,
            )
        return self._maps[key]

    def agreement(self, spec: ConfigSpec) -> dict:
        """Agreement mAP of the INT8 model with FP32 (``metrics.agreement_map``: FP32's detections at the
        case's conf are the ground truth) on the validation images, with its bootstrap CI95."""
        key = spec.id + "@agreement"
        if key not in self._maps:
            self._maps[key] = agreement_report(
                self.deployed(None),
                self.predictions(spec).dets,
                self.images,
                self.hw_nc[1],
                self.thresholds["decision_level"],
                self.task,
            )
        return self._maps[key]

    def parity(self, spec: ConfigSpec) -> dict:
        """Detection parity of the config's INT8 with FP32 at the case's conf, with its intervals (computed once)."""
        key = spec.id + "@parity"
        if key not in self._maps:
            self._maps[key] = parity_report(
                self.predictions(None), self.predictions(spec), score_thr=self.case.conf, th=self.thresholds
            )
        return self._maps[key]

    def graph(self, spec: ConfigSpec) -> dict:
        """Op counts of the INT8 model, its float Convs, and whether the head stayed float."""
        q = self.quantized(spec)
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

    def latency_gate(self, spec: ConfigSpec, threads: int, th: dict, case_id: str) -> tuple[gates.GateResult, dict]:
        """FP32 and INT8 timed interleaved at ``threads`` intra-op threads, gated by the CPU class's
        threshold (retried once when over it: ``gates.latency_with_retry``). The measurement that decided
        carries every round's seconds under ``samples`` (fp32, int8)."""
        int8, fp32 = self.model_path(spec), self.fp32_reference(spec)

        def measure(rounds: int) -> dict:
            samples: dict[str, list[float]] = {}
            return {**latency_ratio(fp32, int8, self.hw_nc[0], self.ep, threads, rounds, samples), "samples": samples}

        def check(measured: dict) -> gates.GateResult:
            (result,) = self.gate_results(spec, th, case_id, "latency", given={"timing": measured})
            return result

        result, measured = gates.latency_with_retry(measure, check, th)
        if fp32 != self.case.model:
            result.note += "; FP32 timed with the same Softmax rewrite as the INT8 model"
        return result, measured

    def fp32_reference(self, spec: ConfigSpec) -> Path:
        """The FP32 model INT8 is timed against: the case's model, with the Softmax rewrite where the INT8
        model carries it, so the ratio is what quantization does (quantization/rewrite.py)."""
        return (carries_rewrite(self.model_path(spec)) and self._rewritten_fp32) or self.case.model

    @cached_property
    def _rewritten_fp32(self) -> Path | None:
        return rewritten_copy(self.case.model, self.cache_dir)

    @cached_property
    def fp32_ops(self) -> dict[str, int]:
        return op_counts(self.fp32_model)

    @cached_property
    def fp32_conv_names(self) -> set[str]:
        return {n.name for n in self.fp32_model.graph.node if n.op_type == "Conv"}

    def record(self, spec: ConfigSpec) -> dict:
        """Every number of one (case, config), for results files and baselines: size; a box task's parity and
        agreement on any validation images, with annotations also mAP, its CI95, AP by size and class, and F1; the
        task's own figures (``Task.pair_report``: a classifier's top-1 agreement and accuracy)."""
        q = self.quantized(spec)
        record = {
            "case": self.case.id,
            "config": spec.id,
            "ep": self.ep,
            "onnxruntime": compat.ORT_VERSION,
            "fp32_bytes": q.source_bytes,
            "int8_bytes": q.output_bytes,
            "compression": round(q.compression, 4),
            "quantize_seconds": round(q.seconds, 2),
            "evidence": self.evidence,
            "task": self.task.name,
            "ops": self.graph(spec)["ops"],
            "float_nodes": len(q.float_nodes),
            "notes": q.notes,
            "target_cpu": q.config.get("target_cpu"),
            "reduce_range": q.config.get("reduce_range"),
            "inputs": {
                "calibration": q.calibration,
                "eval_images": len(self.images.ids),
                "eval_skipped": len(self.images.skipped),
                "eval_size_mismatched": len(self.images.mismatched),
            },
        }
        record.update(self.task.pair_report(self, spec))
        if self.task.uses_boxes:
            agreement, kept = self.agreement(spec), ("map50_95", "map50", "ci95", "images", "fp32_detections")
            record["agreement"] = {k: agreement.get(k) for k in kept}
            record["parity"] = {k: v for k, v in self.parity(spec).items() if k != "raw"}
        if not self.annotated:
            return record
        fp32, int8, boot = self.map(None), self.map(spec), self.map_bootstrap(spec)
        for kind in self.task.scored_on[1:]:  # masks, keypoints: their mAP and its drop's CI95
            label = self.task.label(kind)
            if fp32.get(label) is not None:
                drop = self.map_bootstrap(spec, kind)
                record[label] = {
                    "fp32_map50_95": fp32[label]["map50_95"],
                    "int8_map50_95": int8[label]["map50_95"],
                    "map_drop_pt": round(100 * (fp32[label]["map50_95"] - int8[label]["map50_95"]), 3),
                    "map_drop_ci95": [round(v, 3) for v in drop["ci95"]],
                }
        return {
            **record,
            "fp32_map50_95": fp32["map50_95"],
            "int8_map50_95": int8["map50_95"],
            "fp32_map50": fp32["map50"],
            "int8_map50": int8["map50"],
            "class_map": self.classes.how,
            "map_drop_pt": round(100 * (fp32["map50_95"] - int8["map50_95"]), 3),
            "fp32_ap_by_size": {k: fp32[k] for k in ("aps", "apm", "apl")},
            "int8_ap_by_size": {k: int8[k] for k in ("aps", "apm", "apl")},
            "nms": self.case.nms,
            "map_drop_ci95": [round(v, 3) for v in boot["ci95"]],
            "map_drop_bootstrap": {k: boot[k] for k in ("resamples", "seed", "images")},
            "fp32_per_class": fp32["per_class"],
            "int8_per_class": int8["per_class"],
            "operating_point": {
                "conf": self.case.conf,
                "iou": self.case.iou,
                **{
                    name: {k: v for k, v in self.operating_point(s).items() if k != "per_image"}
                    for name, s in (("fp32", None), ("int8", spec))
                },
            },
        }
