"""(fixtures) The trained segmentation and pose fixtures, through every case of fixtures/manifest.toml that
declares ``task = "segment"`` or ``"pose"`` (their val subsets): the default preset quantizes each with its
head float, INT8 keeps >= 90 % of FP32's detections, the mask / keypoint mAP drop is reported with its
CI95 and gated, and onnxruntime's defaults (``--preset naive``, slow) fail those gates. ``quantkit eval --json``
on each agrees with pycocotools run directly on the same predictions (slow). A case added to the manifest is
tested here without a code change.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from quantkit import gates, plugin
from quantkit.manifest import THRESHOLDS, ConfigSpec, load_manifest
from quantkit.pipeline import CasePipeline

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "fixtures" / "manifest.toml"
LABEL = {"segment": "mask", "pose": "keypoints"}
CASES = [c.id for c in load_manifest(MANIFEST).cases if c.task in LABEL]
STATIC = ConfigSpec("static-qdq", "default")


def case_of(case_id):
    return next(c for c in load_manifest(MANIFEST).cases if c.id == case_id)


@pytest.fixture(scope="module", params=CASES)
def task_pipe(request):
    """(task, the plugin's own pipeline of the case): the suite and these tests quantize and evaluate once."""
    case = case_of(request.param)
    return case.task, plugin.pipeline(request.config, case)


def test_default_preset_keeps_the_head_float_and_the_detections(task_pipe):
    task, pipe = task_pipe
    graph = pipe.graph(STATIC)
    assert pipe.case.task == task and pipe.predictions(None).family.task == task
    assert graph["head_found"] and graph["head_float"] and graph["quantized_convs"] > 50
    par = pipe.parity(STATIC)
    assert par["recall"] >= 0.9 and par["precision"] >= 0.9, par  # INT8 keeps >= 90 % of FP32's detections
    th = {**THRESHOLDS, **pipe.case.thresholds}
    results = pipe.task_map_gates(STATIC, th, pipe.case.id)
    assert [r.metric for r in results][:1] == [f"{LABEL[task]}_map50_95_drop_pt"]
    assert all(r.passed for r in results), gates.failures(results)
    assert "CI95 [" in results[0].message()
    record = pipe.record(STATIC)
    assert record["task"] == task and len(record[LABEL[task]]["map_drop_ci95"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASES)
def test_naive_preset_fails_the_task_gates(case_id, tmp_path):
    """(slow) onnxruntime's defaults quantize the head onto one scale with the box pixels: the class scores
    collapse, detections vanish, and the mask / keypoint mAP gate fails with them."""
    case = case_of(case_id)
    task = case.task
    pipe = CasePipeline(case, preset="naive", cache_dir=tmp_path)
    spec = ConfigSpec("naive", "naive")
    th = {**THRESHOLDS, **case.thresholds}
    failed = {
        r.metric
        for r in pipe.task_map_gates(spec, th, case.id) + gates.check_parity(pipe.parity(spec), th, case.id)
        if not r.passed
    }
    assert f"{LABEL[task]}_map50_95_drop_pt" in failed and "recall_of_fp32_detections" in failed, failed


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
