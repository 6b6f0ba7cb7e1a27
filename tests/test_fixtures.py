"""Fixture integrity: the committed models and data are what the model card says they are."""

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SPLITS = ("calib", "val")


def _make_dataset():
    spec = importlib.util.spec_from_file_location("make_dataset", FIXTURES / "make_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _card_hashes() -> dict[str, str]:
    """``| path | sha256 |`` rows of the model card."""
    text = (FIXTURES / "models" / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|", text, flags=re.M))


def _coco(split):
    return json.loads((FIXTURES / "data" / split / "annotations.json").read_text())


def test_card_lists_every_model_and_annotation_file():
    listed = set(_card_hashes())
    expected = {str(p.relative_to(FIXTURES)) for p in (FIXTURES / "models").glob("*.onnx")}
    expected |= {f"data/{s}/annotations.json" for s in SPLITS}
    assert expected <= listed, f"missing from the model card: {sorted(expected - listed)}"


@pytest.mark.parametrize("path", sorted(_card_hashes()) if (FIXTURES / "models" / "README.md").exists() else [])
def test_hash_matches_model_card(path):
    assert hashlib.sha256((FIXTURES / path).read_bytes()).hexdigest() == _card_hashes()[path]


@pytest.mark.parametrize("split", SPLITS)
def test_valid_coco(split):
    coco = _coco(split)
    cat_ids = {c["id"] for c in coco["categories"]}
    image_ids = {im["id"] for im in coco["images"]}
    assert cat_ids == {1, 3, 7, 12, 20, 31}  # non-contiguous on purpose
    assert len(image_ids) == len(coco["images"])
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
    for ann in coco["annotations"]:
        assert ann["image_id"] in image_ids and ann["category_id"] in cat_ids
        x, y, w, h = ann["bbox"]
        width, height = sizes[ann["image_id"]]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width and y + h <= height


@pytest.mark.parametrize("split", SPLITS)
def test_every_image_reads_at_its_recorded_size(split):
    for im in _coco(split)["images"]:
        img = cv2.imread(str(FIXTURES / "data" / split / "images" / im["file_name"]))
        assert img is not None and img.shape[:2] == (im["height"], im["width"]), im["file_name"]


def test_splits_are_disjoint_and_sized():
    digests = {
        split: {hashlib.sha256(p.read_bytes()).hexdigest() for p in (FIXTURES / "data" / split / "images").iterdir()}
        for split in SPLITS
    }
    assert not digests["calib"] & digests["val"]
    assert 100 <= len(digests["calib"]) <= 200 and len(digests["val"]) >= 200
    sizes = {(im["width"], im["height"]) for im in _coco("val")["images"]}
    assert len(sizes) >= 4, "mixed sizes and aspect ratios make the letterbox matter"


@pytest.mark.parametrize("split,index", [("calib", 0), ("calib", 57), ("val", 3), ("val", 199)])
def test_images_regenerate_from_their_seed(split, index):
    """Byte for byte with the OpenCV that wrote them; pixel-close with another JPEG encoder."""
    make = _make_dataset()
    img, anns = make.render(split, index)
    committed = (FIXTURES / "data" / split / "images" / make.file_name(split, index)).read_bytes()
    if cv2.__version__ == _coco(split)["info"]["opencv"]:
        assert make.encode(img) == committed
    else:
        decoded = cv2.imdecode(np.frombuffer(committed, np.uint8), cv2.IMREAD_COLOR)
        assert np.abs(decoded.astype(int) - cv2.imdecode(np.frombuffer(make.encode(img), np.uint8), 1)).mean() < 1.0
    recorded = [a["bbox"] for a in _coco(split)["annotations"] if a["image_id"] == index + 1]
    assert [a["bbox"] for a in anns] == recorded


def _conv_out_channels(path: Path) -> list[int]:
    import onnx

    model = onnx.load(str(path))
    dims = {i.name: list(i.dims) for i in model.graph.initializer}
    return [dims[n.input[1]][0] for n in model.graph.node if n.op_type == "Conv" and n.input[1] in dims]


def test_pruned_fixture_is_the_seeds_case():
    """The pruned model (model card, ``fixtures/prune.py``): fixed 1x3x192x320, opset 17, 30-50 % of the
    parent's Conv output channels gone, and most of its channel counts not multiples of 8."""
    import onnx

    path = FIXTURES / "models" / "shapes-v8n-pruned-192x320.onnx"
    model = onnx.load(str(path))
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert shape == [1, 3, 192, 320]
    assert {o.domain: o.version for o in model.opset_import}.get("", 0) == 17
    parent = _conv_out_channels(FIXTURES / "models" / "shapes-v8n-192x320.onnx")
    pruned = _conv_out_channels(path)
    assert 0.30 <= 1 - sum(pruned) / sum(parent) <= 0.50, (sum(parent), sum(pruned))
    assert sum(c % 8 == 0 for c in pruned) < len(pruned) / 4, pruned
    assert path.stat().st_size < (FIXTURES / "models" / "shapes-v8n-192x320.onnx").stat().st_size - 2_000_000


@pytest.mark.parametrize("split", SPLITS)
def test_masks_and_keypoints_agree_with_boxes(split):
    """Each annotation's RLE mask has exactly its box and area; K=5 keypoints (centre, top, right, bottom,
    left) lie on the canvas when visible, at (0, 0) when not; a horizontal flip swaps right and left."""
    from pycocotools import mask as mask_utils

    make = _make_dataset()
    coco = _coco(split)
    assert all(c["keypoints"] == make.KEYPOINTS and c["skeleton"] == make.SKELETON for c in coco["categories"])
    assert [make.KEYPOINTS[i] for i in make.FLIP_IDX] == ["centre", "top", "left", "bottom", "right"]
    sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
    for ann in coco["annotations"]:
        width, height = sizes[ann["image_id"]]
        assert ann["segmentation"]["size"] == [height, width]
        assert mask_utils.area(ann["segmentation"]) == ann["area"]
        assert list(mask_utils.toBbox(ann["segmentation"])) == ann["bbox"]
        kpts = np.array(ann["keypoints"]).reshape(len(make.KEYPOINTS), 3)
        assert ann["num_keypoints"] == int((kpts[:, 2] > 0).sum())
        shown, hidden = kpts[kpts[:, 2] > 0], kpts[kpts[:, 2] == 0]
        assert (shown[:, 0] >= 0).all() and (shown[:, 0] < width).all() and (shown[:, 1] < height).all()
        assert not hidden[:, :2].any()


def test_keypoints_regenerate_from_their_seed():
    make = _make_dataset()
    _, anns = make.render("val", 3)
    recorded = [a for a in _coco("val")["annotations"] if a["image_id"] == 4]
    assert [(a["keypoints"], a["segmentation"]) for a in anns] == [
        (a["keypoints"], a["segmentation"]) for a in recorded
    ]


def test_640_fixture_is_the_dynamic_models_weights_at_640_opset_22():
    """``fixtures/export_640.py``'s model: fixed 1x3x640x640, opset 22, Ultralytics' metadata with imgsz [640, 640],
    the dynamic export's Conv weights unchanged, and its outputs those of the opset-17 model run at 640x640."""
    import onnx
    import onnxruntime as ort

    from quantkit.preprocess import preprocess, read_image

    path = FIXTURES / "models" / "shapes-v8n-640-opset22.onnx"
    source = FIXTURES / "models" / "shapes-v8n-dynamic.onnx"
    model = onnx.load(str(path))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 640, 640]
    assert {o.domain: o.version for o in model.opset_import}.get("", 0) == 22
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["imgsz"] == "[640, 640]" and meta["task"] == "detect" and "license" in meta
    weights = [
        [onnx.numpy_helper.to_array(t) for t in m.graph.initializer if t.name in conv_inputs]
        for m in (model, onnx.load(str(source)))
        for conv_inputs in [{i for n in m.graph.node if n.op_type == "Conv" for i in n.input[1:]}]
    ]
    assert len(weights[0]) == 127 and all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))
    x, _ = preprocess(read_image(sorted((FIXTURES / "data" / "val" / "images").iterdir())[0]), (640, 640))
    new, old = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (path, source))
    np.testing.assert_array_equal(new.run(None, {"images": x})[0], old.run(None, {"images": x})[0])


