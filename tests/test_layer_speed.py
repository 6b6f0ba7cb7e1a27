"""Per-Conv INT8/FP32 timing and the rule that picks what to deploy from it."""

import dataclasses

import onnx
import pytest

from quantkit import quantize
from quantkit.measure.layer_speed import ConvTiming, conv_timings, slow_in_int8
from quantkit.manifest import ConfigSpec, Manifest
from quantkit.tune import Candidate, choose, fastest_deployable, tune


def test_every_quantized_conv_is_timed_both_ways(tiny_model, calib_dir, tmp_path):
    q = quantize(tiny_model, tmp_path / "q.onnx", calib=calib_dir, progress=False)
    timings = conv_timings(tiny_model, q.output, threads=1, rounds=3)
    convs = [n.name for n in onnx.load(str(tiny_model)).graph.node if n.op_type == "Conv"][:4]  # not the DFL's
    assert sorted(t.name for t in timings) == sorted(convs)
    assert sorted((t.in_channels, t.out_channels) for t in timings) == [(3, 8), (8, 16), (16, 2), (16, 16)]
    assert all(t.fp32_ms > 0 and t.int8_ms > 0 for t in timings)


def planted(ratios: dict[str, float], spread: float = 0.0) -> list[ConvTiming]:
    return [ConvTiming(name, 16, 16, 1.0, ratio, spread) for name, ratio in ratios.items()]


def test_a_planted_slow_layer_is_kept_float_for_speed():
    timings = planted({"stem": 3.1, "c2f": 0.55, "sppf": 0.6, "slow": 1.4, "even": 1.0})
    assert slow_in_int8(timings) == ["slow", "stem"]  # a tie stays INT8
    assert slow_in_int8(timings, margin=0.5) == ["stem"]


def test_a_layer_slower_only_within_the_timing_spread_stays_int8():
    """1.02-1.04x FP32 with runs 5 % apart is noise, not a reason to keep a Conv float."""
    assert slow_in_int8(planted({"a": 1.02, "b": 1.04}, spread=0.05)) == []
    assert slow_in_int8(planted({"a": 1.02, "b": 1.08}, spread=0.05)) == ["b"]


def test_a_candidate_within_the_spread_of_fp32_does_not_win():
    ms = {"fp32": 10.0, "uniform": 9.8}
    assert fastest_deployable(ms, {"uniform": True}, spread={"fp32": 0.0, "uniform": 0.0})[0] == "uniform"
    name, sentence = fastest_deployable(ms, {"uniform": True}, spread={"fp32": 0.03, "uniform": 0.01})
    assert name == "fp32" and "spread" in sentence


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


@pytest.mark.slow  # quantizes, evaluates and times three candidates of the fixture (~20 s; `pytest -m slow`)
def test_tune_times_candidates_against_fp32_with_the_same_rewrite(fixture_case, tmp_path):
    """(fixture, 60 val images) tune end to end: per-Conv timings, a mixed candidate made of the Convs
    INT8 does not pay for, each ratio against FP32 with the Softmax rewrite the candidates carry, and a
    fastest deployable that is FP32 (either) or a candidate meeting the gates."""
    case = dataclasses.replace(fixture_case, coco_ann=fixture_case.coco_ann.with_name("annotations-first60.json"))
    grid = (ConfigSpec("qdq-pc-minmax", "default"),)
    result = tune(Manifest([case], list(grid)), cache_dir=tmp_path, progress=False, grid=grid, top_k=(2,))
    ids = [c.spec.id for c in result["candidates"]]
    assert ids[:2] == ["qdq-pc-minmax", "qdq-pc-minmax-float2"] and len(result["conv_timings"]) == 63
    assert result["mixed"] == ("qdq-pc-minmax-speed" if result["float_for_speed"] else None)
    assert result["fp32_rewritten_ms"] < result["fp32_ms"]  # the rewrite's own gain, not counted as INT8's
    for c in result["candidates"]:
        assert c.ratio == pytest.approx(c.int8_ms / result["fp32_rewritten_ms"], rel=1e-6)
    best, sentence = result["deployable"]
    assert best in ("fp32", "fp32-fast-softmax") or next(c for c in result["candidates"] if c.spec.id == best).passed


def test_tune_names_a_tie_instead_of_a_winner_inside_the_timing_spread():
    """Two passing candidates 2 % apart with a 5 % run-to-run spread are a tie: the more accurate one is
    chosen and both are named; 20 % apart, the faster one wins."""

    def cand(name, ratio, loss, spread=0.05):
        return Candidate(ConfigSpec(name), loss, ratio, 1.0, 3.5, True, [], spread)

    chosen, tied = choose([cand("fast", 0.60, 1.2), cand("accurate", 0.612, 0.4)])
    assert chosen.spec.id == "accurate" and {c.spec.id for c in tied} == {"fast", "accurate"}
    chosen, tied = choose([cand("fast", 0.50, 1.2), cand("accurate", 0.60, 0.4)])
    assert chosen.spec.id == "fast" and [c.spec.id for c in tied] == ["fast"]
    assert choose([]) == (None, [])


@pytest.mark.slow  # one recipe on images held out of the calibration folder (~20 s; `pytest -m slow`)
def test_tune_accepts_unlabelled_images(fixture_case, tmp_path):
    case = dataclasses.replace(fixture_case, coco_images=None, coco_ann=None, val_images=fixture_case.coco_images)
    grid = (ConfigSpec("qdq-pc-minmax", "default"),)
    result = tune(Manifest([case], list(grid)), cache_dir=tmp_path, progress=False, grid=grid, top_k=(2,))
    assert result["evidence"].startswith("accuracy: agreement with FP32 on 200 unlabelled images")
    first = result["candidates"][0]
    assert 0 <= first.loss_pt < 10 and not any(m.startswith("map50_95") for m in first.failed)
