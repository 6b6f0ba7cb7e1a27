"""COCO mAP against pycocotools run directly, parity of FP32 vs INT8 detections, raw-output stats."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from quantkit.heads import Detections
from quantkit.errors import DatasetError, ModelError
from quantkit.measure.metrics import (
    COCO80_TO_91,
    category_names,
    map_classes,
    coco_map,
    coco_results,
    load_coco,
    operating_point,
    parity,
    raw_output_stats,
)

VAL_ANNOTATIONS = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "val" / "annotations.json"


@pytest.fixture(scope="module")
def gt():
    return load_coco(VAL_ANNOTATIONS)


def gt_detections(gt, cat_ids, image_ids=None):
    """Ground truth as detections with score 1: a perfect detector."""
    dets = {}
    for image_id in image_ids or gt.getImgIds():
        anns = gt.loadAnns(gt.getAnnIds(imgIds=image_id))
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        classes = np.array([cat_ids.index(a["category_id"]) for a in anns], np.int64)
        dets[image_id] = Detections(boxes, np.ones(len(anns), np.float32), classes)
    return dets


def perturbed_detections(gt, cat_ids, seed=0):
    """Jittered GT boxes, ~20% dropped, wrong-class and random false positives, random scores."""
    rng = np.random.default_rng(seed)
    dets = {}
    for image_id, perfect in gt_detections(gt, cat_ids).items():
        keep = rng.random(len(perfect)) > 0.2
        boxes, classes = perfect.boxes[keep], perfect.classes[keep]
        size = np.repeat(boxes[:, 2:] - boxes[:, :2], 2, axis=0).reshape(-1, 4)
        boxes = boxes + rng.normal(0, 0.08, boxes.shape) * size
        n_fp = int(rng.integers(0, 4))
        xy = rng.uniform(0, 300, (n_fp, 2))
        fp_boxes = np.hstack([xy, xy + rng.uniform(10, 120, (n_fp, 2))])
        dup = perfect.boxes[rng.integers(0, len(perfect), 1)] if len(perfect) else np.zeros((0, 4))
        boxes = np.vstack([boxes, fp_boxes, dup]).astype(np.float32)
        classes = np.concatenate([classes, rng.integers(0, len(cat_ids), n_fp + len(dup))])
        dets[image_id] = Detections(boxes, rng.uniform(0.01, 1.0, len(boxes)).astype(np.float32), classes)
    return dets


def direct_cocoeval(ann_path, results_path, image_ids, max_dets):
    """pycocotools the documented way: COCO(file), loadRes(file), COCOeval."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(ann_path))
        coco_dt = coco_gt.loadRes(str(results_path))
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.imgIds = image_ids
        evaluator.params.maxDets = max_dets
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def test_coco_map_equals_pycocotools(gt, tmp_path):
    cat_ids = map_classes(gt).cat_ids
    dets = perturbed_detections(gt, cat_ids)
    results = coco_results(dets, cat_ids)
    results_path = tmp_path / "results.json"
    results_path.write_text(json.dumps(results))
    image_ids = sorted(gt.getImgIds())[::2]

    ours = coco_map(gt, results, image_ids)

    direct = direct_cocoeval(VAL_ANNOTATIONS, results_path, image_ids, [1, 10, 300])
    assert ours["map50"] == pytest.approx(direct.stats[1], abs=1e-4)
    assert ours["map75"] == pytest.approx(direct.stats[2], abs=1e-4)
    assert ours["ar300"] == pytest.approx(direct.stats[8], abs=1e-4)
    # pycocotools' summarize() reads AP@[.5:.95] at a hard-coded maxDets=100: with [1, 10, 300] it is -1.
    assert direct.stats[0] == -1
    # With at most 100 detections per image, 100 and 300 detections give the same AP: compare to the default run.
    assert max(len(d) for d in dets.values()) <= 100
    default = direct_cocoeval(VAL_ANNOTATIONS, results_path, image_ids, [1, 10, 100])
    assert ours["map50_95"] == pytest.approx(default.stats[0], abs=1e-4)
    assert 0.2 < ours["map50_95"] < 0.9  # the perturbation leaves a mid-range score, not a trivial 0 or 1
    assert ours["images"] == len(image_ids) and ours["detections"] == len(results)


