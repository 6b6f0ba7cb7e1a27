"""Parity gates, judged on detections (not raw tensors): FP32 vs INT8 on the same images."""

import pytest

from quantkit import gates

METRICS = ["recall_of_fp32_detections", "score_drift_mean", "matched_iou_mean", "max_class_score"]


@pytest.mark.parametrize("metric", METRICS)
def test_detection_parity(qk_pair, metric):
    results = gates.check_parity(qk_pair.pipeline.parity(qk_pair.spec), qk_pair.thresholds, qk_pair.id)
    gates.assert_passed([r for r in results if r.metric == metric])
