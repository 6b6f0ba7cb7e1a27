"""Segmentation and pose heads: found by structure, quantized with their heads float, decoded as
Ultralytics decodes them, and scored by pycocotools exactly as pycocotools scores the same predictions.

Tiny graphs (tests/graphs.py ``tiny_seg``, ``tiny_pose``) and synthetic outputs; the trained fixtures'
tests are in test_task_fixtures.py.
"""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import onnx
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import graphs
from quantkit import heads, quantize
from quantkit.cli import main
from quantkit.errors import ManifestError, ModelError, QuantkitError
from quantkit.heads import pose, segment
from quantkit.manifest import Case, load_manifest
from quantkit.measure.evaluate import ImageSet, folder_items, predict
from quantkit.measure.session import Runner
from quantkit.pipeline import CasePipeline
from quantkit.preprocess import letterbox_image

NAMES = {0: "a", 1: "b"}
SEG_META = {"names": str(NAMES), "task": "segment"}
POSE_META = {"names": str(NAMES), "task": "pose", "kpt_shape": "[5, 3]"}


def ops(model, names):
    by_name = {n.name: n.op_type for n in model.graph.node}
    return sorted(by_name[n] for n in names)


# ---- finding the heads ----------------------------------------------------------------------------


def test_segment_head_is_the_detect_head_plus_the_coefficients():
    model = graphs.tiny_seg()
    head = heads.find(model)  # PROTOS_FLOAT = "none": the prototype branch is quantized like the backbone
    assert head.family == "segment" and segment.PROTOS_FLOAT == "none"
    names = set(head.nodes)
    assert "/model/segment/reshape_1" in names  # the coefficients' Reshape into output0
    assert not names & {f"/model/segment/{n}" for n in ("conv_2", "convtranspose_5", "conv_6", "sigmoid_7", "mul_8")}
    # box, class and coefficient Convs feed the float head and stay quantizable
    assert head.feeding_convs == ["/model/conv_6", "/model/conv_7", "/model/segment/conv_0"]
    assert ops(model, head.nodes).count("Conv") == 1  # the DFL's


@pytest.mark.parametrize("policy", ["activation", "branch"])
def test_protos_policy_sets_what_of_the_prototype_branch_stays_float(policy):
    model = graphs.tiny_seg()
    base = set(segment.Segment("none").find(model).nodes)
    found = segment.Segment(policy).find(model)
    extra = set(found.nodes) - base
    if policy == "activation":  # the SiLU that writes output1; the prototypes' last Conv feeds it, quantizable
        assert extra == {"/model/segment/sigmoid_7", "/model/segment/mul_8"}
        assert "/model/segment/conv_6" in found.feeding_convs
    else:  # every node of the branch, down to the feature map the Detect head shares (its SiLU is not the branch's)
        assert extra == {
            f"/model/segment/{n}"
            for n in ("conv_2", "sigmoid_3", "mul_4", "convtranspose_5", "conv_6", "sigmoid_7", "mul_8")
        }
        assert set(ops(model, extra)) == {"Conv", "ConvTranspose", "Sigmoid", "Mul"}


def test_segment_head_is_found_on_outputs_without_shapes():
    """Some tools drop the outputs' shapes: the structure alone tells the detection output from the protos."""
    model = graphs.tiny_seg()
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    model.graph.output.insert(0, model.graph.output.pop())  # the prototypes first, too
    assert heads.find(model).nodes == heads.find(graphs.tiny_seg()).nodes


def test_pose_head_holds_the_keypoint_decode():
    model = graphs.tiny_pose()
    head = heads.find(model)
    assert head.family == "pose"
    assert {"Slice", "Sigmoid", "Add", "Mul"} <= set(ops(model, head.nodes))
    assert "/model/pose/conv_0" in head.feeding_convs and "/model/pose/conv_0" not in head.nodes