def test_coco_map_counts_detections_beyond_100(gt):
    """300 max detections per image: a true positive ranked below 100 false positives still counts."""
    cat_ids = map_classes(gt).cat_ids
    image_id = gt.getImgIds()[0]
    perfect = gt_detections(gt, cat_ids, [image_id])[image_id]
    junk = np.tile(np.array([[0, 0, 2, 2]], np.float32), (150, 1))
    scores = np.r_[np.full(150, 0.9), np.full(len(perfect), 0.5)].astype(np.float32)
    dets = Detections(np.vstack([junk, perfect.boxes]), scores, np.r_[np.zeros(150, np.int64), perfect.classes])
    result = coco_map(gt, coco_results({image_id: dets}, cat_ids), [image_id])
    assert result["ar300"] == pytest.approx(1.0)
    assert result["map50_95"] > 0


def test_perfect_detections_give_map_one(gt):
    cat_ids = map_classes(gt).cat_ids
    result = coco_map(gt, coco_results(gt_detections(gt, cat_ids), cat_ids), gt.getImgIds())
    for key in ("map50_95", "map50", "map75", "ar300"):
        assert result[key] == pytest.approx(1.0, abs=1e-6)


def test_empty_results_give_zero(gt):
    result = coco_map(gt, [], gt.getImgIds())
    assert result == {
        "map50_95": 0.0,
        "map50": 0.0,
        "map75": 0.0,
        "ar300": 0.0,
        "aps": 0.0,
        "apm": 0.0,
        "apl": 0.0,
        "per_class": {c["name"]: 0.0 for c in gt.dataset["categories"]},
        "images": len(gt.getImgIds()),
        "detections": 0,
    }


def test_per_class_ap_is_keyed_by_category_name(gt):
    cat_ids = map_classes(gt).cat_ids
    dets = gt_detections(gt, cat_ids)
    dets = {
        i: Detections(d.boxes, d.scores, d.classes)
        if i % 2
        else Detections(d.boxes[d.classes != 3], d.scores[d.classes != 3], d.classes[d.classes != 3])
        for i, d in dets.items()
    }
    per_class = coco_map(gt, coco_results(dets, cat_ids), gt.getImgIds())["per_class"]
    assert set(per_class) == {"circle", "rectangle", "triangle", "star", "ring", "cross"}
    assert per_class["circle"] == pytest.approx(1.0) and 0.3 < per_class["star"] < 0.7  # star missed on half the images
    twins = coco_with([{"id": 1, "name": "a"}, {"id": 2, "name": "a"}, {"id": 3, "name": "b"}, {"id": 4}])
    assert category_names(twins, [1, 2, 3, 4]) == {1: "a (1)", 2: "a (2)", 3: "b", 4: "4"}


