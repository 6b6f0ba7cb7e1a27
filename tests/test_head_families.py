"""Head families beyond YOLOv8's: YOLO26 one-to-many (no DFL), end-to-end rows (YOLO26 / YOLOv10), NMS
inside the graph; heads no family serves; and the registry as the one plug-in point. Tiny graphs from
``graphs.py``: each head is found by structure, stays float when quantized, and decodes to what the
one-to-many output it was built from says."""

import ast
from pathlib import Path

import numpy as np
import onnx
import pytest

import graphs
from quantkit import heads, quantize
from quantkit.errors import ModelError
from quantkit.heads import boxes, detect26, dfl_detect, rows
from quantkit.measure.evaluate import ImageSet, folder_items, predict
from quantkit.measure.session import Runner
from quantkit.model import name_nodes
from quantkit.preprocess import Letterbox, letterbox_image, to_tensor

QUANTKIT = Path(heads.__file__).resolve().parent.parent
HEADS = QUANTKIT / "heads"
SHARED = {"__init__", "base", "boxes", "rows"}  # heads/ modules that are no family
FAMILY_MODULES = sorted(p.stem for p in HEADS.glob("*.py") if p.stem not in SHARED)


def _family(model):
    head = heads.find(model)
    return head.family if head else None


def _ops(model, names):
    return [n.op_type for n in model.graph.node if n.name in set(names)]


# --- found by structure ---------------------------------------------------------------------------------------------


def test_yolo26_one_to_many_head_found_without_a_dfl():
    for model in (graphs.tiny_yolo26(), graphs.tiny_yolo26(xyxy=True), graphs.tiny_yolo26(names=False)):
        name_nodes(model)
        head = heads.find(model)
        assert head.family == "detect26" and len(head.feeding_convs) == 2  # box and class Convs stay quantizable
        ops = _ops(model, head.nodes)
        assert "Conv" not in ops and "Softmax" not in ops and ops.count("Sigmoid") == 1  # no backbone SiLU got in
        assert {"Sub", "Add", "Mul", "Concat", "Reshape", "Slice"} <= set(ops)


def test_yolov8_graphs_still_resolve_to_dfl_detect():
    """Registry order: every YOLOv8-style layout stays dfl-detect's, and detect26 alone never claims a DFL head
    (its walk ends at the DFL Conv, which it refuses)."""
    for model in (
        graphs.tiny_yolo(),
        graphs.yolo11(graphs.tiny_yolo()),
        graphs.yolov5u(graphs.tiny_yolo()),
        graphs.tiny_yolo(scales=4),
        graphs.transposed(graphs.tiny_yolo()),
        graphs.tiny_yolo(opset=12),
    ):
        assert _family(model) == "dfl-detect"
        assert detect26.FAMILY.find(model) is None
    assert dfl_detect.FAMILY.find(graphs.tiny_yolo26()) is None


@pytest.mark.parametrize(
    "build, dfl",
    [
        (lambda: graphs.end_to_end(graphs.tiny_yolo26(xyxy=True), xywh=False), False),  # YOLO26 nms=False
        (lambda: graphs.end_to_end(graphs.tiny_yolo()), True),  # YOLOv10: DFL, then the selection
    ],
)
def test_end_to_end_head_found_with_its_selection(build, dfl):
    model = build()
    head = heads.find(model)
    assert head.family == "end2end" and len(head.feeding_convs) == 2  # the DFL Conv is walked through, not fed from
    ops = _ops(model, head.nodes)
    assert ops.count("TopK") == 2 and ops.count("GatherElements") == 3 and "Sigmoid" in ops
    assert ops.count("Conv") == int(dfl)


@pytest.mark.parametrize(
    "build", [lambda: graphs.nms_inside(graphs.tiny_yolo()), lambda: graphs.nms_inside(graphs.tiny_yolo26())]
)
def test_graph_nms_head_found_with_its_nms_subgraph(build):
    model = build()
    head = heads.find(model)
    assert head.family == "graph-nms" and len(head.feeding_convs) == 2
    ops = _ops(model, head.nodes)
    assert {"NonMaxSuppression", "GatherND", "Pad", "Sigmoid"} <= set(ops)
    assert (
        len(head.nodes) == len(model.graph.node) - 6 - 2
    )  # all but the backbone (2 Convs, 2 SiLU) and the head's 2 Convs


