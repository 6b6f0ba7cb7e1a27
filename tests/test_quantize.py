"""The quantizer on tiny graphs built here: outputs load and run, the
right ops got quantized, the source is never touched, and concurrent runs both succeed."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphs
from quantkit import CalibrationError, ModelError, OutputError, QuantkitError, compat
from quantkit import quantize
from quantkit.heads import find as find_head, head_is_float
from quantkit.model import fix_input_dims, float_convs, inspect_model, load_model, op_counts
from quantkit.quantization.quantizer import PRESETS, _pre_process, resolve_config
from quantkit.tune import GRID
from quantkit.workdir import private_dir, sweep

# Expected op counts on tiny_yolo (4 quantizable Convs + the DFL's 1x1 Conv), per preset.
EXPECTED_OPS = {
    "default": {"Conv": 5, "QLinearConv": 0},  # QDQ: Convs stay, fed by DequantizeLinear
    "qoperator": {"Conv": 1, "QLinearConv": 4},
    "naive": {"Conv": 5, "QLinearConv": 0},
    "dynamic": {"Conv": 1, "ConvInteger": 4},
}


def _run(path, hw=(32, 32)):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"images": np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)})[0]
    assert out.shape == (1, 6, (hw[0] // 4) * (hw[1] // 4)) and np.isfinite(out).all()
    return out


def _tree_state(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("preset", list(EXPECTED_OPS))
def test_presets_load_run_and_quantize_the_right_ops(preset, tiny_model, calib_dir, tmp_path):
    out = tmp_path / f"{preset}.onnx"
    result = quantize(tiny_model, out, preset=preset, calib=calib_dir, progress=False)
    _run(out)
    model = onnx.load(str(out))
    counts = op_counts(model)
    for op, n in EXPECTED_OPS[preset].items():
        assert counts.get(op, 0) == n, f"{preset}: {op} {counts.get(op, 0)} != {n} ({counts})"
    if PRESETS[preset].keep_head_float:
        assert result.head_nodes and head_is_float(model, result.head_nodes)
        assert float_convs(model) == [n for n in result.float_nodes if n.endswith("conv_13")]
    else:
        assert result.float_nodes == [] and not head_is_float(model, find_head(graphs.tiny_yolo()).nodes)
    assert result.config["mode"] == PRESETS[preset].mode


def test_naive_is_onnxruntime_defaults():
    """The seed's configuration: QDQ, per-tensor, S8S8, MinMax, no pre-processing, whole graph."""
    naive = PRESETS["naive"]
    assert (naive.format, naive.per_channel, naive.activation_type, naive.weight_type, naive.calibrate_method) == (
        "qdq",
        False,
        "int8",
        "int8",
        "minmax",
    )
    assert not naive.keep_head_float and not naive.preprocess


def test_mode_switch_and_overrides():
    assert resolve_config("default", mode="dynamic") == PRESETS["dynamic"]
    assert resolve_config("default", format="qoperator", per_channel=False).format == "qoperator"
    with pytest.raises(QuantkitError):
        resolve_config("default", calibrate_method="magic")


def test_dynamic_axes_fixed_from_imgsz(tiny_dynamic, calib_dir, tmp_path):
    result = quantize(tiny_dynamic, tmp_path / "q.onnx", calib=calib_dir, imgsz=(32, 32), progress=False)
    assert any("fixed to 1x3x32x32" in n for n in result.notes)
    _run(tmp_path / "q.onnx")


@pytest.mark.parametrize(
    "imgsz, stride, message",
    [
        ((191, 320), 32, "--imgsz 191x320 is not a multiple of the stride 32: use 192x320"),
        ((7, 7), 32, "--imgsz 7x7 is outside 32..4096: use 32x32"),
        ((100000, 100000), 32, "--imgsz 100000x100000 is outside 32..4096: use 4096x4096"),
        ((96, 96), 64, "--imgsz 96x96 is not a multiple of the stride 64: use 128x128"),
        ((36, 34), None, "--imgsz 36x34 is not a multiple of the stride 4: use 36x32"),
    ],
)
def test_imgsz_on_dynamic_axes_must_fit_the_stride(imgsz, stride, message, tmp_path, calib_dir):
    """The stride comes from the metadata's 'stride', else the head (4 on tiny_yolo); fixed inputs are checked
    elsewhere."""
    meta = {"stride": str(stride)} if stride else None
    src = graphs.save(graphs.tiny_yolo(dynamic=True, metadata=meta), tmp_path / "dyn.onnx")
    with pytest.raises(ModelError) as info:
        quantize(src, tmp_path / "q.onnx", calib=calib_dir, imgsz=imgsz, progress=False)
    assert str(info.value) == message and not (tmp_path / "q.onnx").exists()


