"""Gate truth: faults planted on purpose must be reported by the gate responsible for them, with numbers.

- perturbed weights (a broken model posing as the INT8 one)  -> mAP and parity gates
- preprocessing with the padding not centred                 -> parity (box IoU) and mAP gates
- the seed's configuration (onnxruntime defaults, `naive`)   -> parity (recall) and mAP gates
- class scores above 1 (a public YOLOv8n under `naive`)      -> parity (max class score) gate
- Convs left in float in a static model                      -> graph gate
"""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from quantkit import gates, metrics, quantize
from quantkit.detect import Detections
from quantkit.evaluate import ImageSet, parity_report, predict, score
from quantkit.manifest import THRESHOLDS, ConfigSpec
from quantkit.metrics import category_map
from quantkit.model import float_convs
from quantkit.pipeline import CasePipeline
from quantkit.session import Runner


def _failed_metrics(results):
    return {r.metric for r in results if not r.passed}


def _failed_gates(results):
    return {r.gate for r in results if not r.passed}


def _accuracy_gates(pipe, preds, case_id):
    coco = pipe.coco[0]
    metrics = score(coco, preds, pipe.images, category_map(coco))["metrics"]
    th = {**THRESHOLDS, **pipe.case.thresholds}
    return (gates.check_map(pipe.map(None), metrics, th, case_id)[1:]
            + gates.check_parity(parity_report(pipe.predictions(None), preds), th, case_id))


def test_perturbed_weights_fail_map_and_parity(fixture_pipeline, tmp_path):
    model = onnx.load(str(fixture_pipeline.case.model))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim == 4 and w.shape[1] > 1:  # Conv kernels (not the DFL's fixed 1x1)
            init.CopyFrom(numpy_helper.from_array((w + rng.normal(0, 0.5 * w.std(), w.shape)).astype(w.dtype), init.name))
    path = tmp_path / "perturbed.onnx"
    onnx.save(model, str(path))
    preds = predict(Runner(path), fixture_pipeline.images, fixture_pipeline.hw_nc[1])
    results = _accuracy_gates(fixture_pipeline, preds, "planted/perturbed-weights")
    assert {"mAP", "parity"} <= _failed_gates(results), gates.failures(results)
    message = next(r.message() for r in results if r.metric == "map50_95_drop_pt")
    assert "FP32" in message and "INT8" in message and "planted/perturbed-weights" in message
    # the same broken model posing as the FP32 one is caught by the model card's floor
    coco = fixture_pipeline.coco[0]
    broken = score(coco, preds, fixture_pipeline.images, category_map(coco))["metrics"]
    floor = gates.check_map(broken, broken, {**THRESHOLDS, **fixture_pipeline.case.thresholds}, "planted/floor")[0]
    assert not floor.passed, floor.message()


def test_off_centre_padding_fails_box_parity(fixture_pipeline):
    """Content pasted top-left while the box mapping assumes centred padding: every box shifts."""
    good = fixture_pipeline.images
    shifted = ImageSet(good.hw, good.ids, [], good.letterboxes)
    for boxed, lb in zip(good.boxed, good.letterboxes):
        h, w = round(lb.shape[0] * lb.scale), round(lb.shape[1] * lb.scale)
        moved = np.full_like(boxed, 114)
        moved[:h, :w] = boxed[lb.top:lb.top + h, lb.left:lb.left + w]
        shifted.boxed.append(moved)
    preds = predict(Runner(fixture_pipeline.case.model), shifted, fixture_pipeline.hw_nc[1])
    results = _accuracy_gates(fixture_pipeline, preds, "planted/off-centre-padding")
    assert {"mAP", "parity"} <= _failed_gates(results), gates.failures(results)


@pytest.fixture(scope="module")
def naive_pipeline(fixture_case):
    return CasePipeline(fixture_case, preset="naive")


def test_seed_configuration_fails_parity_and_map(naive_pipeline):
    """onnxruntime's defaults quantize the head onto one scale: class scores leave [0, 1]."""
    spec = ConfigSpec("naive", "naive")
    th = {**THRESHOLDS, **naive_pipeline.case.thresholds}
    parity = gates.check_parity(naive_pipeline.parity(spec), th, "planted/naive")
    accuracy = gates.check_map(naive_pipeline.map(None), naive_pipeline.map(spec), th, "planted/naive")[1:]
    # scores land on the box scale's steps: above 1, or rounded to 0 so detections vanish
    assert _failed_metrics(parity) & {"max_class_score", "recall_of_fp32_detections"}, gates.failures(parity)
    assert "map50_95_drop_pt" in _failed_metrics(accuracy), gates.failures(accuracy)


def test_float_convs_fail_the_graph_gate(tiny_model, calib_dir, tmp_path):
    model = onnx.load(str(tiny_model))
    backbone = [n.name for n in model.graph.node if n.op_type == "Conv"][:2]
    result = quantize(tiny_model, tmp_path / "q.onnx", calib=calib_dir, exclude=backbone, progress=False)
    graph = {"float_convs": float_convs(onnx.load(result.output)), "head_found": True, "head_float": True}
    results = gates.check_graph(graph, result.config, THRESHOLDS, "planted/float-convs")
    assert _failed_metrics(results) == {"float_convs"}
    assert "float_convs 3.0000 > 1.0000" in gates.failures(results)[0]



def test_scores_above_one_fail_the_score_gate():
    """The public-YOLOv8n failure: class scores land on the box scale's 1.245 step."""
    boxes = np.array([[10, 10, 50, 50]], np.float32)
    fp32 = [Detections(boxes, np.array([0.8], np.float32), np.array([0]))]
    int8 = [Detections(boxes, np.array([1.245], np.float32), np.array([0]))]
    results = gates.check_parity(metrics.parity(fp32, int8), THRESHOLDS, "planted/score-above-one")
    assert _failed_metrics(results) == {"max_class_score", "score_drift_mean"}, gates.failures(results)