def test_operating_point_precision_recall_f1(gt):
    cat_ids = map_classes(gt).cat_ids
    image_ids = gt.getImgIds()[:30]
    perfect = gt_detections(gt, cat_ids, image_ids)
    n_gt = sum(len(d) for d in perfect.values())
    op = operating_point(gt, perfect, cat_ids, 0.25)
    per_image = op.pop("per_image")
    assert op == {
        "conf": 0.25,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "matched": n_gt,
        "detections": n_gt,
        "annotations": n_gt,
    }
    assert per_image["matched"] == per_image["annotations"] == [len(d) for d in perfect.values()]
    # half the boxes scored below conf, one wrong-class duplicate of each kept box: P 1/2, R about 1/2
    edited = {}
    for i, d in perfect.items():
        scores = np.where(np.arange(len(d)) % 2 == 0, 0.9, 0.1).astype(np.float32)
        wrong = (d.classes + 1) % len(cat_ids)
        edited[i] = Detections(np.vstack([d.boxes, d.boxes]), np.r_[scores, scores], np.r_[d.classes, wrong])
    op = operating_point(gt, edited, cat_ids, 0.25)
    kept = sum((len(d) + 1) // 2 for d in perfect.values())
    assert (op["matched"], op["detections"], op["annotations"]) == (kept, 2 * kept, n_gt)
    assert op["f1"] == pytest.approx(2 * 0.5 * (kept / n_gt) / (0.5 + kept / n_gt))
    assert operating_point(gt, edited, cat_ids, 0.05)["recall"] == 1.0  # a lower conf keeps them all
    nothing = operating_point(gt, {i: Detections.empty() for i in image_ids}, cat_ids, 0.25)
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (None, 0.0, 0.0)


def test_operating_point_matches_greedily_by_score_one_to_one(gt):
    image_id = gt.getImgIds()[0]
    cat_ids = map_classes(gt).cat_ids
    truth = gt_detections(gt, cat_ids, [image_id])[image_id]
    box, cls = truth.boxes[:1], truth.classes[:1]
    twice = Detections(np.vstack([box + 1, box]), np.array([0.9, 0.5], np.float32), np.r_[cls, cls])
    op = operating_point(gt, {image_id: twice}, cat_ids, 0.25)
    assert op["matched"] == 1 and op["detections"] == 2 and op["precision"] == 0.5


def test_only_given_images_are_evaluated(gt):
    cat_ids = map_classes(gt).cat_ids
    ids = sorted(gt.getImgIds())
    detected, missed = ids[:20], ids[20:40]
    results = coco_results(gt_detections(gt, cat_ids, detected), cat_ids)
    assert coco_map(gt, results, detected)["map50_95"] == pytest.approx(1.0)
    assert coco_map(gt, results, detected + missed)["map50_95"] < 0.8
    assert coco_map(gt, results, missed)["map50_95"] == 0.0


def test_coco_map_does_not_modify_results(gt):
    cat_ids = map_classes(gt).cat_ids
    results = coco_results(gt_detections(gt, cat_ids, gt.getImgIds()[:3]), cat_ids)
    before = json.dumps(results)
    coco_map(gt, results, gt.getImgIds()[:3])
    assert json.dumps(results) == before


def test_unknown_category_raises(gt):
    image_id = gt.getImgIds()[0]
    results = [
        {"image_id": image_id, "category_id": 99, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": image_id, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
    ]
    with pytest.raises(DatasetError, match=r"\[99\]"):
        coco_map(gt, results, [image_id])


def test_unknown_image_ids_raise(gt):
    with pytest.raises(DatasetError, match="123456"):
        coco_map(gt, [], [123456])
    results = [{"image_id": 654321, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
    with pytest.raises(DatasetError, match="654321"):
        coco_map(gt, results, gt.getImgIds())


def test_missing_annotation_file_raises(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(DatasetError, match="nope.json"):
        load_coco(missing)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a COCO annotations object"),
        ('{"images": [], "categories": []}', "'annotations'"),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1}],'
            ' "annotations": [{"id": 1, "image_id": 1, "category_id": 1}]}',
            r"annotations\[0\] lacks bbox",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1}],'
            ' "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}]}',
            r"is not \[x, y, width, height\]",
        ),
        ('{"images": [{"id": 1}], "annotations": [], "categories": []}', r"images\[0\] lacks file_name"),
    ],
)
def test_bad_annotation_file_raises(tmp_path, content, expected):
    path = tmp_path / "ann.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=expected) as info:
        load_coco(path)
    assert "ann.json" in str(info.value) and "\n" not in str(info.value)


def test_missing_iscrowd_and_area_are_filled_as_pycocotools_does(gt, tmp_path):
    """iscrowd 0 and area = w*h, as loadRes fills them: the same mAP as the complete file."""
    data = json.loads(VAL_ANNOTATIONS.read_text())
    for ann in data["annotations"]:
        del ann["iscrowd"], ann["area"]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    stripped = load_coco(path)
    first = stripped.dataset["annotations"][0]
    assert first["iscrowd"] == 0 and first["area"] == first["bbox"][2] * first["bbox"][3]
    results = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": [v + 1 for v in a["bbox"]],
            "score": 0.5 + (a["id"] % 7) / 20,
        }
        for a in data["annotations"][::2]
    ]
    assert (
        0 < coco_map(stripped, results, gt.getImgIds())["map50_95"] == coco_map(gt, results, gt.getImgIds())["map50_95"]
    )


