"""Size gate: what quantization could shrink, the weights, is at least ``min_weight_compression`` times smaller
than in FP32, and the whole file at least ``min_compression`` times (a floor for catastrophes)."""

from quantkit.plugin import NOTES


def test_compression(qk_pair, request):
    q = qk_pair.pipeline.quantized(qk_pair.spec)
    request.node.user_properties.append((NOTES, {"id": qk_pair.id, "notes": q.notes}))  # for the terminal summary
    qk_pair.assert_passed(qk_pair.gate_results("size"))
