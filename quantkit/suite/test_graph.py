"""Graph gates: what got quantized, counted per op type."""

import pytest

from quantkit import gates


def _config(qk_pair) -> dict:
    return qk_pair.pipeline.quantized(qk_pair.spec).config


def test_no_float_conv_in_static(qk_pair):
    config = _config(qk_pair)
    if config["mode"] != "static":
        pytest.skip("dynamic quantization keeps float Convs where it cannot quantize them")
    graph = qk_pair.pipeline.graph(qk_pair.spec)
    gates.assert_passed([r for r in gates.check_graph(graph, config, qk_pair.thresholds, qk_pair.id) if r.metric == "float_convs"])


def test_head_stays_float(qk_pair):
    config = _config(qk_pair)
    if not config["keep_head_float"]:
        pytest.skip("this config quantizes the head on purpose")
    graph = qk_pair.pipeline.graph(qk_pair.spec)
    assert graph["head_found"], f"no YOLOv8 head found in {qk_pair.id}: the head-aware preset had nothing to keep float"
    gates.assert_passed([r for r in gates.check_graph(graph, config, qk_pair.thresholds, qk_pair.id) if r.metric == "head_float"])


def test_quantized_op_counts(qk_pair):
    """Every quantizable Conv became an INT8 op of the config's format, and Q/DQ nodes pair up."""
    config, graph = _config(qk_pair), qk_pair.pipeline.graph(qk_pair.spec)
    ops, fp32_convs = graph["ops"], qk_pair.pipeline.fp32_ops.get("Conv", 0)
    kept = len(graph["float_convs"])
    if config["mode"] == "dynamic":
        assert ops.get("ConvInteger", 0) + kept == fp32_convs, f"{qk_pair.id}: ConvInteger {ops.get('ConvInteger', 0)} + float {kept} != FP32 Convs {fp32_convs}"
    elif config["format"] == "qoperator":
        assert ops.get("QLinearConv", 0) + kept == fp32_convs, f"{qk_pair.id}: QLinearConv {ops.get('QLinearConv', 0)} + float {kept} != FP32 Convs {fp32_convs}"
    else:
        q, dq = graph["quantize_linear"], graph["dequantize_linear"]
        assert 0 < q <= dq, f"{qk_pair.id}: QuantizeLinear {q}, DequantizeLinear {dq}: expected 0 < Q <= DQ in QDQ format"
        assert dq >= fp32_convs - kept, f"{qk_pair.id}: {dq} DequantizeLinear for {fp32_convs - kept} quantized Convs"
