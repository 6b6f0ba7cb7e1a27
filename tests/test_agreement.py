"""Accuracy without annotations: agreement mAP with FP32, the evidence it needs, the held-out split,
and verdicts that name what they rest on (check's exit codes, compare's gates, the suite's gates)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import graphs
import quantkit.check
from quantkit.measure import bootstrap
from quantkit import gates
from quantkit.quantization.calibration import choose_files, split_folder
from quantkit.check import CheckReport, Kind, _verdict
from quantkit.cli import EXIT_UNVERIFIED, main
from quantkit.heads import Detections
from quantkit.errors import ModelError
from quantkit.measure.evaluate import ImageSet, agreement_report
from quantkit.manifest import THRESHOLDS, ConfigSpec
from quantkit.measure.metrics import agreement_map
from quantkit.preprocess import Letterbox
from quantkit.quantization.quantizer import quantize

SHAPE = (480, 640)


def _scene(n_images: int = 30, per_image: int = 5, seed: int = 0) -> dict[int, Detections]:
    """FP32-like detections: ``per_image`` boxes of 2 classes per image, scores 0.5-0.95."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n_images):
        xy = rng.uniform(0, 400, (per_image, 2))
        wh = rng.uniform(40, 200, (per_image, 2))
        scores = np.sort(rng.uniform(0.5, 0.95, per_image))[::-1].astype(np.float32)
        out[i] = Detections(np.hstack([xy, xy + wh]).astype(np.float32), scores, rng.integers(0, 2, per_image))
    return out


def _images(ids) -> ImageSet:
    return ImageSet((192, 320), list(ids), [None] * len(ids), [Letterbox(1.0, 0, 0, SHAPE) for _ in ids])


def test_fp32_agrees_with_itself_and_a_shifted_model_does_not():
    fp32 = _scene()
    same = agreement_map(fp32, fp32, {i: SHAPE for i in fp32}, 2)
    assert same["map50_95"] == pytest.approx(1.0) and same["fp32_detections"] == 150
    shifted = {i: Detections(d.boxes + 12.0, d.scores, d.classes) for i, d in fp32.items()}  # a planted box offset
    moved = agreement_map(fp32, shifted, {i: SHAPE for i in fp32}, 2)
    assert moved["map50_95"] < THRESHOLDS["min_agreement_map"]
    report = agreement_report(fp32, shifted, _images(fp32))
    results = gates.check_agreement(report, THRESHOLDS, "planted/shifted")
    assert [r.metric for r in results if not r.passed] == ["agreement_map50_95"]
    assert report["ci95"][0] <= report["map50_95"] <= report["ci95"][1]
    assert (
        "agreement gate FAILED: agreement_map50_95" in gates.failures(results)[0]
        and "CI95" in gates.failures(results)[0]
    )


def test_an_int8_model_that_detects_nothing_scores_zero_with_a_closed_interval():
    fp32 = _scene()
    empty = {i: Detections.empty() for i in fp32}
    report = agreement_report(fp32, empty, _images(fp32))
    assert report["map50_95"] == 0.0 and report["ci95"] == [0.0, 0.0]


def test_too_little_evidence_is_not_decided_never_passed():
    fp32 = _scene(n_images=6, per_image=3)
    report = agreement_report(fp32, fp32, _images(fp32))
    assert report["map50_95"] == pytest.approx(1.0)  # perfect agreement on too few images is still no pass
    results = gates.check_agreement(report, THRESHOLDS, "planted/tiny")
    assert not gates.failures(results)  # too little evidence is no failure of the model either
    short = [r.message() for r in gates.undecided(results) if r.gate == "evidence"]
    assert len(short) == 2 and all(
        "too little evidence: 6 images, 18 detections — need 25 images and 100" in f for f in short
    )
    assert gates.undecided_line(results).startswith("accuracy not decided: 6 images, 18 FP32 detections — about")
    with pytest.raises(AssertionError, match="accuracy not decided"):
        gates.assert_passed(results)
    nothing = {i: Detections.empty() for i in fp32}
    results = gates.check_agreement(agreement_report(nothing, nothing, _images(nothing)), THRESHOLDS, "planted/none")
    assert not any(r.passed for r in results)
    assert "agreement_map50_95 not measured: FP32 made no detection" in results[-1].message()


