"""Size gate: the INT8 file is at least ``min_compression`` times smaller than FP32."""

from quantkit import gates


def test_compression(qk_pair):
    q = qk_pair.pipeline.quantized(qk_pair.spec)
    gates.assert_passed(gates.check_size(q.source_bytes, q.output_bytes, qk_pair.thresholds, qk_pair.id))
