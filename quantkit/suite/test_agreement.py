"""Agreement gates, on validation images with or without annotations: INT8's detections scored with
pycocotools against FP32's own detections at the case's conf (agreement mAP50-95, with its bootstrap
CI95), after the evidence gates: too few validation images or FP32 detections fail, never pass."""

import pytest

from quantkit import gates

pytestmark = pytest.mark.quantkit_needs("val")


def test_enough_evidence(qk_pair):
    agreement = qk_pair.pipeline.agreement(qk_pair.spec)
    qk_pair.assert_passed(
        gates.check_evidence(agreement["images"], agreement["fp32_detections"], qk_pair.thresholds, qk_pair.id)
    )


def test_agreement_map(qk_pair):
    results = gates.check_agreement(qk_pair.pipeline.agreement(qk_pair.spec), qk_pair.thresholds, qk_pair.id)
    qk_pair.assert_passed([r for r in results if r.gate == "agreement"])