def test_dynamic_axes_fixed_from_metadata(tmp_path, calib_dir):
    src = graphs.save(graphs.tiny_yolo(dynamic=True, metadata={"imgsz": "[32, 32]"}), tmp_path / "meta.onnx")
    quantize(src, tmp_path / "q.onnx", calib=calib_dir, progress=False)
    _run(tmp_path / "q.onnx")


def test_dynamic_uses_uint8_weights_without_int8_conv_integer(tiny_model, tmp_path, monkeypatch):
    """onnxruntime < 1.24 has no ConvInteger(uint8, int8): the result must still load, and say why."""
    monkeypatch.setattr(compat, "conv_integer_int8_weights", lambda: False)
    result = quantize(tiny_model, tmp_path / "d.onnx", preset="dynamic", weight_type="int8", progress=False)
    assert result.config["weight_type"] == "uint8"
    assert any("no ConvInteger kernel for int8 weights" in n for n in result.notes)
    weights = [i for i in onnx.load(str(tmp_path / "d.onnx")).graph.initializer if i.name.endswith("_quantized")]
    assert weights and all(w.data_type == onnx.TensorProto.UINT8 for w in weights)
    _run(tmp_path / "d.onnx")


def test_source_folder_untouched_on_a_hostile_path(tmp_path):
    """Korean characters, spaces, '#' and parentheses: the seed's '-inferred.onnx' failure mode."""
    folder = tmp_path / "모델 폴더 #1 (복사본)"
    folder.mkdir()
    src = graphs.save(graphs.tiny_yolo(), folder / "yolov8 커스텀 (pruned) #7.onnx")
    calib = graphs.write_images(folder / "보정 이미지")
    before = _tree_state(folder)
    out_dir = tmp_path / "출력 (out)"
    out_dir.mkdir()
    for preset in ("default", "dynamic", "naive"):
        quantize(src, out_dir / f"{preset} #.onnx", preset=preset, calib=calib, progress=False)
    assert _tree_state(folder) == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["default #.onnx", "dynamic #.onnx", "naive #.onnx"]


def test_failure_leaves_no_output(tiny_model, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OutputError):
        quantize(tiny_model, tmp_path / "out" / "never.onnx", calib=empty, progress=False)
    with pytest.raises(CalibrationError):
        quantize(tiny_model, tmp_path / "never.onnx", calib=empty, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "tiny.onnx"]


