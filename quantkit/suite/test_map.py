"""Accuracy gates: FP32 mAP50-95 above the case's floor (a sanity floor by default: below it the
setup is broken); INT8 loses at most ``max_map_drop_pt`` points, judged with the drop's paired-bootstrap
CI95 (which also tells whether the evaluation set can resolve the threshold), and, when those
thresholds are on, at most ``max_map_drop_pt_small`` on small objects and ``max_class_ap_drop_pt`` on
the worst class. At the case's deployed operating point (``conf``, ``iou``) F1 drops at most
``max_f1_drop_pt`` points. The mask / keypoint mAP drops of segmentation and pose heads are their tasks' gates
(test_task.py)."""

import pytest

from quantkit import gates

pytestmark = pytest.mark.quantkit_needs("coco")


@pytest.fixture(autouse=True)
def _annotated(request):
    target = request.getfixturevalue("qk_pair" if "qk_pair" in request.fixturenames else "qk_case")
    if not target.pipeline.task.uses_boxes:
        pytest.skip(f"a {target.pipeline.task.name} model: its accuracy gates are its task's (test_task.py)")
    if not target.pipeline.annotated:
        pytest.skip("no annotated images: accuracy is judged by agreement with FP32 (test_agreement.py)")


def test_fp32_map_floor(qk_case):
    gates.assert_passed(qk_case.gate_results("fp32 floor"))


def test_int8_map_drop(qk_pair):
    qk_pair.assert_passed(qk_pair.gate_results("mAP"))


def test_operating_point_f1(qk_pair):
    qk_pair.assert_passed(qk_pair.gate_results("operating point"))
