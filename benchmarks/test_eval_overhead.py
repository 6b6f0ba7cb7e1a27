"""Evaluation overhead: time spent beyond the model's own inference on the fixture's val set.

The images are decoded and letterboxed once per case and shared by every model (FP32 and each
INT8); what each model's evaluation adds on top of inference is the tensor copy, decoding and
class-wise NMS. Target: <= 15 % of inference time. COCOeval is reported apart.
"""

import time

import pytest

from quantkit.measure.evaluate import predict, score
from quantkit.plugin import pipeline, settings
from quantkit.measure.session import Runner

pytestmark = [pytest.mark.benchmark, pytest.mark.noisy]
MAX_OVERHEAD = 0.15


@pytest.mark.parametrize("threads", [1, 2])
def test_evaluation_overhead(request, threads, benchmark, record_property):
    s = settings(request.config)
    pipe = pipeline(request.config, s.manifest.cases[0])
    start = time.perf_counter()
    images = pipe.images
    load_s = time.perf_counter() - start
    runner = Runner(pipe.case.model, "cpu", threads)
    preds = benchmark.pedantic(predict, args=(runner, images, pipe.hw_nc[1]), rounds=1, warmup_rounds=1, iterations=1)
    coco = pipe.coco[0]
    metrics = score(coco, preds, images, pipe.classes)["metrics"]
    line = (
        f"{len(images.ids)} images, {threads} thread(s): inference {preds.seconds_inference:.2f} s, "
        f"decode+NMS+copies {preds.seconds_total - preds.seconds_inference:.2f} s = {100 * preds.overhead:.1f} % "
        f"(limit {100 * MAX_OVERHEAD:.0f} %); COCOeval {metrics['seconds_cocoeval']:.2f} s; "
        f"image decode+letterbox {load_s:.2f} s once per case"
    )
    record_property("evaluation_overhead", line)
    print("\n" + line)
    assert preds.overhead <= MAX_OVERHEAD, line


def test_bootstrap_time(request, record_property):
    """The paired bootstrap of the mAP drop (1000 resamples, 200 images, matches included): <= 10 s."""
    s = settings(request.config)
    pipe = pipeline(request.config, s.manifest.cases[0])
    spec = s.manifest.pairs()[0][1]
    pipe.predictions(None), pipe.predictions(spec)  # inference is not the bootstrap's time
    start = time.perf_counter()
    boot = pipe.map_bootstrap(spec)
    seconds = time.perf_counter() - start
    line = (
        f"bootstrap: {boot['resamples']} resamples of {boot['images']} images, matches included: "
        f"{seconds:.2f} s (limit 10 s)"
    )
    record_property("bootstrap_seconds", line)
    print("\n" + line)
    assert seconds <= 10, line
