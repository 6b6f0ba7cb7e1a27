"""Size gate: what quantization could shrink, the weights, is at least ``min_weight_compression`` times smaller
than in FP32, and the whole file at least ``min_compression`` times (a floor for catastrophes)."""

from quantkit import gates
from quantkit.plugin import NOTES


def test_compression(qk_pair, request):
    q = qk_pair.pipeline.quantized(qk_pair.spec)
    request.node.user_properties.append((NOTES, {"id": qk_pair.id, "notes": q.notes}))  # for the terminal summary
    qk_pair.assert_passed(gates.check_size(q.source_bytes, q.output_bytes, qk_pair.thresholds, qk_pair.id, q.weights()))