def test_load_coco_is_silent(capsys):
    load_coco(VAL_ANNOTATIONS)
    assert capsys.readouterr().out == ""


def test_explicit_maps_and_sorted_ids(gt):
    assert map_classes(gt).cat_ids == [1, 3, 7, 12, 20, 31]
    assert map_classes(gt, None, {1: 7, 0: 3}).cat_ids == [3, 7]
    assert map_classes(gt, None, [31, 1]).cat_ids == [31, 1]
    with pytest.raises(DatasetError, match=r"\[1\]"):
        map_classes(gt, None, {0: 1, 2: 3})


NAMES = {0: "circle", 1: "rectangle", 2: "triangle", 3: "star", 4: "ring", 5: "cross"}


def coco_with(categories):
    gt = COCO()
    gt.dataset = {"images": [], "annotations": [], "categories": categories}
    gt.createIndex()
    return gt


def test_classes_map_by_name_ignoring_case_space_and_extra_categories(gt):
    assert map_classes(gt, NAMES).cat_ids == [1, 3, 7, 12, 20, 31]
    # a Roboflow-style export: the dataset's name as category 0, real classes shifted by one, other case
    roboflow = coco_with(
        [{"id": 0, "name": "shapes"}] + [{"id": i + 1, "name": f" {n.upper()} "} for i, n in NAMES.items()]
    )
    mapped = map_classes(roboflow, NAMES)
    assert mapped.cat_ids == [1, 2, 3, 4, 5, 6] and mapped.how == "names"
    assert any("['shapes']" in note for note in mapped.notes)
    assert any("matched their categories ignoring case and surrounding spaces" in note for note in mapped.notes)
    assert not any("ignoring case" in note for note in map_classes(gt, NAMES).notes)


def test_classes_that_match_no_category_are_an_error():
    foreign = coco_with([{"id": i, "name": f"class_{i}"} for i in range(6)])
    with pytest.raises(DatasetError, match=r"no overlap at all.*circle.*class_0.*class map"):
        map_classes(foreign, NAMES)
    partial = coco_with([{"id": i + 1, "name": n} for i, n in NAMES.items() if n != "star"])
    with pytest.raises(DatasetError, match=r"model classes \['star'\] have no category"):
        map_classes(partial, NAMES)


def test_explicit_class_map_takes_ids_or_names(gt):
    explicit = {0: 31, 1: "Rectangle", 2: 7, 3: 12, 4: 20, 5: 1}
    assert map_classes(gt, NAMES, explicit).cat_ids == [31, 3, 7, 12, 20, 1]
    with pytest.raises(DatasetError, match=r"does not cover class indices \[2, 3, 4, 5\]"):
        map_classes(gt, NAMES, {0: 31, 1: 3})
    with pytest.raises(DatasetError, match="names no category"):
        map_classes(gt, NAMES, {i: "nope" for i in range(6)})
    with pytest.raises(DatasetError, match=r"category ids \[99\]"):
        map_classes(gt, None, [99])


def test_model_without_names_falls_back_to_sorted_ids_with_a_note(gt):
    mapped = map_classes(gt, {})
    assert mapped.cat_ids == [1, 3, 7, 12, 20, 31] and mapped.how == "sorted ids"
    assert "no class names" in mapped.notes[0]


def test_coco80_to_91():
    assert len(COCO80_TO_91) == 80
    assert COCO80_TO_91 == sorted(set(COCO80_TO_91))
    assert set(range(1, 91)) - set(COCO80_TO_91) == {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}


