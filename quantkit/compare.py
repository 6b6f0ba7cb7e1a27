"""`quantkit compare`: an INT8 model against the FP32 model it was quantized from, on any images, through the same
pipeline and gate registry as the suite and `quantkit check` (the evidence, agreement and parity of a box task, the
task's own gates: masks, keypoints, a classifier's top-1 agreement and, on a folder per class, its accuracy)."""

from __future__ import annotations

from pathlib import Path

from . import gates
from .errors import DatasetError, ModelError
from .manifest import ConfigSpec, single_case
from .measure.evaluate import raw_outputs
from .model import inspect_model, load_model
from .pipeline import CasePipeline

INT8 = ConfigSpec("int8")  # the INT8 file given, in the pipeline's place of a quantized configuration


def run_compare(
    fp32_model: str | Path,
    int8_model: str | Path,
    images_dir: str | Path,
    ep: str = "cpu",
    imgsz=None,
    threads: int | None = None,
    progress: bool = True,
    conf: float = 0.25,
) -> tuple[dict, list[gates.GateResult]]:
    """The report (parity with its intervals, raw-output statistics and agreement of a box task; the task's own
    figures) and every accuracy gate's result, at the deployed confidence ``conf``."""
    fp32_model, int8_model = Path(fp32_model), Path(int8_model)
    manifest = single_case(fp32_model, val_images=images_dir, imgsz=imgsz)
    case = manifest.cases[0]
    case.conf = conf
    paths = {None: fp32_model, INT8.id: int8_model}
    pipe = CasePipeline(case, ep, threads=threads, progress=progress, model_paths=lambda s: paths[s and s.id])
    hw, nc = pipe.hw_nc
    int8_dims = inspect_model(load_model(int8_model), int8_model).input_shape[2:]
    if all(isinstance(d, int) for d in int8_dims) and tuple(int8_dims) != hw:
        raise ModelError(
            f"{fp32_model.name} runs at {hw[0]}x{hw[1]} but {int8_model.name} is fixed at "
            f"{int8_dims[0]}x{int8_dims[1]}: compare an INT8 model with the FP32 model it was quantized from"
        )
    if not pipe.images.ids:
        skipped = len(pipe.images.skipped)
        raise DatasetError(f"none of the {skipped} images in {images_dir} could be read: check the files")
    report = {"task": pipe.task.name}
    if pipe.task.uses_boxes:
        report.update(pipe.parity(INT8))
        report["raw"] = _raw_stats(pipe)
        report["agreement"] = pipe.agreement(INT8)
    report.update(images=len(pipe.images.ids), skipped=len(pipe.images.skipped))
    report.update(pipe.task.pair_report(pipe, INT8))
    case_id = f"{int8_model.name} vs {fp32_model.name} on {report['images']} images"
    th = manifest.thresholds_for(case, task=pipe.task.name)  # the table's, under the task's own (an OBB's agreement)
    return report, pipe.gate_results(INT8, th, case_id, "accuracy")


def _raw_stats(pipe: CasePipeline) -> dict:
    """Raw-output statistics per channel group of both models on the first images (``metrics.raw_output_stats``)."""
    from .measure.metrics import raw_output_stats

    fp32, int8 = (raw_outputs(pipe.run(s).runner(), pipe.images, pipe.hw_nc[1]) for s in (None, INT8))
    return raw_output_stats(fp32, int8)