def test_families_do_not_claim_each_other():
    detect, seg, kpts = graphs.tiny_yolo(), graphs.tiny_seg(), graphs.tiny_pose()
    assert segment.FAMILY.find(detect) is None and pose.FAMILY.find(detect) is None
    assert pose.FAMILY.find(seg) is None and segment.FAMILY.find(kpts) is None
    assert heads.find(detect).family == "dfl-detect"
    no_protos = graphs.tiny_seg()  # the coefficient part without its prototype output is no head quantkit knows
    no_protos.graph.output.remove(no_protos.graph.output[1])
    assert segment.FAMILY.find(no_protos) is None and pose.FAMILY.find(no_protos) is None
    obb = graphs.tiny_pose(metadata={"task": "obb"})  # a model's own task metadata rules pose out
    assert pose.FAMILY.find(obb) is None


def test_registry_reads_the_layouts():
    assert heads.for_outputs([(1, 38, 64), (1, 32, 8, 8)], 2).name == "segment"
    assert heads.for_outputs([(1, 32, 8, 8), (1, 64, 38)], None).name == "segment"  # either order and orientation
    family = heads.for_outputs([(1, 21, 64)], 2)
    assert family.name == "pose" and family.layout((1, 21, 64), 2) == (2, 5, 3)
    # the metadata's kpt_shape alone decides K (and so nc); its task narrows the search
    family = heads.for_outputs([(1, 21, 64)], None, {"kpt_shape": "[5, 3]", "task": "pose"})
    assert family.layout((1, 21, 64), None) == (2, 5, 3)
    assert heads.for_outputs([(1, 6, 64)], 2).name == "dfl-detect"
    with pytest.raises(ModelError, match=r"model outputs \[1, 21, 64\] match no head family"):
        heads.for_outputs([(1, 21, 64)], 2, {"task": "detect"})


# ---- decoding -------------------------------------------------------------------------------------


def rle_area(rle):
    return int(mask_utils.area(rle))


@pytest.mark.parametrize("seed", range(12))
def test_rle_from_region_equals_pycocotools_encode(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(3, 40)), int(rng.integers(3, 40))
    rh, rw = int(rng.integers(0, h + 1)), int(rng.integers(0, w + 1))
    top, left = (0, 0) if seed % 3 == 0 else (int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1)))
    if seed % 4 == 1:
        rh, top = h, 0  # full-height regions: runs go on from one column into the next
    region = rng.random((rh, rw)) < (0.5 if seed % 2 else 0.9)
    full = np.zeros((h, w), np.uint8)
    full[top : top + rh, left : left + rw] = region
    ours = segment.rle_from_region(region, top, left, (h, w))
    assert isinstance(ours["counts"], str) and ours["size"] == [h, w]
    np.testing.assert_array_equal(mask_utils.decode(ours), full)
    assert ours["counts"] == mask_utils.encode(np.asfortranarray(full))["counts"].decode("ascii")


def reference_masks(coef, protos, box, lb, input_hw):
    """The two-step way (Ultralytics' ``process_mask_native`` + ``scale_masks``): logits upsampled 4x to the
    input, the letterbox's content cropped and resized to the image, > 0, cropped to the box."""
    h, w = lb.shape
    logit = (coef @ protos.reshape(len(protos), -1)).reshape(protos.shape[1:]).astype(np.float32)
    up = cv2.resize(logit, (input_hw[1], input_hw[0]), interpolation=cv2.INTER_LINEAR)
    nh, nw = int(round(h * lb.scale)), int(round(w * lb.scale))
    full = cv2.resize(up[lb.top : lb.top + nh, lb.left : lb.left + nw], (w, h), interpolation=cv2.INTER_LINEAR) > 0
    cols, rows = np.arange(w)[None, :], np.arange(h)[:, None]
    return full & (cols >= box[0]) & (cols < box[2]) & (rows >= box[1]) & (rows < box[3])