def test_obb_annotations_regenerate():
    """``data/val/annotations-obb.json`` (and its first-60 cut) is ``make_dataset.with_obb`` of the committed val
    annotations: every other field unchanged, each ``obb`` the 4 corners of the minimum-area rectangle around the
    visible mask (corners within 0.02 px: another OpenCV may round its float32 rectangle differently)."""
    make = _make_dataset()
    coco = _coco("val")
    for first in (None, 60):
        name = f"annotations-obb-first{first}.json" if first else "annotations-obb.json"
        committed = json.loads((FIXTURES / "data" / "val" / name).read_text())
        made = make.with_obb(coco, first)
        assert [im["id"] for im in committed["images"]] == [im["id"] for im in coco["images"][:first]]
        strip = [{k: v for k, v in a.items() if k != "obb"} for a in committed["annotations"]]
        assert strip == [{k: v for k, v in a.items() if k != "obb"} for a in made["annotations"]]
        assert {k: v for k, v in committed.items() if k != "annotations"} == {
            k: v for k, v in made.items() if k != "annotations"
        }
        got = np.array([a["obb"] for a in committed["annotations"]])
        np.testing.assert_allclose(got, np.array([a["obb"] for a in made["annotations"]]), atol=0.02)


def test_obb_encloses_the_visible_mask():
    """Each oriented box covers its axis-aligned box's extent and the mask's area; an upright one is the box."""
    import cv2

    committed = json.loads((FIXTURES / "data" / "val" / "annotations-obb.json").read_text())
    upright = 0
    for a in committed["annotations"]:
        corners = np.array(a["obb"], np.float32).reshape(4, 2)
        x, y, w, h = a["bbox"]
        assert corners[:, 0].min() <= x + 0.01 and corners[:, 0].max() >= x + w - 0.01
        assert corners[:, 1].min() <= y + 0.01 and corners[:, 1].max() >= y + h - 0.01
        assert cv2.contourArea(corners) >= a["area"] - 0.5
        xs, ys = (sorted({round(float(v), 2) for v in corners[:, i]}) for i in (0, 1))
        if len(xs) == 2 and np.allclose(xs, [x, x + w], atol=0.01):
            upright += 1
            assert np.allclose(ys, [y, y + h], atol=0.01)
    assert upright > 0


