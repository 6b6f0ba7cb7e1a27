"""The paired bootstrap of the mAP drop: pycocotools exactly with identity weights, an image drawn k
times counts as k copies of it, and the fixture's interval in well under 10 s."""

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from quantkit.measure.bootstrap import MatchTable, paired_drop
from quantkit.measure.intervals import decide, images_to_decide, ratio_interval, resample_weights
from quantkit.manifest import ConfigSpec
from quantkit.measure.metrics import coco_map, coco_results, load_coco, map_classes
from test_metrics import VAL_ANNOTATIONS, perturbed_detections


@pytest.fixture(scope="module")
def gt():
    return load_coco(VAL_ANNOTATIONS)


@pytest.fixture(scope="module")
def synthetic(gt):
    """COCO results of two different imperfect detectors on the val annotations."""
    cat_ids = map_classes(gt).cat_ids
    return [coco_results(perturbed_detections(gt, cat_ids, seed), cat_ids) for seed in (0, 1)]


@pytest.fixture(scope="module")
def tables(gt, synthetic):
    """(MatchTable, pycocotools' mAP50-95) of each synthetic detector over every val image."""
    image_ids = sorted(gt.getImgIds())
    return [
        (MatchTable.from_results(gt, r, image_ids, gt.getCatIds()), coco_map(gt, r, image_ids)["map50_95"])
        for r in synthetic
    ]


def test_identity_weights_reproduce_pycocotools(gt, tables):
    for table, expected in tables:
        assert table.map50_95(np.ones(len(table.image_ids)))[0] == pytest.approx(expected, abs=1e-6)


def test_integer_weights_equal_pycocotools_on_the_replicated_set(gt, synthetic):
    """Weights (0, 1, 2, 3 per image) give the mAP pycocotools computes on a set where each image
    and its annotations and detections appear that many times."""
    image_ids = sorted(gt.getImgIds())[:60]
    weights = np.random.default_rng(5).integers(0, 4, len(image_ids))
    data = json.loads(VAL_ANNOTATIONS.read_text())
    images = {img["id"]: img for img in data["images"]}
    anns = [a for a in data["annotations"] if a["image_id"] in set(image_ids)]
    copies, new_anns, new_results = [], [], []
    for image_id, w in zip(image_ids, weights):
        for c in range(int(w)):
            new_id = image_id * 10 + c
            copies.append({**images[image_id], "id": new_id})
            new_anns += [{**a, "image_id": new_id} for a in anns if a["image_id"] == image_id]
            new_results += [{**r, "image_id": new_id} for r in synthetic[0] if r["image_id"] == image_id]
    replicated = COCO()
    replicated.dataset = {**data, "images": copies, "annotations": [{**a, "id": k + 1} for k, a in enumerate(new_anns)]}
    with contextlib.redirect_stdout(io.StringIO()):
        replicated.createIndex()
    expected = coco_map(replicated, new_results, [c["id"] for c in copies])["map50_95"]
    table = MatchTable.from_results(
        gt, [r for r in synthetic[0] if r["image_id"] in set(image_ids)], image_ids, gt.getCatIds()
    )
    assert table.map50_95(weights[None])[0] == pytest.approx(expected, abs=1e-6)


def test_paired_drop_is_seeded_paired_and_centred(tables):
    (a, map_a), (b, map_b) = tables
    same = paired_drop(a, a, resamples=200)
    assert same["ci95"] == [0.0, 0.0]  # paired: the same detector against itself never differs
    first, again = paired_drop(a, b, resamples=300), paired_drop(a, b, resamples=300)
    assert first == again and first["resamples"] == 300 and first["images"] == len(a.image_ids)
    point = 100 * (map_a - map_b)
    low, high = first["ci95"]
    assert low < point < high and first["halfwidth"] == pytest.approx((high - low) / 2)
    assert resample_weights(7, 3).sum(axis=1).tolist() == [7, 7, 7]


def test_empty_int8_results_bootstrap_the_whole_fp32_map(gt, tables):
    (fp32, fp32_map), _ = tables
    empty = MatchTable.from_results(gt, [], fp32.image_ids, gt.getCatIds())
    assert empty.map50_95(np.ones(len(fp32.image_ids)))[0] == 0.0
    drop = paired_drop(fp32, empty, resamples=200)
    assert drop["ci95"][0] < 100 * fp32_map < drop["ci95"][1]


def test_images_to_decide_scale_with_the_square_of_the_interval_over_the_gap():
    """An interval twice as wide as the gap to the threshold needs 4x the images (as 1/sqrt(n)): 600 more on 200."""
    assert images_to_decide(200, 0.5, [-0.5, 2.5], 1.5) == 600  # the side toward the threshold: 2.0 vs a gap of 1.0
    assert images_to_decide(200, 0.95, [0.92, 0.98], 0.90) == 1  # decided already: at least one
    assert images_to_decide(200, 0.9, [0.85, 0.95], 0.90) is None  # on the threshold: no count decides it


def test_decide_from_the_interval():
    assert decide(0.95, [0.91, 0.99], ">=", 0.90) == "pass"
    assert decide(0.95, [0.88, 0.99], ">=", 0.90) == "undecided"
    assert decide(0.85, [0.80, 0.89], ">=", 0.90) == "fail"
    assert decide(0.5, None, "<=", 1.5) == "pass"  # no interval: the value decides


def test_ratio_interval_leaves_out_draws_with_nothing_to_measure_and_stays_in_bounds():
    """Recall over images where most have no FP32 detection: a draw of only such images measures nothing (not 0
    and not -1), and the interval stays within [0, 1]."""
    num, den = np.r_[np.ones(3), np.zeros(47)], np.r_[np.ones(3), np.zeros(47)]
    low, high = ratio_interval(num, den)
    assert low == high == 1.0
    assert ratio_interval(np.zeros(5), np.zeros(5)) is None


def test_fixture_interval_brackets_the_drop(fixture_pipeline):
    """(fixture) 1000 paired resamples of the 200 val images on the shared predictions; its time is
    measured in benchmarks/test_eval_overhead.py (a unit test asserts no absolute time)."""
    spec = ConfigSpec("static-qdq", "default")
    boot = fixture_pipeline.map_bootstrap(spec)
    drop = 100 * (fixture_pipeline.map(None)["map50_95"] - fixture_pipeline.map(spec)["map50_95"])
    assert boot["resamples"] >= 500 and boot["images"] == 200
    assert boot["ci95"][0] < drop < boot["ci95"][1] and boot["halfwidth"] < 1.5
