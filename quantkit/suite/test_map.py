"""Accuracy gates: FP32 mAP50-95 above the case's floor (a sanity floor by default: below it the
setup is broken); INT8 loses at most ``max_map_drop_pt`` points."""

import pytest

from quantkit import gates

pytestmark = pytest.mark.quantkit_needs("coco")


def test_fp32_map_floor(qk_case):
    fp32 = qk_case.pipeline.map(None)
    gates.assert_passed(gates.check_map(fp32, fp32, qk_case.thresholds, qk_case.id)[:1])


def test_int8_map_drop(qk_pair):
    p = qk_pair.pipeline
    qk_pair.assert_passed(gates.check_map(p.map(None), p.map(qk_pair.spec), qk_pair.thresholds, qk_pair.id)[1:])
