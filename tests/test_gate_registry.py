"""The gate registry: each gate declares its needs, thresholds and tags; THRESHOLDS, docs/thresholds.md and the
suite's, check's and tune's gates come from it, and gates declared by the task registry join it."""

from types import SimpleNamespace

import pytest

from quantkit import gates, manifest
from quantkit.gates import Gate, GateResult, Target, Threshold
from quantkit.manifest import POLICY, THRESHOLDS


@pytest.fixture
def fresh_table():
    """THRESHOLDS is built once, when first read: rebuilt around a test that declares more."""
    manifest.declared.cache_clear()
    manifest._defaults.cache_clear()
    yield
    manifest.declared.cache_clear()
    manifest._defaults.cache_clear()


def test_thresholds_are_the_gates_declarations_and_the_policy():
    declared = [t.key for g in gates.registry() for t in g.thresholds] + [t.key for t in POLICY]
    assert declared == list(THRESHOLDS) and len(set(declared)) == len(declared)
    assert all(t.why for g in gates.registry() for t in g.thresholds)


def test_check_tune_and_the_pipeline_select_by_tag():
    def names(*tags, exclude=()):
        return [g.name for g in gates.select(*tags, exclude=exclude)]

    accuracy = ["fp32 floor", "mAP", "operating point", "evidence", "agreement", "parity"]
    tasks = ["mask mAP", "matched_mask_iou_mean", "keypoints mAP", "matched_keypoint_distance_mean", "classification"]
    assert names("accuracy") == accuracy + ["evaluation inputs"] + tasks  # the tasks' gates after the built-in ones
    assert (
        names("size", "inputs", "accuracy") == ["size"] + accuracy + ["calibration inputs", "evaluation inputs"] + tasks
    )
    assert names("size", "inputs", exclude=("accuracy",)) == ["size", "calibration inputs"]  # check --no-accuracy
    assert "graph" not in names("accuracy", "size", "inputs", "latency")  # tune keeps Convs float on purpose
    with pytest.raises(ValueError, match="no gate is tagged \\['acuracy'\\]"):
        gates.select("acuracy")


def _target(given=None, evidence="unlabelled", annotated=False, calibration=None):
    pipeline = SimpleNamespace(
        evidence=evidence, annotated=annotated, quantized=lambda spec: SimpleNamespace(calibration=calibration)
    )
    return Target(pipeline, SimpleNamespace(id="c", size_only=False), dict(manifest.THRESHOLDS), "case/c", given or {})


def test_a_gate_whose_needs_the_target_lacks_is_skipped():
    timing = {"ep": "cpu", "threads": 1, "fp32_ms": 10.0, "int8_ms": 5.0, "ratio": 0.5}
    assert gates.run(_target(), "latency") == []
    (result,) = gates.run(_target({"timing": timing}), "latency")
    assert result.passed and result.gate == "latency"
    assert gates.run(_target(), "calibration inputs") == []  # dynamic and weight-only models read none
    assert gates.run(_target(calibration={"images": 3, "skipped": 1}), "calibration inputs")[0].failed


def test_no_validation_images_is_one_failed_accuracy_gate():
    (result,) = gates.run(_target(evidence=None), "accuracy")
    assert result.failed and result.metric == "validation_images" and "no validation images" in result.message()


def test_an_ep_the_model_did_not_run_on_fails_its_latency_gate():
    timing = {"ep": "cuda", "threads": 1, "fp32_ms": 10.0, "int8_ms": None, "ratio": None}
    result = gates.check_latency(timing, THRESHOLDS, "case/c/cuda")
    assert result.failed and "not measured: the INT8 model did not run on cuda" in result.message()


def test_a_gate_the_task_registry_declares_joins_the_table_the_docs_and_the_selection(monkeypatch, fresh_table):
    tasks = pytest.importorskip("quantkit.tasks")

    def angle(t: Target) -> list[GateResult]:
        value = t.given["timing"]["ratio"]  # stands in for a task's own figure
        return [GateResult("angle", "angle_error_mean", value, "<=", t.th["max_angle_error_mean"], t.case_id)]

    gate = Gate(
        name="angle",
        run=angle,
        needs=("timing",),
        thresholds=(Threshold("max_angle_error_mean", 0.1, "obb heads: mean angle error of matched pairs"),),
        tags=("accuracy", "task"),
    )
    monkeypatch.setattr(tasks, "GATES", (gate,), raising=False)
    assert manifest.THRESHOLDS["max_angle_error_mean"] == 0.1
    assert (
        "| `max_angle_error_mean` | 0.1 | obb heads: mean angle error of matched pairs |" in manifest.threshold_table()
    )
    assert gates.select("accuracy")[-1] is gate
    (result,) = gates.run(_target({"timing": {"ratio": 0.3}}), "angle")
    assert result.failed
    monkeypatch.setattr(tasks, "GATES", (gate, gate))
    with pytest.raises(ValueError, match="gate \\['angle'\\] declared twice"):
        gates.registry()