@pytest.mark.parametrize("image_hw", [(300, 500), (480, 270)])
def test_masks_decode_as_ultralytics_does(image_hw):
    """One detection at a known anchor: its mask is its own coefficients' (not a neighbour's), upsampled and
    mapped back through the letterbox, cropped to its box; it agrees with the two-step reference."""
    rng = np.random.default_rng(1)
    input_hw, nc, nm, n = (64, 96), 2, 32, 50
    lb = letterbox_image(np.zeros((*image_hw, 3), np.uint8), input_hw)[1]
    protos = cv2.resize(rng.normal(0, 1, (4, 6, nm)).astype(np.float32), (24, 16), interpolation=cv2.INTER_CUBIC)
    protos = protos.transpose(2, 0, 1)  # [nm, 16, 24]: smooth, so masks are blobs
    out = np.zeros((1, 4 + nc + nm, n), np.float32)
    out[0, :4, 7] = [40, 30, 50, 36]  # cx, cy, w, h in input pixels
    out[0, 4 + 1, 7] = 0.9
    out[0, 4 + nc :, 7] = rng.normal(0, 1, nm)
    out[0, :4, 8] = [20, 20, 8, 8]
    out[0, 4, 8] = 0.3
    out[0, 4 + nc :, 8] = -rng.normal(0, 1, nm)  # another detection, other coefficients
    dets = segment.FAMILY.decode([out, protos[None]], lb, 0.25, 0.7, 300, nc, "best_class")
    assert len(dets) == 2 and dets.classes.tolist() == [1, 0] and len(dets.fields["masks"]) == 2
    ours = mask_utils.decode(dets.fields["masks"][0]).astype(bool)
    ref = reference_masks(out[0, 4 + nc :, 7], protos, dets.boxes[0], lb, input_hw)
    assert ours.shape == image_hw and ref.sum() > 500
    assert (ours & ref).sum() / (ours | ref).sum() > 0.97
    x0, y0, x1, y1 = dets.boxes[0]
    ys, xs = np.nonzero(ours)
    assert xs.min() >= np.floor(x0) and xs.max() < np.ceil(x1) and ys.min() >= np.floor(y0) and ys.max() < np.ceil(y1)


def test_keypoints_map_back_through_the_letterbox():
    lb = letterbox_image(np.zeros((200, 400, 3), np.uint8), (64, 64))[1]  # scale 0.16, content 32 rows from row 16
    nc, k, n = 2, 5, 30
    out = np.zeros((1, 4 + nc + 3 * k, n), np.float32)
    out[0, :4, 3] = [32, 32, 20, 10]
    out[0, 5, 3] = 0.8
    kpts = np.array([[32, 32, 0.9], [32, 27, 0.8], [42, 32, 0.2], [32, 37, 0.7], [70, 10, 0.6]], np.float32)
    out[0, 4 + nc :, 3] = kpts.reshape(-1)
    dets = pose.Pose((k, 3)).decode([out], lb, 0.25, 0.7, 300, None, "best_class")
    assert dets.fields["keypoints"].shape == (1, k, 3)
    expected = np.c_[(kpts[:, 0] - lb.left) / lb.scale, (kpts[:, 1] - lb.top) / lb.scale, kpts[:, 2]]
    expected[4, :2] = [400, 0]  # beyond the image (in the padding): clipped to it, as Ultralytics clips
    np.testing.assert_allclose(dets.fields["keypoints"][0], expected, rtol=1e-5)
    np.testing.assert_allclose(dets.boxes[0], [137.5, 68.75, 262.5, 131.25], rtol=1e-5)  # boxes and keypoints agree


# ---- quantizing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [lambda: graphs.tiny_seg(metadata=SEG_META), lambda: graphs.tiny_pose(metadata=POSE_META)]
)
def test_default_preset_keeps_the_head_float_and_naive_does_not(make, tmp_path, calib_dir):
    src = graphs.save(make(), tmp_path / "m.onnx")
    q = quantize(src, tmp_path / "q.onnx", calib=calib_dir, progress=False, range_cache=False)
    model = onnx.load(q.output)
    assert q.head_nodes and heads.head_is_float(model, q.head_nodes)
    assert {p.key: p.value for p in model.metadata_props}["task"] == make().metadata_props[1].value  # metadata kept
    naive = quantize(src, tmp_path / "n.onnx", calib=calib_dir, preset="naive", progress=False, range_cache=False)
    assert not heads.head_is_float(onnx.load(naive.output), naive.head_nodes)


# ---- scoring: quantkit eval --json against pycocotools on the same predictions ----------------------