def test_the_interval_is_pycocotools_value_at_unit_weights():
    fp32 = _scene()
    noisy = {i: Detections(d.boxes + np.float32(i % 4), d.scores, d.classes) for i, d in fp32.items()}
    kept: dict = {}
    point = agreement_map(fp32, noisy, {i: SHAPE for i in fp32}, 2, keep=kept)["map50_95"]
    table = bootstrap.MatchTable.from_evaluator(kept["evaluator"], sorted(fp32))
    assert table.map50_95(np.ones((1, len(fp32))))[0] == pytest.approx(point, abs=1e-9)
    interval = bootstrap.interval(table)
    assert interval["ci95"][0] <= point <= interval["ci95"][1] and interval["halfwidth"] > 0


@pytest.mark.parametrize("count, held", [(1, 0), (7, 1), (100, 25), (150, 50), (600, 200)])
def test_the_held_out_split_never_meets_calibration(tmp_path, count, held):
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(count):
        (folder / f"{i:04d}.jpg").write_bytes(b"x")  # names only: the split does not decode
    holdout = split_folder(folder)
    assert len(holdout) == held and holdout == split_folder(folder)  # seeded
    if count > 1:
        chosen, available = choose_files(folder, exclude=holdout)
        assert not set(chosen) & set(holdout) and available == count


def test_an_already_quantized_model_is_refused_before_any_work(tiny_model, calib_dir, tmp_path):
    int8 = tmp_path / "int8.onnx"
    quantize(tiny_model, int8, preset="dynamic", progress=False)
    start = time.perf_counter()
    for preset in ("default", "naive", "dynamic"):
        with pytest.raises(ModelError, match=r"is already INT8: \d+ ConvInteger / \d+ DynamicQuantizeLinear nodes"):
            quantize(int8, tmp_path / f"again-{preset}.onnx", preset=preset, calib=calib_dir, progress=False)
    assert time.perf_counter() - start < 10
    qoperator = tmp_path / "qop.onnx"  # QOperator's QLinear* ops (QLinearConv and its contrib kin) count too
    quantize(tiny_model, qoperator, preset="qoperator", calib=calib_dir, progress=False)
    with pytest.raises(ModelError, match=r"is already INT8: .*\d+ QLinearConv"):
        quantize(qoperator, tmp_path / "again-qop.onnx", preset="dynamic", progress=False)


def _report(accuracy: str, failed: bool = False) -> CheckReport:
    gate = gates.GateResult(
        gate="size",
        metric="compression",
        value=2.0 if failed else 4.0,
        op=">=",
        threshold=3.3,
        case_id="tiny/static-qdq",
    )
    return CheckReport(
        [{"model": "FP32 @ cpu", "size MB": 1.0, "verdict": "reference"}],
        {"static-qdq": [gate]},
        None,
        {"cpu": {"brand": "cpu", "flags": []}, "onnxruntime": "1", "eps": ["cpu"], "threads": 1, "rounds": 30},
        evidence=f"accuracy: {accuracy}",
        accuracy=accuracy,
    )


@pytest.mark.parametrize(
    "accuracy, failed, code, verdict",
    [
        ("not measured", False, EXIT_UNVERIFIED, "verdict: NOT VERIFIED"),
        (
            "skipped",
            False,
            0,
            "verdict: size and latency only — static-qdq INT8 meets those gates; accuracy NOT measured",
        ),
        ("unlabelled", False, 0, "verdict: pass — static-qdq INT8 meets every gate (accuracy: unlabelled)"),
        ("not measured", True, 1, "verdict: FAIL"),
    ],
)
def test_check_exit_code_names_the_evidence(monkeypatch, tmp_path, capsys, accuracy, failed, code, verdict):
    """Unmeasured accuracy is never a pass: exit 3 unless --no-accuracy; a failed gate still decides first."""
    seen = {}

    def fake(manifest, eps=None, threads=None, accuracy=True, **kw):
        seen["accuracy"] = accuracy
        return _report("skipped" if not accuracy else acc, failed)

    acc = accuracy
    monkeypatch.setattr(quantkit.check, "run_check", fake)
    monkeypatch.setattr(quantkit.check, "write_report", lambda report, out: [])
    args = ["check", "--out", str(tmp_path / "r")] + (["--no-accuracy"] if accuracy == "skipped" else [])
    assert main(args) == code
    assert verdict in capsys.readouterr().out and seen["accuracy"] is (accuracy != "skipped")