def test_coco_results_format():
    dets = Detections(
        np.array([[10.12345, 20.5, 30.0, 60.25]], np.float32),
        np.array([0.123456789], np.float32),
        np.array([1], np.int64),
    )
    (result,) = coco_results({7: dets, 8: Detections.empty()}, [3, 5])
    assert result["image_id"] == 7 and result["category_id"] == 5
    assert result["bbox"] == pytest.approx([10.123, 20.5, 19.877, 39.75], abs=1e-9)
    assert result["score"] == 0.12346
    json.dumps(result)  # plain Python types


def test_coco_results_unmapped_class_raises():
    dets = Detections(np.zeros((1, 4), np.float32), np.ones(1, np.float32), np.array([6], np.int64))
    with pytest.raises(DatasetError, match=r"class index 6 .*6 categories"):
        coco_results({1: dets}, [1, 3, 7, 12, 20, 31])


# ---- parity ----


def random_detections(rng, n_images=8, per_image=6):
    dets = []
    for _ in range(n_images):
        xy = rng.uniform(0, 500, (per_image, 2))
        boxes = np.hstack([xy, xy + rng.uniform(20, 100, (per_image, 2))]).astype(np.float32)
        dets.append(
            Detections(boxes, rng.uniform(0.3, 1.0, per_image).astype(np.float32), rng.integers(0, 5, per_image))
        )
    return dets


def test_parity_identical():
    fp32 = random_detections(np.random.default_rng(1))
    result = parity(fp32, fp32)
    assert result["recall"] == 1.0 and result["matched"] == result["fp32_count"] == result["int8_count"] == 48
    assert result["score_drift_mean"] == 0.0 and result["score_drift_max"] == 0.0
    assert result["iou_mean"] == pytest.approx(1.0)
    assert result["int8_max_score"] == result["fp32_max_score"] <= 1.0


def test_parity_sees_scores_above_one():
    fp32 = random_detections(np.random.default_rng(2))
    int8 = [Detections(d.boxes, d.scores + 1.0, d.classes) for d in fp32]
    result = parity(fp32, int8)
    assert result["int8_max_score"] > 1.0 >= result["fp32_max_score"]
    assert result["score_drift_mean"] == pytest.approx(1.0)
    assert result["recall"] == 1.0  # same boxes and classes: only the score numbers show the fault


def test_parity_sees_dropped_boxes():
    fp32 = random_detections(np.random.default_rng(3))
    int8 = [Detections(d.boxes[::2], d.scores[::2], d.classes[::2]) for d in fp32]
    result = parity(fp32, int8)
    assert result["recall"] == pytest.approx(0.5)
    assert result["int8_count"] == result["matched"] == 24


def test_parity_requires_same_class_and_overlap():
    box = np.array([[0, 0, 100, 100]], np.float32)
    fp32 = [Detections(box, np.array([0.9], np.float32), np.array([0]))]
    other_class = [Detections(box, np.array([0.9], np.float32), np.array([1]))]
    shifted = [Detections(box + 60, np.array([0.9], np.float32), np.array([0]))]  # IoU 0.087
    assert parity(fp32, other_class)["matched"] == 0
    assert parity(fp32, shifted)["matched"] == 0
    assert parity(fp32, shifted, iou_thr=0.05)["matched"] == 1


def test_parity_is_one_to_one_and_greedy_by_score():
    boxes = np.array([[0, 0, 100, 100], [2, 2, 100, 100]], np.float32)
    fp32 = [Detections(boxes, np.array([0.6, 0.9], np.float32), np.array([0, 0]))]
    int8 = [Detections(boxes[:1], np.array([0.8], np.float32), np.array([0]))]
    result = parity(fp32, int8)
    assert result["matched"] == 1 and result["recall"] == 0.5
    assert result["score_drift_max"] == pytest.approx(0.1)  # the 0.9 detection claimed the INT8 box first


