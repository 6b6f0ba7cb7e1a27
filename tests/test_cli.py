"""The command line on the fixture and on tiny graphs: JSON outputs, saved detections, exit codes."""

import contextlib
import io
import json

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from quantkit.manifest import ConfigSpec


def test_eval_json_and_saved_detections_match_pycocotools(fixture_case, tmp_path, run_cli):
    dets = tmp_path / "dets.json"
    code, out, err = run_cli("eval", fixture_case.model, "--images", fixture_case.coco_images, "--ann",
                             fixture_case.coco_ann, "--json", "--detections", dets)
    assert code == 0, err
    stats = json.loads(out)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(fixture_case.coco_ann))
        evaluator = COCOeval(gt, gt.loadRes(str(dets)), "bbox")
        evaluator.params.maxDets = [1, 10, 300]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    assert abs(stats["map50_95"] - precision[precision > -1].mean()) < 1e-4
    assert abs(stats["map50"] - evaluator.stats[1]) < 1e-4
    assert stats["map50_95"] >= fixture_case.thresholds["min_fp32_map"]


def test_compare_prints_detection_parity(fixture_pipeline, fixture_case, run_cli):
    int8 = fixture_pipeline.model_path(ConfigSpec("static-qdq", "default"))
    code, out, err = run_cli("compare", fixture_case.model, int8, "--images", fixture_case.coco_images, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["recall"] > 0.85 and report["precision"] > 0.85 and report["int8_max_score"] <= 1.0
    assert report["collapsed_fraction"] <= 0.05
    assert set(report["raw"]) == {"box", "cls"} and report["images"] == 200


def test_quantize_json_is_one_object(tiny_model, calib_dir, tmp_path, run_cli):
    code, out, err = run_cli("quantize", tiny_model, "-o", tmp_path / "q.onnx", "--calib", calib_dir,
                             "--calibrate-method", "percentile", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["output"].endswith("q.onnx") and result["float nodes"] == len(result["float_nodes"]) > 0


def test_check_on_a_model_of_your_own(tiny_model, calib_dir, tmp_path, run_cli):
    """A tiny graph does not compress 3.3x: the recommended config fails the size gate -> exit 1."""
    code, out, err = run_cli("check", tiny_model, "--calib", calib_dir, "--out", tmp_path / "report")
    assert code == 1, err
    assert "size gate FAILED: compression" in out and "accuracy and parity were not measured" in out
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"report.md", "report.json", "sizes.png"}
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [r["model"] for r in report["rows"]][:2] == ["FP32 @ cpu", "INT8 static-qdq @ cpu"]
    assert all(r["peak memory MB"] > 0 for r in report["rows"])
    code, _, err = run_cli("check", tiny_model, "--out", tmp_path / "report2")
    assert code == 2 and "calibration" in err and not (tmp_path / "report2").exists()


def test_eval_maps_classes_by_name_not_by_sorted_ids(fixture_case, tmp_path, run_cli):
    """A Roboflow-style export: the dataset's name as category 0, real ids shifted by one. Matching
    by name scores the fixture as before (0.508), where sorted ids scored 0.0099 and hid every drop."""
    data = json.loads(fixture_case.coco_ann.read_text())
    shift = {c["id"]: i + 1 for i, c in enumerate(data["categories"])}
    data["categories"] = [{"id": 0, "name": "shapes-dataset"}] + [{**c, "id": shift[c["id"]]} for c in data["categories"]]
    for ann in data["annotations"]:
        ann["category_id"] = shift[ann["category_id"]]
    shifted = tmp_path / "roboflow.json"
    shifted.write_text(json.dumps(data))
    code, out, err = run_cli("eval", fixture_case.model, "--images", fixture_case.coco_images, "--ann", shifted, "--json")
    assert code == 0, err
    stats = json.loads(out)
    assert abs(stats["map50_95"] - 0.5083) < 1e-3 and stats["class_map"] == "names"
    assert any("shapes-dataset" in note for note in stats["notes"])

    for category in data["categories"]:
        category["name"] = f"class_{category['id']}"
    shifted.write_text(json.dumps(data))
    code, out, err = run_cli("eval", fixture_case.model, "--images", fixture_case.coco_images, "--ann", shifted)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "no overlap at all" in err and "--class-map" in err