def annotations_from(model_path, images_dir, out, seed=0):
    """COCO annotations made of the tiny model's own confident detections, each mask shifted by 2 pixels and
    each keypoint by up to 2, so that pycocotools' mAP lies strictly between 0 and 1."""
    rng = np.random.default_rng(seed)
    items = folder_items(images_dir)
    images = ImageSet.load(items, (32, 32))
    preds = predict(Runner(model_path), images, 2, conf=0.3)
    coco = {
        "images": [],
        "annotations": [],
        "categories": [{"id": 5, "name": "a", "keypoints": list("vwxyz"), "skeleton": []}, {"id": 9, "name": "b"}],
    }
    for (image_id, path), lb in zip(items, images.letterboxes):
        coco["images"].append({"id": image_id, "file_name": path.name, "height": lb.shape[0], "width": lb.shape[1]})
        dets = preds.dets[image_id]
        for i in range(min(len(dets), 4)):
            x0, y0, x1, y1 = dets.boxes[i].tolist()
            ann = {
                "id": len(coco["annotations"]) + 1,
                "image_id": image_id,
                "category_id": [5, 9][int(dets.classes[i])],
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": 0,
            }
            if "masks" in dets.fields:
                m = np.roll(mask_utils.decode(dets.fields["masks"][i]), 2, axis=1)
                if m.sum() < 4:
                    continue
                rle = mask_utils.encode(np.asfortranarray(m))
                ann.update(segmentation={"size": rle["size"], "counts": rle["counts"].decode()}, area=float(m.sum()))
            if "keypoints" in dets.fields:
                k = dets.fields["keypoints"][i].copy()
                k[:, :2] += rng.uniform(-2, 2, (len(k), 2))
                k[:, 2] = 2
                ann.update(keypoints=np.round(k, 2).reshape(-1).tolist(), num_keypoints=len(k))
            coco["annotations"].append(ann)
    out.write_text(json.dumps(coco))
    return out


def pycocotools_map(ann, results, iou_type, sigmas=None):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        ev.params.maxDets = [1, 10, 300]
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = sigmas
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][:, :, :, 0, -1]
    return float(p[p > -1].mean())


@pytest.mark.parametrize("task", ["segment", "pose"])
def test_eval_json_matches_pycocotools_on_the_same_predictions(task, tmp_path, run_cli):
    model = graphs.tiny_seg(metadata=SEG_META) if task == "segment" else graphs.tiny_pose(metadata=POSE_META)
    path = graphs.save(model, tmp_path / "m.onnx")
    images = graphs.write_images(tmp_path / "val", count=8, seed=3)
    ann = annotations_from(path, images, tmp_path / "ann.json")
    code, out, err = run_cli(
        "eval", path, "--images", images, "--ann", ann, "--json", "--detections", tmp_path / "d.json"
    )
    assert code == 0, err
    stats, dets = json.loads(out), json.loads((tmp_path / "d.json").read_text())
    label, iou_type = ("mask", "segm") if task == "segment" else ("keypoints", "keypoints")
    assert stats["task"] == task and set(stats[label]) >= {"map50_95", "map50", "map75", "per_class", "detections"}
    assert stats["map50_95"] == pytest.approx(
        pycocotools_map(
            ann,
            [{k: v for k, v in d.items() if k in ("image_id", "category_id", "bbox", "score")} for d in dets],
            "bbox",
        ),
        abs=1e-12,
    )
    if task == "segment":  # without the bbox, pycocotools takes each detection's area from its mask
        direct = pycocotools_map(ann, [{k: v for k, v in d.items() if k != "bbox"} for d in dets], "segm")
    else:
        direct = pycocotools_map(ann, dets, "keypoints", np.full(5, 1 / 5))
    assert stats[label]["map50_95"] == pytest.approx(direct, abs=1e-12)
    assert 0.05 < direct < 0.99, direct  # a figure that can disagree