def test_classification_crops_regenerate():
    """``data/cls``: ``val/<class>/*.jpg`` (50 crops a class) and ``calib/*.jpg`` (100, all 6 classes), each the
    64x64 crop ``make_dataset.crop`` cuts from its split's JPEG (byte for byte with the same JPEG encoder; pixel-close
    with another)."""
    import cv2

    make = _make_dataset()
    cls = FIXTURES / "data" / "cls"
    assert sorted(p.name for p in (cls / "val").iterdir()) == sorted(make.CATEGORIES.values())
    by_name = {}
    for split in SPLITS:
        for name, file, ann in make.crop_candidates(FIXTURES / "data" / split):
            by_name[file] = (split, name, ann)
    calib = sorted((cls / "calib").glob("*.jpg"))
    assert len(calib) == make.CLS_CALIB and {by_name[p.name][1] for p in calib} == set(make.CATEGORIES.values())
    files = calib + sorted((cls / "val").glob("*/*.jpg"))
    same_encoder = True
    assert len(files) == make.CLS_CALIB + make.CLS_VAL_PER_CLASS * len(make.CATEGORIES)
    for path in files:
        split, name, ann = by_name[path.name]
        assert split == path.parent.name if split == "calib" else (split, name) == ("val", path.parent.name)
        img = cv2.imread(str(FIXTURES / "data" / split / "images" / ann["file_name"]))
        made = make.encode_crop(make.crop(img, ann["bbox"]))
        committed = cv2.imread(str(path))
        assert committed.shape == (make.CROP_SIZE, make.CROP_SIZE, 3)
        decoded = cv2.imdecode(np.frombuffer(made, np.uint8), cv2.IMREAD_COLOR)
        assert np.abs(committed.astype(int) - decoded.astype(int)).mean() < 1.0, path.name
        same_encoder = same_encoder and made == path.read_bytes()
    assert same_encoder or cv2.__version__ != "5.1.0"  # the OpenCV that wrote them