def test_two_processes_quantize_the_same_source(tiny_model, calib_dir, tmp_path):
    code = (
        "import sys; from quantkit import quantize; "
        "quantize(sys.argv[1], sys.argv[2], calib=sys.argv[3], progress=False)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tiny_model), str(tmp_path / name), str(calib_dir)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("same.onnx", "same.onnx", "other.onnx")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    _run(tmp_path / "same.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib", "other.onnx", "same.onnx", "tiny.onnx"]


def test_ir_version_lowered_for_older_runtimes(tiny_model, calib_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(compat, "max_ir_version", lambda: 8)
    model = onnx.load(str(tiny_model))
    model.ir_version = 10
    src = graphs.save(model, tmp_path / "ir10.onnx")
    result = quantize(src, tmp_path / "q.onnx", calib=calib_dir, progress=False)
    assert onnx.load(str(tmp_path / "q.onnx")).ir_version == 8
    assert "IR version lowered 10 -> 8" in " ".join(result.notes)
    assert onnx.load(src).ir_version == 10  # the source is untouched


def test_ir_version_that_cannot_be_lowered(tiny_model, monkeypatch):
    monkeypatch.setattr(compat, "max_ir_version", lambda: 7)  # IR 7 stops at opset 12; the model is opset 17
    model = onnx.load(str(tiny_model))
    model.ir_version = 10
    with pytest.raises(ModelError, match="opset 17.*upgrade onnxruntime"):
        compat.lower_ir_version(model)


DYNAMIC_FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "models" / "shapes-v8n-dynamic.onnx"


def test_failing_pre_processing_writes_only_into_the_private_folder(tmp_path, monkeypatch):
    """The fixture fixed to 7x7 defeats symbolic shape inference, and onnxruntime then saves
    sym_shape_infer_temp.onnx and a 12 MB external-data file into the working directory: quantkit's
    child process keeps both in its private folder, which goes with the run."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    proto = load_model(DYNAMIC_FIXTURE)
    fix_input_dims(proto, inspect_model(proto), (7, 7))
    notes = []
    with private_dir() as work:
        onnx.save(proto, str(work / "model.onnx"))
        _pre_process(work / "model.onnx", work / "prepared.onnx", notes, work)
        assert (work / "prepared.onnx").is_file()
        if tuple(int(v) for v in ort.__version__.split(".")[:2]) >= (
            1,
            16,
        ):  # 1.15 fails earlier, in onnx's checker, and writes nothing at all
            assert (work / "sym_shape_infer_temp.onnx").is_file()  # the failing path ran, inside the folder
            assert "symbolic shape inference failed (Exception: Incomplete symbolic shape inference)" in " ".join(notes)
    assert "quant_pre_process" in " ".join(notes)  # the fallback is named
    assert list(cwd.iterdir()) == [] and not work.exists()


def test_fixed_shapes_are_pre_processed_in_process_as_the_full_path_would(tmp_path, monkeypatch):
    """A fixed-shape model skips the child process and sympy's symbolic shape inference: the graph
    and every tensor type equal what onnxruntime's full pre-processing makes, and nothing is written
    outside the private folder."""
    monkeypatch.chdir(tmp_path)
    spawned = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: spawned.append(a) or pytest.fail("child process started"))
    proto = load_model(DYNAMIC_FIXTURE)
    fix_input_dims(proto, inspect_model(proto), (192, 320))
    with private_dir() as work:
        onnx.save(proto, str(work / "model.onnx"))
        notes = []
        _pre_process(work / "model.onnx", work / "inline.onnx", notes, work)
        monkeypatch.undo()
        compat.quant_pre_process(str(work / "model.onnx"), str(work / "full.onnx"), work)
        inline, full = (onnx.load(str(work / f"{name}.onnx")) for name in ("inline", "full"))
    assert [(n.op_type, list(n.input)) for n in inline.graph.node] == [
        (n.op_type, list(n.input)) for n in full.graph.node
    ]

    def types(model):  # of the tensors the graph computes (full's value_info also keeps folded-away ones)
        made = {out for node in model.graph.node for out in node.output} - {o.name for o in model.graph.output}
        return {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info if v.name in made}

    assert types(inline) == types(full) and len(types(inline)) > 200 and notes == [] and not spawned
    assert list(tmp_path.iterdir()) == []


def test_folders_of_killed_runs_are_swept(tmp_path):
    """A run killed mid-quantization leaves its folder; the sweep removes it, and spares a live owner's."""
    code = "from quantkit.workdir import private_dir\nwith private_dir() as d:\n    print(d, flush=True)\n    input()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    killed = Path(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    live = tmp_path / "quantkit-live"
    live.mkdir()
    (live / "pid").write_text(str(os.getppid()))
    assert killed.parent == tmp_path and (killed / "pid").read_text() == str(proc.pid)
    assert sweep(tmp_path) == [killed]
    assert sorted(p.name for p in tmp_path.glob("quantkit-*")) == ["quantkit-live"]


def test_target_cpu_decides_reduce_range_and_is_stamped_in_the_model(tiny_model, calib_dir, tmp_path):
    for target, reduced in (("avx2", True), ("vnni", False)):
        q = quantize(tiny_model, tmp_path / f"{target}.onnx", calib=calib_dir, target_cpu=target, progress=False)
        meta = {p.key: p.value for p in onnx.load(q.output).metadata_props}
        assert q.config["reduce_range"] is reduced and q.config["target_cpu"] == target
        assert meta["quantkit_target_cpu"] == target and meta["quantkit_reduce_range"] == str(reduced).lower()
    assert quantize(tiny_model, tmp_path / "d.onnx", calib=calib_dir, progress=False).config["target_cpu"] == "avx2"


def test_weights_preset_stores_int8_weights_and_tells_sessions_how_to_run_it(tiny_model, tmp_path):
    from quantkit.measure.session import Runner, model_session_config

    q = quantize(tiny_model, tmp_path / "w.onnx", preset="weights", progress=False)
    model = onnx.load(q.output)
    ops = [n.op_type for n in model.graph.node]
    assert (
        "QuantizeLinear" not in ops and ops.count("DequantizeLinear") == 4
    )  # 2 backbone, box and class Convs (not the DFL)
    assert model_session_config(Path(q.output)) == {"session.disable_quant_qdq": "1"}
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    fp32, int8 = Runner(tiny_model).run(x), Runner(q.output).run(x)
    assert np.abs(fp32 - int8).max() < 0.05 * np.abs(fp32).max()


def test_tune_candidates_run_the_calibration_their_names_say():
    """`quantkit tune`'s grid names each candidate's calibration: none may leave it to the head family ("auto"),
    where a "-minmax" row would calibrate YOLO26 with the percentile and repeat that row."""
    for spec in GRID:
        config = resolve_config(spec.preset, **spec.overrides)
        assert config.calibrate_method == spec.id.rsplit("-", 1)[1], spec