# --- float after quantization ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        graphs.tiny_yolo26,
        lambda: graphs.end_to_end(graphs.tiny_yolo26(xyxy=True), xywh=False),
        lambda: graphs.end_to_end(graphs.tiny_yolo()),
        lambda: graphs.nms_inside(graphs.tiny_yolo26()),
    ],
)
def test_head_float_after_quantization_and_naive_quantizes_it(build, tmp_path, calib_dir):
    src = graphs.save(build(), tmp_path / "src.onnx")
    q = quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
    model = onnx.load(q.output)
    assert q.head_nodes and heads.head_is_float(model, q.head_nodes)
    assert {n.op_type for n in model.graph.node if n.name in set(q.head_nodes)} & {
        "TopK",
        "NonMaxSuppression",
        "Sigmoid",
    }
    naive = quantize(src, tmp_path / "naive.onnx", calib=calib_dir, preset="naive", progress=False)
    assert naive.head_nodes and not heads.head_is_float(onnx.load(naive.output), naive.head_nodes)  # found, not kept


def test_auto_calibration_is_the_head_familys_choice(tmp_path, calib_dir):
    """The default preset leaves calibration to the family (YOLO26 / end-to-end: percentile, the others minmax);
    an explicit method and the presets that copy onnxruntime's defaults keep theirs."""
    y26 = graphs.save(graphs.tiny_yolo26(), tmp_path / "y26.onnx")
    v8 = graphs.save(graphs.tiny_yolo(), tmp_path / "v8.onnx")

    def method(src, **kw):
        out = tmp_path / f"q{len(list(tmp_path.iterdir()))}.onnx"
        return quantize(src, out, calib=calib_dir, progress=False, range_cache=False, **kw).config["calibrate_method"]

    assert heads.family("detect26").calibration == heads.family("end2end").calibration == "percentile"
    assert (method(y26), method(v8)) == ("percentile", "minmax")
    assert method(y26, calibrate_method="minmax") == "minmax" and method(y26, preset="naive") == "minmax"


# --- decode ----------------------------------------------------------------------------------------------------------


def _letterboxed(seed=3):
    """A 24x40 image letterboxed into 32x32 (scale 0.8, 6 px bars top and bottom) and its tensor."""
    img = np.random.default_rng(seed).integers(0, 255, (24, 40, 3), dtype=np.uint8)
    boxed, lb = letterbox_image(img, (32, 32))
    assert (lb.scale, lb.left, lb.top) == (0.8, 0, 6)
    return to_tensor(boxed), lb


