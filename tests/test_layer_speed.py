"""Per-Conv INT8/FP32 timing and the rule that picks what to deploy from it."""

import onnx

from quantkit import quantize
from quantkit.layer_speed import ConvTiming, conv_timings, fastest_deployable, slow_in_int8


def test_every_quantized_conv_is_timed_both_ways(tiny_model, calib_dir, tmp_path):
    q = quantize(tiny_model, tmp_path / "q.onnx", calib=calib_dir, progress=False)
    timings = conv_timings(tiny_model, q.output, threads=1, rounds=3)
    convs = [n.name for n in onnx.load(str(tiny_model)).graph.node if n.op_type == "Conv"][:4]  # not the DFL's
    assert sorted(t.name for t in timings) == sorted(convs)
    assert sorted((t.in_channels, t.out_channels) for t in timings) == [(3, 8), (8, 16), (16, 2), (16, 16)]
    assert all(t.fp32_ms > 0 and t.int8_ms > 0 for t in timings)


def planted(ratios: dict[str, float]) -> list[ConvTiming]:
    return [ConvTiming(name, 16, 16, 1.0, ratio) for name, ratio in ratios.items()]


def test_a_planted_slow_layer_is_kept_float_for_speed():
    timings = planted({"stem": 3.1, "c2f": 0.55, "sppf": 0.6, "slow": 1.4, "even": 1.0})
    assert slow_in_int8(timings) == ["even", "slow", "stem"]
    assert slow_in_int8(timings, margin=0.5) == ["c2f", "even", "slow", "sppf", "stem"]


def test_the_fastest_deployable_never_fails_a_gate_and_may_be_fp32():
    ms = {"fp32": 10.0, "uniform": 7.0, "mixed": 6.0}
    assert fastest_deployable(ms, {"uniform": True, "mixed": True})[0] == "mixed"
    assert fastest_deployable(ms, {"uniform": True, "mixed": False})[0] == "uniform"  # mixed failed accuracy
    name, sentence = fastest_deployable({"fp32": 5.0, "uniform": 6.0, "mixed": 5.5}, {"uniform": True, "mixed": True})
    assert name == "fp32" and sentence.startswith("FP32 is the right answer on this machine")


def test_fp32_with_the_softmax_rewrite_is_a_deployable_reference():
    """INT8 beating the source FP32 only by the rewrite's gain loses to FP32 with the same rewrite."""
    ms = {"fp32": 10.0, "fp32-fast-softmax": 8.0, "uniform": 8.5}
    assert fastest_deployable(ms, {"uniform": True})[0] == "uniform"  # without the rewritten reference: misleading
    name, sentence = fastest_deployable(ms, {"uniform": True}, ("fp32", "fp32-fast-softmax"))
    assert name == "fp32-fast-softmax" and "FP32 with the Softmax rewrite" in sentence