def test_a_model_that_did_not_run_on_an_ep_fails_that_row():
    spec = ConfigSpec("static-qdq", "default")
    untimed = gates.GateResult(
        gate="latency",
        metric="int8/fp32 interleaved median on openvino",
        value=None,
        op="<=",
        threshold=1.0,
        case_id="tiny/static-qdq/openvino",
        no_evidence="the INT8 model did not run on openvino",
    )
    timed = gates.GateResult(
        gate="latency",
        metric="int8/fp32 interleaved median on cpu",
        value=0.8,
        op="<=",
        threshold=1.15,
        case_id="tiny/static-qdq/cpu",
    )
    results = {
        "static-qdq": [
            gates.GateResult(
                gate="size", metric="compression", value=4.0, op=">=", threshold=3.3, case_id="tiny/static-qdq"
            ),
            timed,
            untimed,
        ]
    }
    args = (results, "openvino", True, True, {"static-qdq": "fp32"})
    verdict = _verdict("static-qdq", spec, *args)
    assert verdict.kind is Kind.FAIL and verdict.failed == ["latency"] and not verdict.kind.deployable
    assert _verdict("static-qdq", spec, results, "cpu", *args[2:]).kind is Kind.PASS
    unmeasured = _verdict("static-qdq", spec, results, "cpu", False, True, args[-1])
    assert unmeasured.kind is Kind.UNVERIFIED and not unmeasured.kind.deployable
    accepted = _verdict("static-qdq", spec, results, "cpu", False, False, args[-1])  # --no-accuracy
    assert accepted.kind is Kind.NO_ACCURACY and not accepted.text().startswith("pass")
    assert "accuracy NOT measured" in accepted.text() and "accuracy NOT measured" in unmeasured.text()


@pytest.mark.slow  # a nested pytest session: `pytest -m slow` (CI runs it)
def test_the_suite_judges_unlabelled_images_instead_of_stopping(tmp_path, calib_dir, run_suite):
    """Only --quantkit-calib: the parity and agreement gates run on images held out of it (no exit 4), and
    6 random images are too little evidence: not decided, which fails the test with the numbers (never a pass)."""
    model = graphs.save(graphs.tiny_yolo(metadata={"names": "{0: 'a', 1: 'b'}"}), tmp_path / "tiny.onnx")
    proc = run_suite(
        tmp_path,
        "--quantkit-model",
        model,
        "--quantkit-calib",
        calib_dir,
        "--quantkit-cache-dir",
        tmp_path / "cache",
        "--quantkit-config",
        "static-qdq",
        "-k",
        "enough_evidence",
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "evidence gate not decided: validation_images 1.0000 vs 25.0000" in proc.stdout
    assert "accuracy not decided: 1 images" in proc.stdout and "too little evidence: 1 images" in proc.stdout


def test_the_fastest_deployable_is_chosen_by_interleaved_latency_among_deployable_rows():
    """Block timing moves with the machine's load; the interleaved figure does not favour one model, so it
    decides. A failed row and the rewritten FP32 (not a deliverable) are never chosen."""
    rows = [
        {"model": "FP32 @ cpu", "latency ms": 10.0, "deploy ms": 9.0},
        {"model": "FP32, Softmax rewritten @ cpu", "latency ms": 8.0, "deploy ms": 5.0},
        {"model": "INT8 static-qdq @ cpu", "latency ms": 7.0, "deploy ms": 14.0},  # block timing hit by load
        {"model": "INT8 naive @ cpu", "latency ms": 6.0, "deploy ms": 4.0},
    ]
    verdicts = [quantkit.check.Verdict(k) for k in (Kind.REFERENCE, Kind.CONTRAST, Kind.PASS, Kind.FAIL)]
    best = quantkit.check.fastest_deployable(rows, verdicts, 10.0)
    assert best["model"] == "INT8 static-qdq @ cpu" and best["vs CPU FP32"] == 0.7
    assert quantkit.check.fastest_deployable(rows[3:], verdicts[3:], 10.0) is None


def test_a_row_within_the_timing_spread_of_fp32_is_a_tie_and_fp32_stays_the_answer():
    """(model, EP) rows: an INT8 row 2 % faster than FP32 with runs 5 % apart does not win; FP32 does, the tie named."""
    rows = [
        {"model": "FP32 @ cpu", "latency ms": 10.0},
        {"model": "INT8 static-qdq @ cpu", "latency ms": 9.8},
        {"model": "INT8 static-qdq @ openvino", "latency ms": 5.0},
    ]
    verdicts = [quantkit.check.Verdict(k) for k in (Kind.REFERENCE, Kind.PASS, Kind.FAIL)]  # failed its own EP's gates
    best = quantkit.check.fastest_deployable(rows, verdicts, 10.0, [0.05, 0.01, 0.0])
    assert best["model"] == "FP32 @ cpu" and best["kind"] == "reference" and best["tied"] == ["INT8 static-qdq @ cpu"]
    best = quantkit.check.fastest_deployable(rows, verdicts, 10.0, [0.0, 0.0, 0.0])
    assert best["model"] == "INT8 static-qdq @ cpu" and best["tied"] == []
