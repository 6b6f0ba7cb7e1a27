"""Graph gates: what got quantized, counted per op type."""

import pytest


def _config(qk_pair) -> dict:
    return qk_pair.pipeline.quantized(qk_pair.spec).config


def test_no_float_conv(qk_pair):
    config = _config(qk_pair)
    if config["mode"] == "dynamic":
        pytest.skip("dynamic quantization keeps float Convs where it cannot quantize them")
    qk_pair.assert_passed([r for r in qk_pair.gate_results("graph") if r.metric == "float_convs"])


def test_head_stays_float(qk_pair):
    config = _config(qk_pair)
    if not config["keep_head_float"]:
        pytest.skip("this config quantizes the head on purpose")
    qk_pair.assert_passed([r for r in qk_pair.gate_results("graph") if r.metric.startswith("head")])


def test_quantized_conv_count(qk_pair):
    """Every Conv outside the float list computes in INT8, in the op the config's format implies."""
    q, graph = qk_pair.pipeline.quantized(qk_pair.spec), qk_pair.pipeline.graph(qk_pair.spec)
    fp32_convs = qk_pair.pipeline.fp32_ops.get("Conv", 0)
    kept = sum(1 for name in q.float_nodes if name in qk_pair.pipeline.fp32_conv_names)
    expected = fp32_convs - kept
    assert graph["quantized_convs"] == expected, (
        f"{qk_pair.id}: {graph['quantized_convs']} INT8 Convs, expected {expected} "
        f"(FP32 Convs {fp32_convs} - {kept} kept in float); ops {graph['ops']}"
    )
    op = "ConvInteger" if q.config["mode"] == "dynamic" else {"qoperator": "QLinearConv"}.get(q.config["format"])
    if q.config["mode"] == "weights":  # weights only: a DequantizeLinear per Conv weight, no activation quantized
        assert (graph["quantize_linear"], graph["dequantize_linear"]) == (0, expected), (
            f"{qk_pair.id}: Q/DQ {graph['ops']}"
        )
    elif op:
        assert graph["ops"].get(op, 0) == expected, f"{qk_pair.id}: {op} {graph['ops'].get(op, 0)} != {expected}"
    else:
        assert 0 < graph["quantize_linear"] <= graph["dequantize_linear"], f"{qk_pair.id}: Q/DQ {graph['ops']}"