def test_end_to_end_rows_are_the_top_k_of_its_one_to_many_output(tmp_path):
    """The e2e graph's rows, decoded, are exactly Ultralytics' two-stage top-k of the same weights' one-to-many
    output (best K anchors, then best K anchor x class pairs), above conf, boxes mapped back through the letterbox."""
    k = 20
    o2m = graphs.tiny_yolo26(xyxy=True, seed=5)
    e2e = graphs.end_to_end(o2m, k=k, xywh=False)
    x, lb = _letterboxed()
    raw = Runner(graphs.save(o2m, tmp_path / "o2m.onnx")).run(x)[0]  # [4 + nc, N], x1 y1 x2 y2
    scores = raw[4:]
    anchors = np.argsort(-scores.max(axis=0), kind="stable")[:k]
    flat = scores[:, anchors].T.reshape(-1)
    top = np.argsort(-flat, kind="stable")[:k]
    conf = float(np.median(flat[top]))  # half the rows above it
    keep = flat[top] >= conf
    want_anchor, want_cls, want_score = anchors[top // graphs.NC][keep], (top % graphs.NC)[keep], flat[top][keep]
    family = heads.for_outputs([(1, k, 6)], graphs.NC, model=e2e)
    assert family.name == "end2end"
    got = family.decode(
        Runner(graphs.save(e2e, tmp_path / "e2e.onnx")).run_all(x), lb, conf, 0.7, 300, graphs.NC, "best_class"
    )
    assert 0 < len(got) < k and np.array_equal(got.classes, want_cls)
    np.testing.assert_allclose(got.scores, want_score, rtol=1e-6)
    boxes_in = raw[:4, want_anchor].T
    np.testing.assert_allclose(got.boxes, np.clip((boxes_in - [0, 6, 0, 6]) / 0.8, 0, [40, 24, 40, 24]), atol=1e-4)


def test_graph_nms_rows_are_nms_of_its_one_to_many_output(tmp_path):
    """In-graph class-wise NMS (every class score above the baked conf a candidate) gives what quantkit's own
    multi-label decode gives on the one-to-many output: same boxes, scores and classes."""
    o2m = graphs.tiny_yolo(seed=4)
    x, lb = _letterboxed()
    raw = Runner(graphs.save(o2m, tmp_path / "o2m.onnx")).run(x)
    conf = float(np.quantile(raw[0, 4:], 0.8))  # a fifth of the class scores are candidates
    with_nms = graphs.nms_inside(o2m, max_det=64, conf=conf, iou=0.5)
    want = boxes.decode(raw, lb, conf=conf, iou=0.5, nc=graphs.NC, nms="multi_label")
    family = heads.for_outputs([(1, 64, 6)], graphs.NC, model=with_nms)
    assert family.name == "graph-nms"
    got = family.decode(
        Runner(graphs.save(with_nms, tmp_path / "nms.onnx")).run_all(x), lb, 0.25, 0.7, 300, graphs.NC, "best_class"
    )
    assert 3 < len(want) < 64 and len(got) == len(want)
    a, b = (np.lexsort((d.boxes[:, 0], d.classes, -d.scores)) for d in (got, want))
    assert np.array_equal(got.classes[a], want.classes[b])
    np.testing.assert_allclose(got.scores[a], want.scores[b], rtol=1e-6)
    np.testing.assert_allclose(got.boxes[a], want.boxes[b], atol=1e-3)


def test_rows_decode_threshold_order_padding_and_no_nms():
    lb = Letterbox(scale=0.5, left=4, top=0, shape=(60, 100))
    out = np.zeros((1, 8, 6), np.float32)  # rows 5..7: NMS padding
    out[0, :5] = [
        [10, 10, 30, 30, 0.40, 1],
        [11, 10, 31, 30, 0.90, 1],  # two overlapping boxes of one class: both kept
        [0, 0, 8, 8, 0.25, 0.2],
        [5, 5, 9, 9, 0.10, 0],
        [20, 20, 40, 40, 0.60, 7.6],
    ]
    dets = rows.decode_rows(out, lb, conf=0.25, max_det=300, nc=3)
    np.testing.assert_allclose(dets.scores, [0.90, 0.60, 0.40, 0.25])
    assert dets.classes.tolist() == [1, 2, 1, 0]  # 7.6 rounds to 8, clipped to the last class; 0.2 rounds to 0
    np.testing.assert_allclose(dets.boxes[0], [14, 20, 54, 60])  # (x - 4) / 0.5, clipped to the 100x60 image
    assert len(rows.decode_rows(out, lb, conf=0.25, max_det=2)) == 2
    assert len(rows.decode_rows(out, lb, conf=0.0, max_det=300)) == 5  # padding (score 0) never decodes
    with pytest.raises(ModelError, match=r"not \[1, K, 6\] rows"):
        rows.decode_rows(np.zeros((1, 6, 8), np.float32), lb, 0.25, 300)


def test_predict_reads_end_to_end_rows_through_the_registry(tmp_path):
    """`[1, 20, 6]` with 2 classes is also 20 anchors of `[1, N, 4+nc]`: the graph decides, both ways."""
    images = ImageSet.load(folder_items(graphs.write_images(tmp_path / "val", count=2, hw=(32, 32))), (32, 32))
    e2e = graphs.save(graphs.end_to_end(graphs.tiny_yolo26(xyxy=True), xywh=False), tmp_path / "e2e.onnx")
    transposed = graphs.save(graphs.transposed(graphs.tiny_yolo()), tmp_path / "t.onnx")
    assert heads.for_outputs([(1, 20, 6)], graphs.NC, model=e2e).name == "end2end"
    assert heads.for_outputs([(1, 64, 6)], graphs.NC, model=transposed).name == "dfl-detect"
    assert heads.for_outputs([(1, 20, 6)], graphs.NC).name == "dfl-detect"  # no graph: registry order
    runner = Runner(e2e)
    dets = predict(runner, images, graphs.NC, conf=0.25).dets
    for image_id, boxed, lb in zip(
        images.ids, images.boxed, images.letterboxes
    ):  # rows, not 20 anchors put through NMS
        want = rows.decode_rows(runner.run(to_tensor(boxed)), lb, 0.25, 300, graphs.NC)
        assert len(want) > 0 and np.array_equal(dets[image_id].boxes, want.boxes)


# --- refusals --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, says",
    [
        (
            lambda: graphs.nms_inside(graphs.tiny_yolo(), extra=4),
            r"^NMS inside the graph with output \[1, 10, 10\] and 1 more output\(s\): its rows carry masks or "
            r"keypoints.*export this model without nms=True",
        ),
        (
            lambda: graphs.end_to_end(graphs.tiny_yolo26(xyxy=True), k=12, xywh=False, extra_output=True),
            r"^an end-to-end head with output \[1, 12, 6\] and 1 more output\(s\): its rows carry masks or "
            r"keypoints.*export this model one-to-many",
        ),
    ],
)
def test_rows_with_masks_or_keypoints_are_refused_with_the_export_to_use(build, says, tmp_path, calib_dir):
    model = build()
    with pytest.raises(ModelError, match=says):
        heads.find(model)
    with pytest.raises(ModelError, match=says):
        quantize(graphs.save(model, tmp_path / "m.onnx"), tmp_path / "q.onnx", calib=calib_dir, progress=False)
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize(
    "build, decodable",
    [
        (graphs.tiny_yolox, False),
        (lambda: graphs.tiny_yolo26(angle=True), False),
        (lambda: graphs.headless(graphs.tiny_yolo26()), True),
    ],
)
def test_other_heads_are_refused_listing_the_supported_families(build, decodable, tmp_path, calib_dir):
    """YOLOX-style (objectness, exp(wh)), an angle-like branch the box decode does not read (no OBB export's: the
    oriented heads are test_obb.py's) and a head with no Sigmoid class branch (whose output alone looks like
    YOLO26's: only the graph tells)."""
    model = build()
    assert heads.find(model) is None
    with pytest.raises(ModelError) as refused:
        quantize(graphs.save(model, tmp_path / "m.onnx"), tmp_path / "q.onnx", calib=calib_dir, progress=False)
    message = str(refused.value)
    assert "\n" not in message and "no supported YOLO head found" in message
    assert all(family.covers in message for family in heads.FAMILIES)
    if not decodable:
        shape = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
        with pytest.raises(ModelError, match=r"match no head family quantkit decodes \(.*YOLO26.*NonMaxSuppression"):
            heads.for_outputs([shape], graphs.NC)


