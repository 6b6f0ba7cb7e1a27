"""The export layouts users ship, one tiny graph each (docs/layouts.md, kept in step here):
each quantizes with the default preset into a model that loads, with its head in float, or stops
with one line (exit 2 from the CLI) that names the layout and what to do."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest

import graphs
from quantkit import ModelError
from quantkit import compat, heads, quantize
from quantkit.quantization.calibration import load_calibration
from quantkit.heads import head_is_float
from quantkit.model import quantized_convs
from quantkit.measure.session import Runner

LAYOUTS_DOC = Path(__file__).resolve().parent.parent / "docs" / "layouts.md"


@dataclass
class Layout:
    build: Callable[[Path], str]  # tmp_path -> the model file
    note: str | None = None  # what the result's notes must say
    error: str | None = None  # what the one-line error must say (the layout stops)


def _saved(make: Callable[[], onnx.ModelProto], name: str) -> Callable[[Path], str]:
    return lambda tmp_path: graphs.save(make(), tmp_path / name)


# the one-line refusal of a head no family finds: it lists every family quantkit serves
UNSUPPORTED = r"no supported YOLO head found \(quantkit knows: .*YOLOv8.*YOLO26.*YOLOv10.*NonMaxSuppression"
LAYOUTS = {  # docs/layouts.md row -> how it is built and what quantkit does with it
    "YOLOv8": Layout(_saved(graphs.tiny_yolo, "v8.onnx")),
    "YOLOv8 at opset 12": Layout(
        _saved(lambda: graphs.tiny_yolo(opset=12), "v8-opset12.onnx"),
        note="opset 12 converted to 13 in quantkit's working copy",
    ),
    "YOLOv8 at opset 22": Layout(_saved(lambda: compat.convert_opset(graphs.tiny_yolo(), 22), "v8-opset22.onnx")),
    "YOLO11 (C2PSA attention: MatMul, Softmax)": Layout(
        _saved(lambda: graphs.yolo11(graphs.tiny_yolo()), "yolo11.onnx")
    ),
    "YOLOv5u (C3, SPPF)": Layout(_saved(lambda: graphs.yolov5u(graphs.tiny_yolo()), "yolov5u.onnx")),
    "P2 / P6 (4 detection scales)": Layout(_saved(lambda: graphs.tiny_yolo(scales=4), "p6.onnx")),
    "`[1, anchors, 4+nc]` output (trailing Transpose)": Layout(
        _saved(lambda: graphs.transposed(graphs.tiny_yolo()), "t.onnx")
    ),
    "fixed batch 2": Layout(_saved(lambda: graphs.tiny_yolo(batch=2), "batch2.onnx")),
    "NHWC input": Layout(
        _saved(lambda: graphs.nhwc(graphs.tiny_yolo()), "nhwc.onnx"),
        error=r"input 'images' \[1, 32, 32, 3\] is NHWC .*re-export the detector with an NCHW input",
    ),
    "FP16 weights, float32 I/O (Cast nodes)": Layout(
        _saved(lambda: graphs.float16(graphs.tiny_yolo()), "fp16.onnx"), note="float16 weights upcast to float32"
    ),
    "FP16 input and output": Layout(
        _saved(lambda: graphs.float16(graphs.tiny_yolo(), io=True), "fp16io.onnx"),
        error=r"input 'images' is float16: .*export with half=False",
    ),
    "external data": Layout(
        lambda tmp_path: graphs.save_external(graphs.tiny_yolo(), tmp_path / "external.onnx"),
        note=r"weights read from external data \(external.onnx.data\)",
    ),
    "YOLOv8 / YOLO11 segmentation (`[1, 4+nc+32, N]` + prototypes `[1, 32, H/4, W/4]`)": Layout(
        _saved(graphs.tiny_seg, "seg.onnx")
    ),
    "YOLOv8 / YOLO11 pose (`[1, 4+nc+K*3, N]`)": Layout(_saved(graphs.tiny_pose, "pose.onnx")),
    "YOLO26 one-to-many (`[1, 4+nc, N]`, no DFL)": Layout(_saved(graphs.tiny_yolo26, "yolo26.onnx")),
    "YOLO26 end-to-end (`nms=False`: `[1, 300, 6]`, TopK in the graph)": Layout(
        _saved(lambda: graphs.end_to_end(graphs.tiny_yolo26(xyxy=True), xywh=False), "yolo26-e2e.onnx")
    ),
    "YOLOv10 end-to-end (DFL, then TopK)": Layout(
        _saved(lambda: graphs.end_to_end(graphs.tiny_yolo()), "yolov10.onnx")
    ),
    "NMS inside the graph (`nms=True`: `[1, 300, 6]`)": Layout(
        _saved(lambda: graphs.nms_inside(graphs.tiny_yolo()), "nms.onnx")
    ),
    "segmentation with NMS inside the graph (`[1, 300, 38]` + prototypes)": Layout(
        _saved(lambda: graphs.nms_inside(graphs.tiny_yolo(), extra=32), "seg-nms.onnx"),
        error=r"NMS inside the graph with output \[1, 10, 38\] and 1 more output\(s\): its rows carry masks or "
        r"keypoints.*export this model without nms=True",
    ),
    "YOLOX-style head (objectness, exp(wh))": Layout(_saved(graphs.tiny_yolox, "yolox.onnx"), error=UNSUPPORTED),
    "oriented boxes (OBB: an angle channel)": Layout(
        _saved(lambda: graphs.tiny_yolo26(angle=True), "obb.onnx"), error=UNSUPPORTED
    ),
}
QUANTIZED = [name for name, layout in LAYOUTS.items() if layout.error is None]
STOPPED = [name for name, layout in LAYOUTS.items() if layout.error is not None]


@pytest.mark.parametrize("name", QUANTIZED)
def test_layout_quantizes_with_the_head_in_float(name, tmp_path, calib_dir):
    layout = LAYOUTS[name]
    src = layout.build(tmp_path)
    q = quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
    model = onnx.load(q.output)
    assert q.head_nodes and head_is_float(model, q.head_nodes) and quantized_convs(model) >= 4
    assert layout.note is None or re.search(layout.note, " ".join(q.notes)), q.notes
    fp32, int8 = Runner(src), Runner(q.output)
    x = load_calibration(calib_dir, (32, 32), progress=False).tensors[:1]
    a, b = fp32.run_all(x), int8.run_all(x)
    family = heads.for_outputs([o.shape for o in a], graphs.NC, model=src)  # box channels first, then the scores
    a, b = family.raw_channels(a[0], graphs.NC), family.raw_channels(b[0], graphs.NC)
    assert a.shape == b.shape and np.abs(a[:, 4:] - b[:, 4:]).max() < 0.05  # class scores kept their scale


@pytest.mark.parametrize("name", STOPPED)
def test_layout_stops_with_one_line(name, tmp_path, calib_dir, run_cli):
    src = LAYOUTS[name].build(tmp_path)
    with pytest.raises(ModelError, match=LAYOUTS[name].error):
        quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
    code, _, err = run_cli("quantize", src, "-o", tmp_path / "int8.onnx", "--calib", calib_dir)
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(LAYOUTS[name].error, err), err
    assert not (tmp_path / "int8.onnx").exists()


def test_docs_layout_table_matches_the_tests():
    """Every row of docs/layouts.md's table is a key of LAYOUTS, and the rows that stop say so."""
    text = LAYOUTS_DOC.read_text()
    table = text[text.index("| export layout | what quantkit does |") :].split("\n\n")[0].splitlines()[2:]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
    rows = {name: does for name, does in cells}
    assert list(rows) == list(LAYOUTS)
    assert [name for name, does in rows.items() if does.startswith("stops")] == STOPPED
