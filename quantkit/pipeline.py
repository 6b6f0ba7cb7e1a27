"""One case through the whole pipeline, each step done once: quantize -> run -> evaluate.

Used by the pytest plugin, `quantkit check`, `tune` and `compare`, so the pipeline is written once. The case's
inputs (its model, loaded once, its head and task, its validation images and labels) are here; the quantized models
come from ``quantization/cached.py`` (on disk, keyed by content hashes, safe under ``pytest -n``); what each model
and each configuration does on the images is a typed result computed once (``results.py``).
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable
from pathlib import Path

import onnx

from . import gates, heads, tasks
from .cache import default_cache_dir
from .errors import QuantkitError
from .heads import HeadFamily
from .manifest import THRESHOLDS, Case, ConfigSpec
from .measure.bench import latency_ratio
from .measure.evaluate import ImageSet, Predictions, annotated_sizes, coco_items, folder_items
from .measure.metrics import ClassMap, map_classes
from .model import ModelInfo, inspect_model, load_model, name_nodes, op_counts, resolve_imgsz
from .quantization.cached import QuantCache
from .quantization.calibration import split_folder
from .quantization.quantizer import QuantResult
from .quantization.rewrite import carries_rewrite, rewritten_copy
from .results import ModelRun, PairRun
from .tasks import Task


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
        self._runs: dict[str | None, ModelRun] = {}  # by config id (None: FP32)
        self._pairs: dict[str, PairRun] = {}  # by config id

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
            return ImageSet.load(
                self.coco[1], self.hw_nc[0], self.progress, annotated_sizes(self.coco[0]), fit=self.task.fit
            )
        if self.labelled:
            items = list(enumerate(p for p, _ in self.labelled))
            return ImageSet.load(items, self.hw_nc[0], self.progress, fit=self.task.fit)
        if self.case.val_images:
            return ImageSet.load(folder_items(self.case.val_images), self.hw_nc[0], self.progress, fit=self.task.fit)
        if self.holdout:
            return ImageSet.load(list(enumerate(self.holdout)), self.hw_nc[0], self.progress, fit=self.task.fit)
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
            fit=lambda: self.task.fit,
        )

    def quantized(self, spec: ConfigSpec) -> QuantResult:
        return self.models.quantized(spec)

    # -- run and evaluate ----------------------------------------------------------------------
    def model_path(self, spec: ConfigSpec | None) -> Path:
        """FP32 (``spec=None``) or the config's INT8 file; a ``model_paths`` given to the constructor decides first."""
        if self._model_paths is not None:
            return Path(self._model_paths(spec))
        return self.case.model if spec is None else Path(self.quantized(spec).output)

    def run(self, spec: ConfigSpec | None) -> ModelRun:
        """FP32's (``spec=None``) or the config's INT8 model's results on the case's images (``results.ModelRun``)."""
        key = spec.id if spec else None
        if key not in self._runs:
            self._runs[key] = ModelRun(self, spec)
        return self._runs[key]

    def pair(self, spec: ConfigSpec) -> PairRun:
        """The config's INT8 model against FP32 (``results.PairRun``)."""
        if spec.id not in self._pairs:
            self._pairs[spec.id] = PairRun(self, spec)
        return self._pairs[spec.id]

    def predictions(self, spec: ConfigSpec | None = None) -> Predictions:
        return self.run(spec).predictions

    def deployed(self, spec: ConfigSpec | None = None) -> dict:
        return self.run(spec).deployed

    def map(self, spec: ConfigSpec | None = None) -> dict:
        return self.run(spec).scored["metrics"]

    def operating_point(self, spec: ConfigSpec | None = None) -> dict:
        return self.run(spec).operating_point

    def map_bootstrap(self, spec: ConfigSpec, kind: str | None = None) -> dict:
        return self.pair(spec).map_drop(kind)

    def parity(self, spec: ConfigSpec) -> dict:
        return self.pair(spec).parity

    def agreement(self, spec: ConfigSpec) -> dict:
        return self.pair(spec).agreement

    def graph(self, spec: ConfigSpec) -> dict:
        return self.pair(spec).graph

    def record(self, spec: ConfigSpec) -> dict:
        return self.pair(spec).record()

    def map_gates(self, spec: ConfigSpec, th: dict, case_id: str) -> list[gates.GateResult]:
        """The INT8 mAP gates of ``spec`` (the drop with its CI95, resolution, small objects, worst class)."""
        return gates.map_drops(self.map(None), self.map(spec), th, case_id, self.map_bootstrap(spec), self.case.nms)

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
