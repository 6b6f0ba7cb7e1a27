"""Progress of long steps (quantkit/progress.py): plain lines with counts where stderr is not a terminal (CI logs),
at least every INTERVAL_S (lowered here, never slept through), and silence where progress is off."""

import io
import json
import re
import time

import pytest

from quantkit import progress
from quantkit.measure.bench import timed_twice
from quantkit.measure.evaluate import ImageSet, folder_items, predict
from quantkit.measure.session import Runner
from quantkit.quantization.calibration import load_calibration
from quantkit.quantization.quantizer import quantize

LINE = re.compile(r"^quantkit: (?P<desc>.+?) (?P<n>\d+)/(?P<total>\d+) (?P<unit>\w+), [\d.]+ s(?P<done>, done)?$")


@pytest.fixture
def often(monkeypatch):
    """A line at every count (interval 0): the periodic lines without waiting 30 s for them."""
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)


def counted(text: str, desc: str) -> list[tuple[int, int, bool]]:
    """(n, total, done) of each plain line of ``desc`` in ``text``."""
    rows = [LINE.match(line) for line in text.splitlines()]
    return [(int(m["n"]), int(m["total"]), bool(m["done"])) for m in rows if m and m["desc"] == desc]


def test_a_step_writes_plain_lines_with_counts_and_an_end_line(often):
    out = io.StringIO()  # not a terminal
    with progress.Progress("calibration", 4, "images", stream=out) as bar:
        for _ in range(4):
            bar.update()
    assert counted(out.getvalue(), "calibration") == [(1, 4, False), (2, 4, False), (3, 4, False), (4, 4, False)] + [
        (4, 4, True)
    ]


def test_lines_come_at_the_interval_not_at_every_count(monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL_S", 0.2)
    out = io.StringIO()
    with progress.Progress("timing", 1000, "rounds", stream=out) as bar:
        for _ in range(1000):
            bar.update()  # well within 0.2 s: no line due
    assert out.getvalue() == ""  # short and not announced: silent (one-line errors stay one line)
    with progress.Progress("timing", 6, "rounds", stream=out) as bar:
        for _ in range(6):
            time.sleep(0.1)
            bar.update()
    lines = counted(out.getvalue(), "timing")
    assert 2 <= len(lines) <= 4 and lines[-1] == (6, 6, True), out.getvalue()


def test_a_step_that_does_not_come_round_still_writes_a_line(monkeypatch):
    """The heartbeat: one long call inside a step (onnxruntime's quantize_static) still shows the time."""
    monkeypatch.setattr(progress, "INTERVAL_S", 0.1)
    out = io.StringIO()
    with progress.Progress("quantize_static of m.onnx", stream=out, announce=True):
        with progress.Progress("calibration", 3, "images", stream=out) as inner:
            time.sleep(0.35)  # no update: the innermost step speaks, the outer one keeps quiet
            inner.update(3)
        time.sleep(0.35)
    lines = out.getvalue().splitlines()
    assert lines[0] == "quantkit: quantize_static of m.onnx ..."
    inner_lines = [x for x in lines if x.startswith("quantkit: calibration 0/3 images, ")]
    assert len(inner_lines) >= 2, lines
    outer = [x for x in lines if re.fullmatch(r"quantkit: quantize_static of m\.onnx, [\d.]+ s", x)]
    assert outer and lines.index(outer[0]) > lines.index(inner_lines[-1]), lines
    assert re.fullmatch(r"quantkit: quantize_static of m\.onnx done, [\d.]+ s", lines[-1]), lines


def test_disabled_and_failed_steps(often):
    out = io.StringIO()
    with progress.Progress("calibration", 2, "images", stream=out, enabled=False, announce=True) as bar:
        bar.update(2)
    assert out.getvalue() == ""
    with pytest.raises(RuntimeError), progress.Progress("calibration", 2, "images", stream=out) as bar:
        bar.update()
        raise RuntimeError("the error says what happened")
    assert [row[2] for row in counted(out.getvalue(), "calibration")] == [False]  # no end line on an error
    assert progress._OPEN == []


def test_calibration_and_quantize_static_report_progress(often, tiny_model, calib_dir, tmp_path, capsys):
    calib = load_calibration(calib_dir, (32, 32), progress=True)
    err = capsys.readouterr().err
    assert counted(err, "reading calibration images")[-1] == (6, 6, True), err
    quantize(tiny_model, tmp_path / "q.onnx", calib=calib, range_cache=False)
    out, err = capsys.readouterr()
    assert out == ""  # progress goes to stderr only
    assert "quantkit: onnxruntime quantize_static of tiny.onnx ...\n" in err, err
    lines = [m for m in map(LINE.match, err.splitlines()) if m and m["desc"].startswith("calibration")]
    assert lines and lines[-1]["n"] == lines[-1]["total"] == "6" and lines[-1]["done"], err
    assert re.search(r"quantize_static of tiny\.onnx done, [\d.]+ s\n$", err), err


def test_the_histogram_passes_report_progress(often, tiny_model, calib_dir, tmp_path, capsys):
    quantize(tiny_model, tmp_path / "q.onnx", calib=calib_dir, calibrate_method="entropy", range_cache=False)
    err = capsys.readouterr().err
    for name in ("calibration pass 1/2 (ranges)", "calibration pass 2/2 (histograms)"):
        assert counted(err, name)[-1] == (6, 6, True), err


def test_progress_false_is_silent(often, tiny_model, calib_dir, tmp_path, capfd):
    quantize(tiny_model, tmp_path / "q.onnx", calib=calib_dir, range_cache=False, progress=False)
    assert capfd.readouterr() == ("", "")


def test_evaluation_and_timing_report_progress(often, tiny_model, calib_dir, capsys):
    images = ImageSet.load(folder_items(calib_dir), (32, 32), progress=True)
    runner = Runner(tiny_model, "cpu", 1, spin=False)
    predict(runner, images, progress=True)
    timed_twice({"a": runner}, images.boxed[0][None].transpose(0, 3, 1, 2).astype("float32") / 255, 3, progress=True)
    err = capsys.readouterr().err
    assert counted(err, "reading images")[-1] == (6, 6, True)
    assert counted(err, "inference (tiny.onnx)")[-1] == (6, 6, True)
    assert counted(err, "interleaved timing (1 models)")[-1] == (6, 6, True)


def test_quantize_command_shows_progress_and_json_stays_one_object(often, tiny_model, calib_dir, tmp_path, run_cli):
    code, out, err = run_cli("quantize", tiny_model, "-o", tmp_path / "a.onnx", "--calib", calib_dir)
    assert code == 0 and "wrote" in out and "quantkit:" not in out
    assert "quantkit: onnxruntime quantize_static of tiny.onnx ..." in err
    assert counted(err, "reading calibration images")
    code, out, err = run_cli("quantize", tiny_model, "-o", tmp_path / "b.onnx", "--calib", calib_dir, "--json")
    assert code == 0 and isinstance(json.loads(out), dict) and "quantkit:" not in err
