"""Parity gates, judged on detections (not raw tensors): FP32 vs INT8 on the same validation images
(annotated, unlabelled, or held out of the calibration folder), in both directions, at the case's
conf, never on zero evidence (a metric with nothing to measure fails). Segmentation and pose heads add
the mask IoU and the keypoint distance of the matched detections."""

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
TASK_METRICS = ["matched_mask_iou_mean", "matched_keypoint_distance_mean"]  # segmentation / pose heads only


@pytest.mark.parametrize("metric", METRICS + TASK_METRICS)
def test_detection_parity(qk_pair, metric):
    results = [r for r in qk_pair.gate_results("parity") if r.metric == metric]
    if not results and metric in TASK_METRICS:
        pytest.skip(f"{metric}: the model's head has no {'masks' if 'mask' in metric else 'keypoints'}")
    qk_pair.assert_passed(results)