def test_parity_score_threshold():
    box = np.array([[0, 0, 100, 100]], np.float32)
    fp32 = [Detections(box, np.array([0.9], np.float32), np.array([0]))]
    weak = [Detections(box, np.array([0.1], np.float32), np.array([0]))]
    result = parity(fp32, weak, score_thr=0.25)
    assert (result["matched"], result["int8_count"], result["recall"]) == (0, 0, 0.0)
    assert result["int8_max_score"] == pytest.approx(0.1)  # max scores look at every detection
    assert result["collapsed_fraction"] == 1.0  # INT8's best score fell below half of FP32's


def test_parity_with_nothing_to_measure_is_none_not_perfect():
    """No FP32 detection, no INT8 detection, nothing matched: every figure is None (the gates fail)."""
    result = parity([Detections.empty()], [Detections.empty()])
    for key in ("recall", "precision", "score_drift_mean", "iou_mean", "collapsed_fraction"):
        assert result[key] is None, key


def test_parity_precision_sees_spurious_int8_boxes():
    """INT8 keeps every FP32 box and adds confident ones of its own: recall 1.0, precision falls."""
    rng = np.random.default_rng(4)
    fp32 = random_detections(rng)
    spurious = [
        Detections(
            np.vstack([d.boxes, d.boxes[:4] + 300]),
            np.r_[d.scores, np.full(4, 0.9, np.float32)],
            np.r_[d.classes, d.classes[:4]],
        )
        for d in fp32
    ]
    result = parity(fp32, spurious)
    assert result["recall"] == 1.0
    assert result["precision"] == pytest.approx(48 / 80)
    assert result["collapsed_fraction"] == 0.0


# ---- raw output stats ----


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def broken_class_branch(n=2100, nc=6, seed=0):
    """FP32 head output and an 'INT8' one whose boxes survived and class scores did not."""
    rng = np.random.default_rng(seed)
    fp32 = np.empty((1, 4 + nc, n), np.float32)
    fp32[0, :2] = rng.uniform(0, 320, (2, n))
    fp32[0, 2:4] = rng.uniform(4, 150, (2, n))
    fp32[0, 4:] = rng.uniform(0, 0.02, (nc, n))
    hits = rng.integers(0, n, n // 50)
    fp32[0, 4 + rng.integers(0, nc, hits.size), hits] = rng.uniform(0.5, 1.0, hits.size)
    int8 = fp32.copy()
    step = fp32.max() / 255  # one shared scale for boxes and scores: boxes stay within half a step
    int8[0, :4] = np.round(fp32[0, :4] / step) * step
    int8[0, 4:] = rng.uniform(0, 1.3, (nc, n))  # class branch destroyed
    return fp32, int8


def test_raw_stats_expose_a_broken_class_branch():
    fp32, int8 = broken_class_branch()
    stats = raw_output_stats(fp32, int8)
    assert cosine(fp32, int8) > 0.99  # the whole-tensor cosine looks healthy...
    assert stats["box"]["cosine"] > 0.999
    assert stats["cls"]["cosine"] < 0.5  # ...the class group does not
    assert stats["cls"]["int8_max"] > 1.0 >= stats["cls"]["fp32_max"]
    assert stats["box"]["max_abs_diff"] <= fp32.max() / 255 / 2 + 1e-3
    assert stats["cls"]["max_abs_diff"] > 0.5


def test_raw_stats_layouts_agree_and_identical_is_perfect():
    fp32, int8 = broken_class_branch()
    first = raw_output_stats(fp32, int8)
    last = raw_output_stats(fp32.transpose(0, 2, 1), int8.transpose(0, 2, 1))
    assert first == last
    same = raw_output_stats(fp32, fp32)
    assert same["box"]["cosine"] == pytest.approx(1.0) and same["cls"]["cosine"] == pytest.approx(1.0)
    assert same["box"]["max_abs_diff"] == same["cls"]["max_abs_diff"] == 0.0


def test_raw_stats_shape_mismatch_raises():
    with pytest.raises(ModelError, match=r"\[1, 10, 2100\].*\[1, 10, 2000\]"):
        raw_output_stats(np.zeros((1, 10, 2100), np.float32), np.zeros((1, 10, 2000), np.float32))