def test_eval_without_masks_in_the_annotations_scores_boxes_and_says_so(tmp_path, capsys):
    path = graphs.save(graphs.tiny_seg(metadata=SEG_META), tmp_path / "m.onnx")
    images = graphs.write_images(tmp_path / "val", count=4, seed=3)
    ann = annotations_from(path, images, tmp_path / "ann.json")
    data = json.loads(ann.read_text())
    for a in data["annotations"]:
        a.pop("segmentation")
    ann.write_text(json.dumps(data))
    code = main(["eval", path, "--images", images, "--ann", str(ann), "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert code == 0 and stats["mask"] is None and stats["map50_95"] >= 0
    assert any("carry no masks" in note for note in stats["notes"])


def test_pose_model_against_other_keypoints_is_a_one_line_error(tmp_path, run_cli):
    path = graphs.save(graphs.tiny_pose(metadata=POSE_META), tmp_path / "m.onnx")
    images = graphs.write_images(tmp_path / "val", count=4, seed=3)
    ann = annotations_from(path, images, tmp_path / "ann.json")
    data = json.loads(ann.read_text())
    for a in data["annotations"]:
        a["keypoints"] = a["keypoints"][:12]
    ann.write_text(json.dumps(data))
    code, _, err = run_cli("eval", path, "--images", images, "--ann", ann)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the model predicts 5 keypoints per object but the annotations hold 4" in err


# ---- the manifest's task ----------------------------------------------------------------------------


def test_a_case_declares_its_task_and_a_wrong_one_stops(tmp_path):
    (tmp_path / "m.toml").write_text('[[case]]\nid = "x"\nmodel = "m.onnx"\ntask = "segmentation"\n')
    with pytest.raises(ManifestError, match=r"case 'x': task = 'segmentation' is not one of detect, segment, pose"):
        load_manifest(tmp_path / "m.toml")
    graphs.save(graphs.tiny_seg(metadata=SEG_META), tmp_path / "m.onnx")
    graphs.write_images(tmp_path / "val", count=4, seed=3)
    case = Case("x", tmp_path / "m.onnx", val_images=tmp_path / "val", task="pose")
    with pytest.raises(QuantkitError, match=r"case 'x' declares task = \"pose\" but m.onnx is a segment model"):
        CasePipeline(case, cache_dir=tmp_path / "cache").predictions(None)
    case.task = None  # absent: taken from the head
    assert CasePipeline(case, cache_dir=tmp_path / "cache").predictions(None).family.task == "segment"


# ---- the other surfaces: compare, check ----------------------------------------------------------------


@pytest.mark.parametrize("task", ["segment", "pose"])
def test_compare_reports_and_gates_the_task_parity(task, tmp_path, calib_dir, capsys):
    model = graphs.tiny_seg(metadata=SEG_META) if task == "segment" else graphs.tiny_pose(metadata=POSE_META)
    src = graphs.save(model, tmp_path / "m.onnx")
    q = quantize(src, tmp_path / "q.onnx", calib=calib_dir, progress=False, range_cache=False)
    images = graphs.write_images(tmp_path / "val", count=6, seed=5)
    main(["compare", src, q.output, "--images", images, "--json"])
    report = json.loads(capsys.readouterr().out)
    metric, key = (
        ("matched_mask_iou_mean", "mask_iou_mean")
        if task == "segment"
        else ("matched_keypoint_distance_mean", "keypoint_distance_mean")
    )
    gate = next(g for g in report["gates"] if g["metric"] == metric)
    assert report[key] is not None and gate["value"] == pytest.approx(report[key])
    assert set(report["raw"]) == {"box", "cls"}  # the coefficients / keypoints are judged by what they make
    main(["compare", src, q.output, "--images", images])
    out = capsys.readouterr().out
    assert ("IoU of matched masks (mean / min)" if task == "segment" else "keypoint distance / box size") in out


@pytest.mark.slow
def test_check_adds_the_mask_map_column_and_gates_it(tmp_path, calib_dir):
    """(slow) `quantkit check` on an annotated segmentation model: the mask mAP column beside the box mAP,
    and its drop among the gated configuration's gates."""
    from quantkit.check import GATED, run_check
    from quantkit.manifest import single_case

    src = graphs.save(graphs.tiny_seg(metadata=SEG_META), tmp_path / "m.onnx")
    images = graphs.write_images(tmp_path / "val", count=25, seed=3)  # the evidence minimum: fewer stops at once
    ann = annotations_from(src, images, tmp_path / "ann.json")
    report = run_check(single_case(src, calib_dir, images, ann), eps=["cpu"], threads=1)
    assert all("mask mAP50-95" in row for row in report.rows)
    assert any(r.metric == "mask_map50_95_drop_pt" for r in report.gate_results[GATED])
