"""Bad input: a typed exception from the API; from the CLI, a table of bad inputs each ending in exit code 2,
one line on stderr that names the fix, and nothing written."""

import json
from pathlib import Path

import pytest

import graphs
from quantkit import CalibrationError, DatasetError, ModelError, OutputError
from quantkit import quantize
from quantkit.compare import run_compare as compare
from quantkit.measure.evaluate import evaluate


def _bad_model(kind, tmp_path, tiny_model):
    if kind == "missing":
        return tmp_path / "nope.onnx"
    if kind == "not-onnx":
        path = tmp_path / "notes.onnx"
        path.write_text("this is a text file, not a model\n" * 20)
        return path
    if kind == "truncated":
        path = tmp_path / "truncated.onnx"
        path.write_bytes(tiny_model.read_bytes()[: tiny_model.stat().st_size // 2])
        return path
    if kind == "empty":
        path = tmp_path / "empty.onnx"
        path.write_bytes(b"")
        return path
    if kind == "no-image-input":
        return graphs.save(graphs.classifier(), tmp_path / "classifier.onnx")
    if kind == "dynamic-no-imgsz":
        return graphs.save(graphs.tiny_yolo(dynamic=True), tmp_path / "dyn.onnx")
    raise ValueError(kind)


MODEL_CASES = {  # kind -> words the message must contain
    "missing": "not found",
    "not-onnx": "not",
    "truncated": "truncated",
    "empty": "empty",
    "no-image-input": "rank-4",
    "dynamic-no-imgsz": "--imgsz",
}


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("kind", list(MODEL_CASES))
def test_bad_model_api(kind, tmp_path, tiny_model, calib_dir):
    model = _bad_model(kind, tmp_path, tiny_model)
    before = _listing(tmp_path)
    with pytest.raises(ModelError, match=MODEL_CASES[kind]):
        quantize(model, tmp_path / "out.onnx", calib=calib_dir, progress=False)
    assert _listing(tmp_path) == before


CALIB_CASES = {"missing": "not found", "empty": "no images", "unreadable": "could be read"}


def _bad_calib(kind, tmp_path):
    folder = tmp_path / f"calib-{kind}"
    if kind != "missing":
        folder.mkdir()
    if kind == "unreadable":
        for i in range(3):
            (folder / f"broken_{i}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


@pytest.mark.parametrize("kind", list(CALIB_CASES))
def test_bad_calibration(kind, tmp_path, tiny_model):
    calib = _bad_calib(kind, tmp_path)
    with pytest.raises(CalibrationError, match=CALIB_CASES[kind]):
        quantize(tiny_model, tmp_path / "out.onnx", calib=calib, progress=False)
    assert not (tmp_path / "out.onnx").exists()


def test_static_without_calibration(tiny_model, tmp_path):
    with pytest.raises(CalibrationError, match="--calib"):
        quantize(tiny_model, tmp_path / "out.onnx", progress=False)


def test_unreadable_images_are_skipped_and_counted(tiny_model, calib_dir, tmp_path):
    (calib_dir / "zz_broken.png").write_bytes(b"garbage")
    result = quantize(tiny_model, tmp_path / "out.onnx", calib=calib_dir, progress=False)
    assert result.calibration == {"images": 6, "skipped": 1, "available": 7}


@pytest.mark.parametrize("target", ["same", "missing-folder", "folder-is-a-file", "a-folder"])
def test_bad_output(target, tmp_path, tiny_model, calib_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {
        "same": tiny_model,
        "missing-folder": tmp_path / "no" / "such" / "out.onnx",
        "folder-is-a-file": blocker / "out.onnx",
        "a-folder": tmp_path,
    }[target]
    before = tiny_model.read_bytes()
    with pytest.raises(OutputError):
        quantize(tiny_model, out, calib=calib_dir, progress=False)
    assert tiny_model.read_bytes() == before


def test_eval_images_missing_on_disk(fixture_case, tmp_path):
    ann = json.loads(fixture_case.coco_ann.read_text())
    ann["images"].append({"id": 9999, "file_name": "ghost.jpg", "width": 10, "height": 10})
    bad = tmp_path / "ann.json"
    bad.write_text(json.dumps(ann))
    with pytest.raises(DatasetError, match="1 of 201 images"):
        evaluate(fixture_case.model, fixture_case.coco_images, bad, progress=False)


def test_eval_model_without_a_yolo_head(tmp_path, fixture_case):
    """A model whose output is not [1, 4+nc, N] gets an error naming the shape."""
    model = graphs.tiny_yolo()
    concat = model.graph.node[-1]
    concat.op_type, concat.input[:] = "Sigmoid", ["scores"]
    del concat.attribute[:]
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 2
    path = graphs.save(model, tmp_path / "cls_only.onnx")
    with pytest.raises(ModelError, match=r"\[1, 2, 64\]"):
        compare(path, path, fixture_case.coco_images, imgsz=(32, 32), progress=False)


def test_an_ep_that_does_not_start_is_an_error_not_a_cpu_run(monkeypatch, capsys, tiny_model, tmp_path):
    """TensorRT listed by onnxruntime but its libraries absent: onnxruntime falls back to CPU. quantkit
    refuses to report CPU numbers under the name 'tensorrt'."""
    import onnxruntime

    from quantkit import cli

    listed = onnxruntime.get_available_providers() + ["TensorrtExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: listed)
    images = graphs.write_images(tmp_path / "images")
    code = cli.main(["compare", str(tiny_model), str(tiny_model), "--images", images, "--ep", "tensorrt"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "execution provider 'tensorrt' did not start" in err and "fell back to CPUExecutionProvider" in err
    ann = tmp_path / "ann.json"
    ann.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "img_0.jpg", "width": 56, "height": 40}],
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9], "area": 81, "iscrowd": 0}
                ],
                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            }
        )
    )
    code = cli.main(["eval", str(tiny_model), "--images", images, "--ann", str(ann), "--ep", "tensorrt", "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (
        err
    )  # no number under a name that did not run
    assert "execution provider 'tensorrt' did not start" in err


# -- the command line: a table of bad inputs ------------------------------------------------------

DYNAMIC_FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "models" / "shapes-v8n-dynamic.onnx"


class Workspace:
    """The files the bad inputs need, made on demand under one folder; the CLI runs in its empty ``cwd``."""

    def __init__(self, root: Path):
        self.root, self.cwd = root, root / "cwd"
        self.cwd.mkdir()

    def tiny(self, hw=(32, 32), dynamic=False) -> Path:
        name = f"tiny-{hw[0]}{'-dyn' if dynamic else ''}.onnx"
        return Path(graphs.save(graphs.tiny_yolo(hw, dynamic=dynamic), self.root / name))

    def bad_model(self, kind) -> Path:
        return Path(_bad_model(kind, self.root, self.tiny()))

    def calib(self) -> Path:
        return Path(graphs.write_images(self.root / "calib"))

    def bad_calib(self, kind) -> Path:
        return _bad_calib(kind, self.root)

    def file(self) -> Path:
        path = self.root / "a-file"
        path.write_text("a regular file: nothing can be created below it, not even by root\n")
        return path

    def coco(self, edit=None) -> tuple[Path, Path]:
        """A COCO set of six small images (two classes); ``edit(data)`` spoils the annotations."""
        images = Path(graphs.write_images(self.root / "val"))
        data = {
            "images": [{"id": i, "file_name": f"img_{i}.jpg", "width": 56, "height": 40} for i in range(6)],
            "annotations": [
                {"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [4, 4, 20, 16], "area": 320, "iscrowd": 0}
                for i in range(6)
            ],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        }
        if edit:
            edit(data)
        ann = self.root / "ann.json"
        ann.write_text(json.dumps(data))
        return images, ann

    def results(self) -> Path:
        folder = self.root / "results" / "1.15.1"
        folder.mkdir(parents=True)
        (folder / "m--c.json").write_text(json.dumps({"case": "m", "config": "c", "ep": "cpu"}))
        return folder.parent


def _quantize(model, *extra, out=None):
    return lambda ws: ["quantize", model(ws), "-o", out(ws) if out else ws.root / "out.onnx", *extra]


def _eval(edit=None, *extra, images=None):
    def argv(ws):
        coco_images, ann = ws.coco(edit)
        return ["eval", ws.tiny(), "--images", images(ws) if images else coco_images, "--ann", ann, *extra]

    return argv


def _ann_not_json(ws):
    bad = ws.root / "ann.txt"
    bad.write_text("images: none\n")
    return ["eval", ws.tiny(), "--images", ws.calib(), "--ann", bad]


def _ghost(data):
    data["images"].append({"id": 99, "file_name": "ghost.jpg"})


BAD_INPUTS = {  # id -> (argv from a Workspace, words the one stderr line must hold: the problem and its fix)
    "model-missing": (_quantize(lambda ws: ws.bad_model("missing"), "--mode", "dynamic"), "model not found"),
    "model-not-onnx": (_quantize(lambda ws: ws.bad_model("not-onnx"), "--mode", "dynamic"), "not ONNX; re-export it"),
    "model-truncated": (_quantize(lambda ws: ws.bad_model("truncated"), "--mode", "dynamic"), "truncated"),
    "model-empty": (_quantize(lambda ws: ws.bad_model("empty"), "--mode", "dynamic"), "re-export the model"),
    "model-no-image-input": (_quantize(lambda ws: ws.bad_model("no-image-input"), "--mode", "dynamic"), "rank-4"),
    "dynamic-without-imgsz": (_quantize(lambda ws: ws.tiny(dynamic=True), "--mode", "dynamic"), "pass --imgsz H W"),
    "imgsz-7x7-dynamic-fixture": (
        _quantize(lambda ws: DYNAMIC_FIXTURE, "--mode", "dynamic", "--imgsz", "7", "7"),
        "--imgsz 7x7 is outside 32..4096: use 32x32",
    ),
    "imgsz-huge-dynamic-fixture": (
        _quantize(lambda ws: DYNAMIC_FIXTURE, "--mode", "dynamic", "--imgsz", "100000", "100000"),
        "use 4096x4096",
    ),
    "imgsz-off-stride": (
        _quantize(lambda ws: ws.tiny(dynamic=True), "--mode", "dynamic", "--imgsz", "191", "320"),
        "not a multiple of the stride 4: use 192x320",
    ),
    "imgsz-three-values": (_quantize(lambda ws: ws.tiny(), "--imgsz", "1", "2", "3"), "unrecognized arguments: 3"),
    "imgsz-not-a-number": (_quantize(lambda ws: ws.tiny(), "--imgsz", "big"), "'big' is not a size: write 640"),
    "imgsz-on-fixed-input": (_quantize(lambda ws: ws.tiny(), "--mode", "dynamic", "--imgsz", "320"), "drop --imgsz"),
    "calib-missing": (
        lambda ws: ["quantize", ws.tiny(), "-o", ws.root / "o.onnx", "--calib", ws.bad_calib("missing")],
        "pass --calib DIR",
    ),
    "calib-empty": (
        lambda ws: ["quantize", ws.tiny(), "-o", ws.root / "o.onnx", "--calib", ws.bad_calib("empty")],
        "no images",
    ),
    "calib-unreadable": (
        lambda ws: ["quantize", ws.tiny(), "-o", ws.root / "o.onnx", "--calib", ws.bad_calib("unreadable")],
        "could be read: check the files",
    ),
    "static-without-calib": (_quantize(lambda ws: ws.tiny()), "pass --calib DIR"),
    "calib-count-zero": (_quantize(lambda ws: ws.tiny(), "--calib-count", "0"), "must be a positive integer"),
    "unknown-preset": (_quantize(lambda ws: ws.tiny(), "--preset", "fast"), "invalid choice"),
    "output-missing": (lambda ws: ["quantize", ws.tiny(), "--mode", "dynamic"], "required: -o/--output"),
    "output-is-the-model": (
        lambda ws: ["quantize", ws.tiny(), "-o", ws.root / "tiny-32.onnx", "--mode", "dynamic"],
        "choose another -o path",
    ),
    "output-folder-missing": (
        _quantize(lambda ws: ws.tiny(), "--mode", "dynamic", out=lambda ws: ws.root / "no" / "o.onnx"),
        "create it first",
    ),
    "output-is-a-folder": (
        _quantize(lambda ws: ws.tiny(), "--mode", "dynamic", out=lambda ws: ws.root),
        "pass a file path",
    ),
    "ann-missing": (
        lambda ws: ["eval", ws.tiny(), "--images", ws.calib(), "--ann", ws.root / "none.json"],
        "pass the annotations JSON",
    ),
    "ann-not-json": (_ann_not_json, "not valid JSON"),
    "ann-without-annotations": (_eval(lambda d: d.pop("annotations")), "needs images, annotations and categories"),
    "ann-bad-bbox": (_eval(lambda d: d["annotations"][0].update(bbox=[1, 2])), "is not [x, y, width, height]"),
    "ann-images-missing-on-disk": (_eval(_ghost), "point --images at the folder"),
    "eval-images-folder-missing": (_eval(None, images=lambda ws: ws.root / "nowhere"), "images folder not found"),
    "eval-detections-under-a-file": (
        lambda ws: _eval()(ws) + ["--detections", ws.file() / "dets.json"],
        "is a file, not a folder",
    ),
    "eval-unknown-ep": (_eval(None, "--ep", "npu"), "choose one of cpu"),
    "compare-different-sizes": (
        lambda ws: ["compare", ws.tiny(), ws.tiny((64, 64)), "--images", ws.calib()],
        "compare an INT8 model with the FP32 model it was quantized from",
    ),
    "compare-no-images": (
        lambda ws: ["compare", ws.tiny(), ws.tiny(), "--images", ws.bad_calib("empty")],
        "pass a folder with .jpg/.png images",
    ),
    "check-out-under-a-file": (
        lambda ws: ["check", ws.tiny(), "--calib", ws.calib(), "--out", ws.file() / "out"],
        "is a file, not a folder",
    ),
    "check-out-in-proc": (
        lambda ws: ["check", ws.tiny(), "--calib", ws.calib(), "--out", "/proc/quantkit-report"],
        "pass a writable folder",
    ),
    "check-without-calib": (lambda ws: ["check", ws.tiny()], "pass --calib DIR"),
    "check-unknown-ep": (lambda ws: ["check", ws.tiny(), "--calib", ws.calib(), "--ep", "npu"], "choose one of cpu"),
    "check-threads-zero": (lambda ws: ["check", "--threads", "0"], "must be a positive integer"),
    "tune-output-under-a-file": (lambda ws: ["tune", ws.tiny(), "-o", ws.file() / "t.toml"], "is a file, not a folder"),
    "history-missing": (lambda ws: ["history", ws.root / "results"], "to write results first"),
    "history-out-under-a-file": (
        lambda ws: ["history", ws.results(), "--out", ws.file() / "h"],
        "is a file, not a folder",
    ),
    "no-command": (lambda ws: [], "required: COMMAND"),
    "unknown-command": (lambda ws: ["quantise"], "invalid choice"),
}


def _state(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, run_cli):
    """Exit code 2, one stderr line naming the problem and the fix, nothing written (cwd and outputs)."""
    argv, expected = BAD_INPUTS[case]
    ws = Workspace(tmp_path)
    args = argv(ws)
    before = _state(tmp_path)
    code, out, err = run_cli(*args, cwd=ws.cwd)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("quantkit") and ": error: " in err, err
    assert expected in err, err
    assert _state(tmp_path) == before


@pytest.mark.parametrize("case", ["no-command", "model-missing"])
def test_the_entry_point_exits_2_with_one_line(case, tmp_path, run_cli_process):
    """The same through `python -m quantkit` (the table above runs in process): the real exit code and stderr."""
    argv, expected = BAD_INPUTS[case]
    ws = Workspace(tmp_path)
    code, out, err = run_cli_process(*argv(ws), cwd=ws.cwd)
    assert code == 2 and err.count("\n") == 1 and expected in err, err
