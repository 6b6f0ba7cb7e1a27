"""The gates a model's task declares for itself (``quantkit/tasks/``): segmentation heads' mask mAP drop and matched
mask IoU, pose heads' keypoint mAP drop and keypoint distance, a classifier's top-1 / top-5 drops and top-1 agreement
with FP32; each decided from its interval. A detector's and an oriented-box head's gates are the box gates."""

import pytest

pytestmark = pytest.mark.quantkit_needs("val")


def test_task_gates(qk_pair):
    qk_pair.assert_passed(qk_pair.gate_results("task"))
