"""The OpenVINO + NNCF peer: its INT8 model keeps the head float and runs, and `quantkit bench` times it
over the same threads x streams grid as onnxruntime's rows (without the extra, check's note is tested in
tests/test_cli.py, bench's here)."""

import itertools
import json

import numpy as np
import pytest

from quantkit import peer
from quantkit.quantization.calibration import load_calibration
from quantkit.cli import main
from quantkit.quantization.quantizer import quantize
from quantkit.measure.session import Runner

needs_openvino = pytest.mark.skipif(
    not peer.available(), reason="openvino and nncf not installed (the `openvino` extra)"
)


@needs_openvino
def test_nncf_int8_runs_like_the_onnx_model(tiny_model, calib_dir, tmp_path):
    calib = load_calibration(calib_dir, (32, 32), progress=False)
    xml = peer.nncf_int8(tiny_model, calib, tmp_path)
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert peer.nncf_int8(tiny_model, calib, tmp_path) == xml  # made once per model and data
    x = calib.tensors[:1]
    ov, fp32 = peer.OVRunner(xml, threads=1).run(x), Runner(tiny_model).run(x)
    assert ov.shape == fp32.shape
    scores = ov[0, 4:]  # the head stayed float: class scores are sigmoid outputs, not steps of a box scale
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    assert np.abs(ov - fp32).max() < 0.1 * np.abs(fp32).max()
    assert peer.block_ms(peer.OVRunner(xml, threads=1), x, rounds=3, warmup=1) > 0


# -- quantkit bench: the peer's row over the same threads x streams grid, or a note saying how to get it --------

ROW_KEYS = {"model", "ep", "threads", "streams", "latency_ms", "fps", "oversubscribed"}


def bench(capsys, model, *args, json_out=True) -> dict | str:
    argv = ["bench", str(model), "--seconds", "0.1", *map(str, args)] + (["--json"] if json_out else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out) if json_out else out


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The peer's model goes to a fresh quantkit cache, not the user's."""
    monkeypatch.setenv("QUANTKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@needs_openvino
def test_bench_adds_the_peer_over_the_same_grid(tiny_model, calib_dir, cache, capsys, monkeypatch):
    made = []

    class Spy(peer.OVRunner):  # what OpenVINO was told: one compiled model per stream, INFERENCE_NUM_THREADS = threads
        def __init__(self, model_path, threads=None):
            super().__init__(model_path, threads)
            made.append(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    monkeypatch.setattr(peer, "OVRunner", Spy)
    report = bench(capsys, tiny_model, "--calib", calib_dir, "--threads", "1,2", "--streams", "1,2")
    rows = report["rows"]
    assert all(set(r) == ROW_KEYS for r in rows)
    ours, theirs = [r for r in rows if r["model"] == str(tiny_model)], [r for r in rows if r["model"] == peer.LABEL]
    ultralytics = [r for r in rows if peer.ULTRALYTICS_PRESET in r["model"]]  # the one-flag export's row, same grid
    assert len(ours) == len(theirs) == len(ultralytics) == 4 and len(rows) == 12
    grid = sorted(itertools.product([1, 2], [1, 2]))
    assert (
        sorted((r["threads"], r["streams"]) for r in theirs)
        == sorted((r["threads"], r["streams"]) for r in ours)
        == grid
    )
    assert all(r["ep"] == peer.EP and r["latency_ms"] > 0 and r["fps"] > 0 for r in theirs)
    assert made == [1] + [1] * 3 + [2] * 3  # compiled once before timing, then each setting's streams
    assert report["best"][peer.LABEL]["latency"]["model"] == peer.LABEL
    assert len(report["notes"]) == 2 and peer.versions() in report["notes"][0] and "preset MIXED" in report["notes"][0]
    assert list((cache / "peer").glob("tiny-nncf-*.xml"))  # made in quantkit's cache, reused by check


@needs_openvino
def test_bench_table_shows_the_peer_row(tiny_model, calib_dir, cache, capsys):
    out = bench(capsys, tiny_model, "--calib", calib_dir, "--threads", "1", "--streams", "1", json_out=False)
    assert f"| {peer.LABEL} | {peer.EP} | 1 | 1 |" in out
    assert f"{peer.LABEL}: best latency" in out
    assert [line for line in out.splitlines() if line.startswith("note: peer: ")] != []


@needs_openvino
def test_bench_of_an_int8_first_model_says_to_put_the_fp32_source_first(tiny_model, calib_dir, cache, tmp_path, capsys):
    int8 = quantize(tiny_model, tmp_path / "int8.onnx", calib=calib_dir, progress=False).output
    report = bench(capsys, int8, "--calib", calib_dir, "--threads", "1", "--streams", "1")
    assert [r["model"] for r in report["rows"]] == [int8]
    assert all("already quantized: put its FP32 source first" in note for note in report["notes"])


@pytest.mark.parametrize(
    "calib, missing",
    [
        (True, ["pip install 'quantkit-yolo[openvino]'"]),
        (False, ["pip install 'quantkit-yolo[openvino]'", "--calib DIR"]),
    ],
)
def test_bench_without_the_extra_notes_how_to_add_the_peer(
    tiny_model, calib_dir, cache, capsys, monkeypatch, calib, missing
):
    monkeypatch.setattr(peer, "available", lambda: False)
    args = ["--threads", "1", "--streams", "1"] + (["--calib", calib_dir] if calib else [])
    report = bench(capsys, tiny_model, *args)
    models = [r["model"] for r in report["rows"]]
    assert models[0] == str(tiny_model) and all(r["ep"] == "cpu" for r in report["rows"])
    assert len(report["notes"]) == 1 + calib  # with --calib: the Ultralytics-ORT row and its note
    note = report["notes"][0]
    assert all(m in note for m in missing) and ("--calib" in note) == (not calib) and "\n" not in note
    if calib:
        assert (
            len(models) == 2
            and peer.ULTRALYTICS_PRESET in models[1]
            and "yolo export format=onnx int8=True" in report["notes"][1]
        )
    else:
        assert len(models) == 1 and not cache.exists()  # nothing was quantized
    out = bench(capsys, tiny_model, *args, json_out=False)
    assert [line for line in out.splitlines() if line.startswith("note: ")] == [f"note: {n}" for n in report["notes"]]
    assert peer.LABEL + " |" not in out


def test_bench_without_calib_notes_it_whether_or_not_the_extra_is_here(tiny_model, cache, capsys):
    note = bench(capsys, tiny_model, "--threads", "1", "--streams", "1")["notes"][0]
    assert "pass --calib DIR" in note and ("pip install" in note) == (not peer.available())


def test_bench_with_a_calib_folder_without_images_is_an_error_even_without_the_extra(
    tiny_model, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(peer, "available", lambda: False)
    assert main(["bench", str(tiny_model), "--seconds", "0.1", "--calib", str(tmp_path / "absent")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "calibration folder not found" in captured.err