def test_a_refusal_yields_to_a_family_that_finds_the_head(monkeypatch):
    """A family that recognises a form it cannot serve raises only when no other family finds a head."""

    class Refuses(heads.HeadFamily):
        name, covers = "refuses", "nothing"

        def find(self, model):
            raise ModelError("refused: export another way")

    monkeypatch.setattr(heads, "FAMILIES", (Refuses(), dfl_detect.FAMILY))
    assert heads.find(graphs.tiny_yolo()).family == "dfl-detect"
    with pytest.raises(ModelError, match="^refused: export another way$"):
        heads.find(graphs.tiny_yolox())


# --- one plug-in point -----------------------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports, as dotted names relative to the quantkit package (``heads.dfl_detect``)."""
    package = path.relative_to(QUANTKIT).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            if not node.level and module[:1] != ["quantkit"]:
                continue
            module = module[1:] if not node.level else module
            found.add(".".join(module))
            found.update(".".join([*module, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".", 1)[1] for a in node.names if a.name.startswith("quantkit."))
    return found


def test_only_the_registry_imports_a_family_module():
    """A YOLOv8 change touches dfl_detect.py alone: no module outside heads/ imports a family module (the pipeline,
    gates, CLI and plugin ask ``heads``' registry), only the registry imports dfl_detect, and dfl_detect imports no
    other family (what it shares with them lives in base.py)."""
    assert {"dfl_detect", "detect26", "end2end", "graph_nms"} <= set(FAMILY_MODULES)
    families = {f"heads.{m}" for m in FAMILY_MODULES}
    for path in QUANTKIT.rglob("*.py"):
        imported = _imports(path) & families
        if path.parent != HEADS:
            assert not imported, f"{path.relative_to(QUANTKIT)} imports {sorted(imported)}: ask quantkit.heads instead"
        elif path.stem not in ("__init__", "dfl_detect"):
            assert "heads.dfl_detect" not in imported, f"{path.name} imports dfl_detect: share code via base.py"
    assert not _imports(HEADS / "dfl_detect.py") & (families - {"heads.dfl_detect"})
    for module in FAMILY_MODULES:
        source = (HEADS / f"{module}.py").read_text()
        assert "FAMILY = " in source and f"{module}.FAMILY" in (HEADS / "__init__.py").read_text()


def test_a_replaced_dfl_family_carries_quantize_and_predict(monkeypatch, tmp_path, calib_dir):
    """Swap dfl-detect for another implementation in the registry: quantize keeps the head it names float and
    evaluation decodes with it, with no other module touched."""
    calls = {"find": 0, "decode": 0}

    class Replacement(dfl_detect.DFLDetect):
        name = "dfl-detect-v2"

        def find(self, model):
            calls["find"] += 1
            head = super().find(model)
            if head is not None:
                head.family = self.name
            return head

        def decode(self, outputs, lb, conf, iou, max_det, nc, nms):
            calls["decode"] += 1
            return super().decode(outputs, lb, conf, iou, max_det, nc, nms)

    monkeypatch.setattr(
        heads, "FAMILIES", tuple(Replacement() if f is dfl_detect.FAMILY else f for f in heads.FAMILIES)
    )
    src = graphs.save(graphs.tiny_yolo(), tmp_path / "v8.onnx")
    q = quantize(src, tmp_path / "int8.onnx", calib=calib_dir, progress=False)
    assert calls["find"] >= 1 and heads.head_is_float(onnx.load(q.output), q.head_nodes)
    images = ImageSet.load(folder_items(calib_dir), (32, 32))
    preds = predict(Runner(q.output), images, graphs.NC, conf=0.25)
    assert calls["decode"] == len(images.ids) and all(len(d) for d in preds.dets.values())
