"""Agreement gates, on validation images with or without annotations: INT8's detections scored with
pycocotools against FP32's own detections at the case's conf (agreement mAP50-95, with its bootstrap
CI95), after the evidence gates: too few validation images or FP32 detections fail, never pass."""

import pytest

pytestmark = pytest.mark.quantkit_needs("val")


def test_enough_evidence(qk_pair):
    qk_pair.assert_passed(qk_pair.gate_results("evidence"))


def test_agreement_map(qk_pair):
    qk_pair.assert_passed(qk_pair.gate_results("agreement"))
