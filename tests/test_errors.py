"""Bad input: a typed exception from the API, exit code 2 and one line from the CLI, nothing written."""

import json

import pytest

import graphs
from quantkit import CalibrationError, DatasetError, ModelError, OutputError, quantize
from quantkit.evaluate import compare, evaluate


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


@pytest.mark.parametrize("kind", list(MODEL_CASES))
def test_bad_model_cli(kind, tmp_path, tiny_model, calib_dir, run_cli):
    model = _bad_model(kind, tmp_path, tiny_model)
    code, out, err = run_cli("quantize", model, "-o", tmp_path / "out.onnx", "--calib", calib_dir)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("quantkit: error:") and MODEL_CASES[kind] in err
    assert "Traceback" not in err and not (tmp_path / "out.onnx").exists()


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
def test_bad_calibration(kind, tmp_path, tiny_model, run_cli):
    calib = _bad_calib(kind, tmp_path)
    with pytest.raises(CalibrationError, match=CALIB_CASES[kind]):
        quantize(tiny_model, tmp_path / "out.onnx", calib=calib, progress=False)
    code, _, err = run_cli("quantize", tiny_model, "-o", tmp_path / "out.onnx", "--calib", calib)
    assert code == 2 and CALIB_CASES[kind] in err and err.count("\n") == 1
    assert not (tmp_path / "out.onnx").exists()


def test_static_without_calibration(tiny_model, tmp_path):
    with pytest.raises(CalibrationError, match="--calib"):
        quantize(tiny_model, tmp_path / "out.onnx", progress=False)


def test_unreadable_images_are_skipped_and_counted(tiny_model, calib_dir, tmp_path):
    (calib_dir / "zz_broken.png").write_bytes(b"garbage")
    result = quantize(tiny_model, tmp_path / "out.onnx", calib=calib_dir, progress=False)
    assert result.calibration == {"images": 6, "skipped": 1, "available": 7}


@pytest.mark.parametrize("target", ["same", "missing-folder", "folder-is-a-file", "a-folder"])
def test_bad_output(target, tmp_path, tiny_model, calib_dir, run_cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {"same": tiny_model, "missing-folder": tmp_path / "no" / "such" / "out.onnx",
           "folder-is-a-file": blocker / "out.onnx", "a-folder": tmp_path}[target]
    before = tiny_model.read_bytes()
    with pytest.raises(OutputError):
        quantize(tiny_model, out, calib=calib_dir, progress=False)
    code, _, err = run_cli("quantize", tiny_model, "-o", out, "--calib", calib_dir)
    assert code == 2 and err.count("\n") == 1 and ("-o" in err or "folder" in err)
    assert tiny_model.read_bytes() == before


def test_eval_images_missing_on_disk(fixture_case, tmp_path, run_cli):
    ann = json.loads(fixture_case.coco_ann.read_text())
    ann["images"].append({"id": 9999, "file_name": "ghost.jpg", "width": 10, "height": 10})
    bad = tmp_path / "ann.json"
    bad.write_text(json.dumps(ann))
    with pytest.raises(DatasetError, match="1 of 201 images"):
        evaluate(fixture_case.model, fixture_case.coco_images, bad, progress=False)
    code, _, err = run_cli("eval", fixture_case.model, "--images", fixture_case.coco_images, "--ann", bad)
    assert code == 2 and "ghost.jpg" in err


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
