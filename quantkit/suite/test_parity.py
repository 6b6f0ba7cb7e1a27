"""Parity gates, judged on detections (not raw tensors): FP32 vs INT8 on the same validation images
(annotated, unlabelled, or held out of the calibration folder), in both directions, at the case's
conf, never on zero evidence (a metric with nothing to measure fails)."""

import pytest

from quantkit import gates

pytestmark = pytest.mark.quantkit_needs("val")
METRICS = ["recall_of_fp32_detections", "precision_of_int8_detections", "score_drift_mean", "matched_iou_mean",
           "collapsed_image_fraction", "max_class_score"]


@pytest.mark.parametrize("metric", METRICS)
def test_detection_parity(qk_pair, metric):
    results = gates.check_parity(qk_pair.pipeline.parity(qk_pair.spec), qk_pair.thresholds, qk_pair.id)
    qk_pair.assert_passed([r for r in results if r.metric == metric])
