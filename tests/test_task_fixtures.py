"""(fixtures) The trained fixtures beyond the YOLOv8 detector: every case of fixtures/manifest.toml whose head
is another box family (YOLO26 one-to-many and end-to-end, segmentation, pose, oriented boxes). The default preset
quantizes each with its head float and INT8 keeps >= 90 % of FP32's detections (segment / pose: the mask /
keypoint mAP drop reported with its CI95 and gated); onnxruntime's defaults (``--preset naive``, slow) fail those gates.
``quantkit eval --json`` on each segment / pose case agrees with pycocotools run directly on the same predictions
(slow). A case added to the manifest is tested here without a code change.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from quantkit import gates, heads, plugin, tasks
from quantkit.heads import dfl_detect
from quantkit.model import name_nodes
from quantkit.manifest import THRESHOLDS, ConfigSpec, load_manifest
from quantkit.pipeline import CasePipeline

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "fixtures" / "manifest.toml"
LABEL = {"segment": "mask", "pose": "keypoints"}
CASES = [c.id for c in load_manifest(MANIFEST).cases if c.task in LABEL]


def _family(model: Path) -> str:
    proto = onnx.load(str(model))
    name_nodes(proto)
    return heads.find(proto).family


FAMILY_CASES = [  # box heads but YOLOv8 / YOLO11's (classification: test_classify.py); manifest marks carried over
    pytest.param(c.id, marks=[getattr(pytest.mark, m) for m in c.marks], id=c.id)
    for c in load_manifest(MANIFEST).cases
    if _family(c.model) != dfl_detect.FAMILY.name and tasks.get(heads.family(_family(c.model)).task).uses_boxes
]
STATIC = ConfigSpec("static-qdq", "default")


def case_of(case_id):
    return next(c for c in load_manifest(MANIFEST).cases if c.id == case_id)


@pytest.fixture(scope="module", params=FAMILY_CASES)
def family_pipe(request):
    """The plugin's own pipeline of the case: the suite and these tests quantize and evaluate once."""
    return plugin.pipeline(request.config, case_of(request.param))


def _accuracy_metric(task: str | None) -> str:
    """The mAP drop metric a broken head fails: the mask / keypoint one where the model has one, else the box one."""
    return f"{LABEL[task]}_map50_95_drop_pt" if task in LABEL else "map50_95_drop_pt"


def test_default_preset_keeps_the_head_float_and_the_detections(family_pipe):
    pipe = family_pipe
    graph, family = pipe.graph(STATIC), pipe.predictions(None).family
    assert pipe.case.task in (None, family.task) and _family(pipe.case.model) != dfl_detect.FAMILY.name
    assert graph["head_found"] and graph["head_float"] and graph["quantized_convs"] > 50
    par = pipe.parity(STATIC)
    assert par["recall"] >= 0.9 and par["precision"] >= 0.9, par  # INT8 keeps >= 90 % of FP32's detections
    th = {**THRESHOLDS, **pipe.case.thresholds}
    results = pipe.gate_results(STATIC, th, pipe.case.id, "task mAP") or pipe.map_gates(STATIC, th, pipe.case.id)
    assert [r.metric for r in results][:1] == [_accuracy_metric(pipe.case.task)]
    assert all(r.passed for r in results), gates.failures(results)
    assert "CI95 [" in results[0].message()
    record = pipe.record(STATIC)
    assert record["task"] == family.task
    assert len((record[LABEL[family.task]] if family.task in LABEL else record)["map_drop_ci95"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("case_id", FAMILY_CASES)
def test_naive_preset_fails_the_gates(case_id, tmp_path):
    """(slow) onnxruntime's defaults quantize the head onto one scale with the box pixels: the class scores
    collapse, detections vanish, and the mAP gate (mask / keypoint where the model has one) fails with them."""
    case = case_of(case_id)
    pipe = CasePipeline(case, preset="naive", cache_dir=tmp_path)
    spec = ConfigSpec("naive", "naive")
    th = {**THRESHOLDS, **case.thresholds}
    maps = pipe.gate_results(spec, th, case.id, "task mAP") or pipe.map_gates(spec, th, case.id)
    failed = {r.metric for r in maps + gates.check_parity(pipe.parity(spec), th, case.id) if not r.passed}
    assert _accuracy_metric(case.task) in failed and "recall_of_fp32_detections" in failed, failed


def direct_map(ann, results, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        ev.params.imgIds = sorted(gt.getImgIds())
        ev.params.maxDets = [1, 10, 300]
        if iou_type == "keypoints":
            ev.params.kpt_oks_sigmas = np.full(5, 1 / 5)
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][:, :, :, 0, -1]
    return float(p[p > -1].mean())


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASES)
def test_eval_json_matches_pycocotools_on_the_fixture(case_id, tmp_path, run_cli):
    """(slow: a second FP32 run, 5-10 s a fixture; tests/test_tasks.py holds the same on tiny graphs by default)"""
    case = case_of(case_id)
    task = case.task
    code, out, err = run_cli(
        "eval",
        case.model,
        "--images",
        case.coco_images,
        "--ann",
        case.coco_ann,
        "--json",
        "--detections",
        tmp_path / "d.json",
    )
    assert code == 0, err
    stats, dets = json.loads(out), json.loads((tmp_path / "d.json").read_text())
    boxes = [{k: d[k] for k in ("image_id", "category_id", "bbox", "score")} for d in dets]
    assert stats["map50_95"] == pytest.approx(direct_map(case.coco_ann, boxes, "bbox"), abs=1e-12)
    if task == "segment":
        direct = direct_map(case.coco_ann, [{k: v for k, v in d.items() if k != "bbox"} for d in dets], "segm")
    else:
        direct = direct_map(case.coco_ann, dets, "keypoints")
    assert stats[LABEL[task]]["map50_95"] == pytest.approx(direct, abs=1e-12)
    assert 0.05 < direct < 0.99, direct  # a figure that can disagree (the pose fixture's keypoint mAP is 0.13)
