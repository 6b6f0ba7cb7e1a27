"""The command line on the fixture and on tiny graphs: JSON outputs, saved detections, exit codes."""

import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnxruntime as ort
import pytest

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import graphs
import quantkit
import quantkit.check
import quantkit.compare
import quantkit.pipeline
from quantkit import plugin
from quantkit.cli import build_parser, main
from quantkit.manifest import load_manifest
from quantkit import peer
from quantkit.manifest import ConfigSpec
from quantkit.quantization.quantizer import PRESETS

MANIFEST = Path(__file__).resolve().parent.parent / "fixtures" / "manifest.toml"


@pytest.mark.slow
def test_eval_json_and_saved_detections_match_pycocotools(fixture_case, tmp_path, capsys):
    """(slow: all 200 val images, as the model card's figure) `eval --nms multi-label --json` (in process): mAP,
    AP by size and per class equal pycocotools run on the saved detections, and mAP50-95 reproduces the model
    card's reference (pycocotools over `yolo val`'s detections)."""
    dets = tmp_path / "dets.json"
    code = main(
        [
            "eval",
            str(fixture_case.model),
            "--images",
            str(fixture_case.coco_images),
            "--ann",
            str(fixture_case.coco_ann),
            "--json",
            "--detections",
            str(dets),
            "--nms",
            "multi-label",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    stats = json.loads(out)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(fixture_case.coco_ann))
        evaluator = COCOeval(gt, gt.loadRes(str(dets)), "bbox")
        evaluator.params.maxDets = [1, 10, 300]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    assert abs(stats["map50_95"] - precision[precision > -1].mean()) < 1e-4
    assert abs(stats["map50"] - evaluator.stats[1]) < 1e-4
    for k, key in enumerate(("aps", "apm", "apl")):
        assert abs(stats[key] - evaluator.stats[3 + k]) < 1e-4, key
    names = {c["id"]: c["name"] for c in gt.dataset["categories"]}
    assert sorted(stats["per_class"]) == sorted(names.values())
    for k, cat in enumerate(evaluator.params.catIds):
        p = precision[:, :, k]
        assert abs(stats["per_class"][names[cat]] - p[p > -1].mean()) < 1e-4
    assert stats["nms"] == "multi_label"
    card = (fixture_case.model.parent / "README.md").read_text()
    reference = float(re.search(r"`yolo val` detections scored by pycocotools \| ([0-9.]+) \|", card).group(1))
    assert abs(stats["map50_95"] - reference) <= 0.002, (stats["map50_95"], reference)


@pytest.mark.slow
def test_compare_prints_detection_parity(fixture_pipeline, fixture_case, run_cli, tmp_path):
    """(slow: quantizes the naive fault too; tests/test_tasks.py runs `compare` on a tiny graph by default)"""
    int8 = fixture_pipeline.model_path(ConfigSpec("static-qdq", "default"))
    images = tmp_path / "images"  # 60 of the val images: parity needs no annotations, and 60 give ~250 detections
    images.mkdir()
    for path in sorted(fixture_case.coco_images.iterdir())[:60]:
        (images / path.name).symlink_to(path)
    code, out, err = run_cli("compare", fixture_case.model, int8, "--images", images, "--json")
    report = json.loads(out)
    assert code == (0 if report["passed"] else 1), err  # compare gates what it prints
    assert report["passed"] == all(g["passed"] for g in report["gates"])
    # the evidence (2), agreement (1), parity (6) and evaluation inputs (2) gates: the suite's, from the registry
    assert len(report["gates"]) == 11 and {"eval_skipped_fraction", "agreement_map50_95"} <= {
        g["metric"] for g in report["gates"]
    }
    assert report["recall"] > 0.85 and report["precision"] > 0.85 and report["int8_max_score"] <= 1.0
    assert report["collapsed_fraction"] <= 0.05 and report["agreement"]["map50_95"] > 0.9
    assert set(report["raw"]) == {"box", "cls"} and report["images"] == 60 and report["fp32_count"] > 150
    naive = fixture_pipeline.model_path(ConfigSpec("naive", "naive"))  # the planted fault: every detection lost
    code, out, err = run_cli("compare", fixture_case.model, naive, "--images", images)
    assert code == 1, err
    assert "agreement gate FAILED: agreement_map50_95 0.0000 < 0.9000" in out and "verdict: FAIL" in out


def test_quantize_json_is_one_object(tiny_model, calib_dir, tmp_path, run_cli):
    code, out, err = run_cli(
        "quantize",
        tiny_model,
        "-o",
        tmp_path / "q.onnx",
        "--calib",
        calib_dir,
        "--calibrate-method",
        "percentile",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["output"].endswith("q.onnx") and result["float nodes"] == len(result["float_nodes"]) > 0


def test_check_stops_before_quantizing_when_the_evidence_cannot_decide(tiny_model, calib_dir, tmp_path, run_cli):
    """6 images hold out 1: FP32 runs on it first and the run stops at once, exit 3 (not decided, not a failure of
    the model), saying how many more images would decide; nothing is quantized or written."""
    code, out, err = run_cli("check", tiny_model, "--calib", calib_dir, "--out", tmp_path / "report")
    assert code == 3, err
    assert err.strip().splitlines()[-1].startswith("quantkit: accuracy not decided: 1 images, 64 FP32 detections")
    assert "about 24 more would decide" in err and "--val-images DIR" in err and "--no-accuracy" in err
    assert "quantizing" not in err and not (tmp_path / "report").exists()


def test_a_side_row_that_breaks_is_its_rows_fail_not_the_runs_end(tiny_model, tmp_path, run_cli, monkeypatch):
    """The Ultralytics contrast row cannot be made (as onnxruntime 1.32's opset-22 QDQ defect once made it): the
    run goes on to its report; that row reads FAIL with the one-line reason; the recommended row decides."""
    from quantkit.errors import RuntimeLoadError

    made = quantkit.pipeline.CasePipeline.quantized

    def quantized(self, spec):
        if spec.id == "ultralytics-ort":
            raise RuntimeLoadError("the quantized model does not load in onnxruntime (planted)")
        return made(self, spec)

    monkeypatch.setattr(quantkit.pipeline.CasePipeline, "quantized", quantized)
    calib_dir = graphs.write_images(tmp_path / "calib", 100)
    code, out, err = run_cli("check", tiny_model, "--calib", calib_dir, "--out", tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    row = next(r for r in report["rows"] if r["model"] == "INT8 ultralytics-ort")
    assert row["verdict"] == "FAIL: ultralytics-ort could not be made or run: the quantized model does not load in " \
        "onnxruntime (planted)"  # fmt: skip
    assert report["gates"]["ultralytics-ort"][0]["metric"] == "quantized_and_evaluated"
    gated_failures = {g["gate"] for g in report["gates"]["static-qdq"] if g["outcome"] == "fail"}
    assert code == (1 if gated_failures else 0) and "verdict:" in out, err  # the recommended row's gates decide


def test_check_on_a_model_of_your_own(tiny_model, tmp_path, run_cli):
    """A tiny graph's INT8 file is larger than its FP32 file (its QDQ nodes outweigh 7 KB of weights): the
    recommended config fails the size gate's floor -> exit 1. Without annotations, accuracy is judged on
    images held out of --calib, and the verdict says so."""
    calib_dir = graphs.write_images(tmp_path / "calib", 100)
    code, out, err = run_cli("check", tiny_model, "--calib", calib_dir, "--out", tmp_path / "report")
    assert code == 1, err
    assert "size gate FAILED: compression" in out and "accuracy: agreement with FP32 on " in out
    assert "unlabelled images (held out of calib/)" in out
    assert {p.name for p in (tmp_path / "report").iterdir()} == {
        "report.md",
        "report.json",
        "sizes.png",
        "tiny.static-qdq.int8.onnx",
    }  # the gated file itself
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [r["model"] for r in report["rows"]][:3] == [
        "FP32 @ cpu",
        "FP32, Softmax rewritten @ cpu",
        "INT8 static-qdq @ cpu",
    ]
    assert report["rows"][1]["verdict"].startswith("reference (not deployable")
    assert any(n.startswith("FP32, Softmax rewritten") for n in report["notes"])
    assert report["evidence"].startswith("accuracy: agreement with FP32") and report["accuracy"] == "unlabelled"
    assert all(r["peak memory MB"] > 0 for r in report["rows"] if r["verdict"] != "peer")
    assert all(r["deploy ms"] > 0 for r in report["rows"])
    if peer.available():  # the `openvino` extra: the peer's row; without it, a note that says how to get it
        assert report["rows"][-1]["model"] == "OpenVINO NNCF INT8 (peer)"
    else:
        assert any("pip install 'quantkit-yolo[openvino]'" in note for note in report["notes"])
    phases = [line for line in err.splitlines() if line.startswith("quantkit: ")]  # no terminal: one line per phase
    assert [p for p in phases if "quantizing" in p][:3] == [
        "quantkit: quantizing static-qdq ...",
        "quantkit: quantizing weights ...",
        "quantkit: quantizing dynamic ...",
    ]
    assert "quantkit: evaluating static-qdq (agreement with FP32, parity) ..." in phases
    assert any(p.startswith("quantkit: timing FP32 and INT8 on cpu") for p in phases)
    assert any(p.startswith("quantkit: memory") for p in phases)
    assert phases[-1].startswith("quantkit: throughput")
    best = report["best_throughput"]  # of the models whose verdict is pass or reference: not the failed static-qdq
    deployable = {
        r["model"]
        for r in report["rows"]
        if r["verdict"].startswith(("pass", "size only", "reference")) and "not deployable" not in r["verdict"]
    }
    label = {"fp32": "FP32", "fp32-fast-softmax": "FP32, Softmax rewritten"}.get(best["model"], f"INT8 {best['model']}")
    assert f"{label} @ {best['ep']}" in deployable
    assert best["model"] != "static-qdq" and f"best throughput: {best['model']} on cpu" in out
    code, _, err = run_cli("check", tiny_model, "--out", tmp_path / "report2")
    assert code == 2 and "calibration" in err and not (tmp_path / "report2").exists()


def test_eval_maps_classes_by_name_not_by_sorted_ids(request, tmp_path, capsys):
    """A Roboflow-style export: the dataset's name as category 0, real ids shifted by one. Matching by name
    scores the fixture as the unshifted annotations do (the manifest's first-60-images case, evaluated once by
    the plugin's pipeline for the gate suite too), where sorted ids scored 0.0099 on the full val set."""
    case = next(c for c in load_manifest(MANIFEST).cases if c.coco_ann.name == "annotations-first60.json")
    reference = plugin.pipeline(request.config, case).map(None)["map50_95"]
    data = json.loads(case.coco_ann.read_text())
    shift = {c["id"]: i + 1 for i, c in enumerate(data["categories"])}
    data["categories"] = [{"id": 0, "name": "shapes-dataset"}] + [
        {**c, "id": shift[c["id"]]} for c in data["categories"]
    ]
    for ann in data["annotations"]:
        ann["category_id"] = shift[ann["category_id"]]
    shifted = tmp_path / "roboflow.json"
    shifted.write_text(json.dumps(data))
    code = main(["eval", str(case.model), "--images", str(case.coco_images), "--ann", str(shifted), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    stats = json.loads(out)
    assert abs(stats["map50_95"] - reference) < 1e-4 and stats["class_map"] == "names"
    assert any("shapes-dataset" in note for note in stats["notes"])

    for category in data["categories"]:
        category["name"] = f"class_{category['id']}"
    shifted.write_text(json.dumps(data))
    code = main(["eval", str(case.model), "--images", str(case.coco_images), "--ann", str(shifted)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "no overlap at all" in err and "--class-map" in err


@pytest.mark.parametrize("out", ["under-a-file", "proc"])
def test_check_refuses_an_unwritable_out_before_any_work(out, tmp_path, run_cli_process):
    """Before any quantization: within a second of what starting quantkit takes at all (`--version`,
    the same imports), on a quiet or a loaded machine. A chmod 0500 folder would not do: these tests
    run as root, which ignores permissions; nothing can be created below a regular file or in /proc."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    target = blocker / "report" if out == "under-a-file" else Path("/proc/quantkit-report")
    started = time.perf_counter()
    run_cli_process("--version")
    startup = time.perf_counter() - started
    started = time.perf_counter()
    code, _, err = run_cli_process("check", "--out", target, cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "--out" in err, err
    assert time.perf_counter() - started < startup + 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_version_names_quantkit_and_onnxruntime(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith(
        f"quantkit {quantkit.__version__} (quantkit-yolo), onnxruntime {ort.__version__}"
    )


def _subcommands():
    parser = build_parser()
    return parser, next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_help_describes_every_argument_with_choices_and_defaults():
    parser, commands = _subcommands()
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"quantkit {name}: {action.option_strings or action.dest} has no help"
    text = commands["quantize"].format_help()
    assert "[--imgsz HxW]" in text and "640x640 or 640,640" in " ".join(text.split())
    assert (
        "(default: 100)" in " ".join(text.split())
        and "{default,naive,qoperator,dynamic,weights,ultralytics-ort}" in text
    )
    assert set(commands["quantize"]._option_string_actions["--preset"].choices) == set(PRESETS)


def test_imgsz_takes_one_or_two_values():
    parser = build_parser()
    assert parser.parse_args(["quantize", "m.onnx", "-o", "q.onnx", "--imgsz", "192", "320"]).imgsz == (192, 320)
    assert parser.parse_args(["quantize", "m.onnx", "-o", "q.onnx", "--imgsz", "640"]).imgsz == (640, 640)
    assert parser.parse_args(["check", "--imgsz", "640", "--out", "r"]).imgsz == (640, 640)


@pytest.mark.parametrize("size, hw", [("640", (640, 640)), ("192x320", (192, 320)), ("192,320", (192, 320))])
def test_imgsz_is_one_token_before_the_model(size, hw):
    """`quantize --imgsz 640 model.onnx` once read the model path as a second size ('invalid int value')."""
    args = build_parser().parse_args(["quantize", "--imgsz", size, "m.onnx", "-o", "q.onnx"])
    assert (args.imgsz, args.model) == (hw, Path("m.onnx"))
    args = build_parser().parse_args(["check", "--imgsz", size, "m.onnx"])
    assert (args.imgsz, args.model) == (hw, Path("m.onnx"))


def test_imgsz_that_is_not_a_size_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["quantize", "--imgsz", "640x", "m.onnx", "-o", "q.onnx"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "'640x' is not a size: write 640, 640x640 or 640,640" in err


@pytest.mark.parametrize("given, missing", [("--coco-images", "--coco-ann"), ("--coco-ann", "--coco-images")])
def test_coco_images_and_annotations_come_in_pairs(
    given, missing, tiny_model, calib_dir, tmp_path, monkeypatch, capsys
):
    """Half of the pair was silently ignored (the check ran without accuracy): now one line naming the other half."""
    monkeypatch.setattr(quantkit.check, "run_check", lambda *a, **k: pytest.fail("check ran with half a dataset"))
    code = main(
        [
            "check",
            str(tiny_model),
            "--calib",
            str(calib_dir),
            given,
            str(tmp_path / "half"),
            "--out",
            str(tmp_path / "report"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{given} needs {missing}" in err
    assert not (tmp_path / "report").exists()


def test_check_finds_a_class_name_mismatch_before_quantizing(fixture_case, tmp_path, monkeypatch, capsys):
    """The annotations' class names are checked with the other inputs, not after the first long phase."""
    ann = json.loads(Path(fixture_case.coco_ann).read_text())
    for cat in ann["categories"]:
        cat["name"] = f"not-{cat['name']}"
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    quantized = []
    monkeypatch.setattr(quantkit.pipeline.CasePipeline, "quantized", lambda self, spec: quantized.append(spec) or 1 / 0)
    code = main(
        [
            "check",
            str(fixture_case.model),
            "--calib",
            str(fixture_case.calib),
            "--coco-images",
            str(fixture_case.coco_images),
            "--coco-ann",
            str(tmp_path / "ann.json"),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert quantized == [] and code == 2, err
    assert err.startswith("quantkit: error: class names do not match the annotations") and err.count("\n") == 1


def test_check_stops_on_annotations_of_other_images(fixture_case, tmp_path, run_cli):
    """Same file names and sizes, boxes moved to the next image: FP32 itself scores under the case's floor, so
    the annotations do not describe the images — one line, exit 2, before anything is quantized (it used to
    pass: 'verdict: pass (accuracy: annotated mAP on 200 images)' with FP32 mAP 0.0001)."""
    data = json.loads(fixture_case.coco_ann.with_name("annotations-first60.json").read_text())
    ids = [image["id"] for image in data["images"]]
    moved = {a: b for a, b in zip(ids, ids[1:] + ids[:1])}
    for ann in data["annotations"]:
        ann["image_id"] = moved[ann["image_id"]]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    args = ("--calib", fixture_case.calib, "--coco-images", fixture_case.coco_images, "--coco-ann", other)
    code, out, err = run_cli("check", fixture_case.model, *args, "--out", tmp_path / "report")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("quantkit: error: FP32 itself scores mAP50-95 0.0") and "under the floor 0.05" in err
    assert "quantizing" not in err and not (tmp_path / "report").exists()


def test_ctrl_c_is_one_line_exit_130_and_leaves_no_temp_folder(fixture_case, tmp_path):
    """Ctrl-C (SIGINT to the process group) mid-quantization: no traceback, exit 130, nothing left behind."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "QUANTKIT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quantkit",
            "check",
            str(fixture_case.model),
            "--calib",
            str(fixture_case.calib),
            "--out",
            str(tmp_path / "report"),
        ],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    first = proc.stderr.readline()
    assert first.startswith("quantkit: quantizing"), first + proc.stderr.read()
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    *before, last = err.splitlines(keepends=True)  # before: progress lines written before Ctrl-C (quantkit.progress)
    assert (proc.returncode, last) == (130, "quantkit: interrupted: nothing written\n"), err
    assert all(line.startswith("quantkit: ") and not line.startswith("quantkit: interrupted") for line in before), err
    assert not [p.name for p in temp.iterdir() if p.name.startswith(("quantkit-", "ort.quant"))]
    assert not (tmp_path / "report").exists()


def test_ctrl_c_while_the_command_is_still_importing_is_one_line_too(tiny_model, calib_dir, tmp_path):
    """Ctrl-C in the first instant (onnx and onnxruntime still importing: over a second here) is the same one
    line and exit 130, never an import traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantkit", "quantize", str(tiny_model), "--calib", str(calib_dir), "-o", "x.onnx"],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    time.sleep(0.4)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, "quantkit: interrupted: nothing written\n")
    assert not (tmp_path / "x.onnx").exists()


def test_docs_command_block_matches_the_usage_lines():
    """Every `quantkit COMMAND ...` entry of docs/commands.md's block is that command's usage, whitespace aside."""
    readme = (Path(__file__).resolve().parent.parent / "docs" / "commands.md").read_text()
    block = readme.split("## Commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    entries = {}
    for line in block.splitlines():
        if line.startswith("quantkit "):
            entries[line.split()[1]] = line
        else:
            entries[list(entries)[-1]] += " " + line
    _, commands = _subcommands()
    usages = {name: " ".join(sub.format_usage().removeprefix("usage: ").split()) for name, sub in commands.items()}
    assert {name: " ".join(e.split()) for name, e in entries.items() if name != "--version"} == usages
    assert "--version" in entries


def test_unforeseen_errors_are_one_line_too(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : boom\nsecond line")

    monkeypatch.setattr(quantkit.compare, "run_compare", broken)
    assert main(["compare", "a.onnx", "b.onnx", "--images", "x"]) == 2
    assert capsys.readouterr().err == (
        "quantkit: error: unexpected RuntimeError: boom: rerun with QUANTKIT_TRACEBACK=1 and report it\n"
    )
    monkeypatch.setenv("QUANTKIT_TRACEBACK", "1")
    with pytest.raises(RuntimeError):
        main(["compare", "a.onnx", "b.onnx", "--images", "x"])


def test_an_error_a_ctrl_c_causes_on_its_way_out_is_still_an_interruption(tiny_model, monkeypatch, capsys):
    """A Ctrl-C that surfaces as another exception first (a child process or native call cut short) is reported
    as the interruption, exit 130 in one line, not as a bug to report (seen under load: 'unexpected ...')."""

    def broken_by_the_interrupt(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            raise RuntimeError("child process exited with -2") from None
        return 0

    args = build_parser().parse_args(["eval", str(tiny_model), "--images", ".", "--ann", "a.json"])
    monkeypatch.setattr(quantkit.cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, a: args})())
    args.func = broken_by_the_interrupt
    assert main(["eval"]) == 130
    assert capsys.readouterr().err == "quantkit: interrupted: nothing written\n"
