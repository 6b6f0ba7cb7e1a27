"""Accuracy baselines end to end: save one from the fixture, then a degraded model under the same
case id must fail `--quantkit-compare` with the baseline gate's numbers; results files are written; a failing
run saves no baseline."""

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper


@pytest.mark.slow  # three nested pytest sessions on 60 val images (out of the default run; `pytest -m slow`)
def test_baseline_catches_a_degraded_model(fixture_case, tmp_path, run_suite):
    def suite(model, *extra, select="(record_and_compare or latency_ratio) and static-qdq"):
        return run_suite(
            tmp_path,
            "-k",
            select,
            "--quantkit-latency-threads",
            "1",
            "--quantkit-model",
            model,
            "--quantkit-calib",
            fixture_case.calib,
            "--quantkit-coco-images",
            fixture_case.coco_images,
            "--quantkit-coco-ann",
            fixture_case.coco_ann.with_name("annotations-first60.json"),
            *extra,
        )

    good, bad = tmp_path / "good" / "detector.onnx", tmp_path / "bad" / "detector.onnx"
    for path in (good, bad):
        path.parent.mkdir()
    shutil.copy(fixture_case.model, good)
    model = onnx.load(str(fixture_case.model))
    rng = np.random.default_rng(1)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim == 4 and w.shape[1] > 1:
            init.CopyFrom(
                numpy_helper.from_array((w + rng.normal(0, 0.3 * w.std(), w.shape)).astype(w.dtype), init.name)
            )
    onnx.save(model, str(bad))

    saved = suite(good, "--quantkit-save-baseline", "main", "--quantkit-results", tmp_path / "results")
    assert saved.returncode == 0, saved.stdout[-2000:]
    run = json.loads(next((tmp_path / ".benchmarks").glob("*/0001_main.json")).read_text())  # pytest-benchmark's
    assert sorted(b["name"] for b in run["benchmarks"]) == [f"detector/static-qdq/cpu/1t/{p}" for p in ("fp32", "int8")]
    baseline = run["benchmarks"][0]["extra_info"]["quantkit_record"]
    assert baseline["int8_map50_95"] > 0.3 and baseline["compression"] > 3.3 and baseline["verdict"] == "pass"
    results = list((tmp_path / "results").glob("*/detector--static-qdq--cpu.json"))
    assert len(results) == 1 and json.loads(results[0].read_text())["latency"]["ratio"] > 0

    same = suite(good, "--quantkit-compare", "main")
    assert same.returncode == 0, same.stdout[-2000:]
    worse = suite(bad, "--quantkit-compare", "main")
    assert worse.returncode == 1, worse.stdout[-2000:]
    assert "baseline gate FAILED: int8_map50_95_loss_pt" in worse.stdout and "(baseline " in worse.stdout

    # a failing run (onnxruntime's defaults) asked to save a baseline: nothing written, said why, non-zero
    naive = ("--quantkit-preset", "naive", "--quantkit-save-baseline", "broken")
    broken = suite(good, *naive, select="record_and_compare or int8_map_drop or latency_ratio")
    assert broken.returncode == 1, broken.stdout[-2000:]
    assert "baseline 'broken' NOT saved: 2 tests failed or were not decided" in broken.stdout, broken.stdout[-2000:]
    assert not list((tmp_path / ".benchmarks").glob("*/*_broken.json"))
