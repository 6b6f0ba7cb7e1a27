"""Parity gates, judged on detections (not raw tensors): FP32 vs INT8 on the same validation images
(annotated, unlabelled, or held out of the calibration folder), in both directions, at the case's
conf, never on zero evidence (a metric with nothing to measure fails). The mask IoU and keypoint distance of
segmentation and pose heads' matched detections are their tasks' gates (test_task.py)."""

import pytest

pytestmark = pytest.mark.quantkit_needs("val")
METRICS = [
    "recall_of_fp32_detections",
    "precision_of_int8_detections",
    "score_drift_mean",
    "matched_iou_mean",
    "collapsed_image_fraction",
    "max_class_score",
]


@pytest.mark.parametrize("metric", METRICS)
def test_detection_parity(qk_pair, metric):
    qk_pair.assert_passed([r for r in qk_pair.gate_results("parity") if r.metric == metric])
