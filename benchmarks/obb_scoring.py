"""The rotated-IoU scorer at its worst: 300 oriented predictions per image (Ultralytics' max_det at conf 0.001) on the
200 val images, scored with pycocotools + exact rotated IoU; and the agreement of such a set with its own 50 best per
image as the reference (a crowded scene's FP32 at conf 0.25).

    PYTHONPATH=. python benchmarks/obb_scoring.py
"""

import time

import numpy as np

from quantkit import tasks
from quantkit.measure import metrics
from quantkit.tasks import obb
from quantkit.tasks.base import Detections

coco = metrics.load_coco("fixtures/data/val/annotations-obb.json")
rng, task, ids = np.random.default_rng(0), tasks.get("obb"), sorted(coco.getImgIds())
dets = {}
for i in ids:
    anns, n = coco.imgToAnns[i], 300
    g = np.array([a["obb"] for a in anns]).reshape(-1, 4, 2)
    centres = g.mean(1)[rng.integers(0, len(g), n)] + rng.normal(0, 15, (n, 2))
    xywhr = np.c_[centres, rng.uniform(10, 80, (n, 2)), rng.uniform(-0.8, 2.3, n)]
    pts = obb.corners(xywhr).astype(np.float32)
    scores = np.sort(rng.uniform(0.001, 1, n))[::-1].astype(np.float32)
    hulls = obb.hull(pts).astype(np.float32)
    dets[i] = Detections(hulls, scores, rng.integers(0, 6, n).astype(np.int64), {"obb": pts})
cat_ids = sorted(coco.getCatIds())
t = time.perf_counter()
res = metrics.coco_results(dets, cat_ids, "obb", task)
stats = metrics.coco_map(coco, res, ids, cat_ids, kind="obb", task=task)
print(f"mAP of 60000 oriented predictions on 200 images: {time.perf_counter() - t:.1f} s (map {stats['map50_95']:.3f})")
ref = {i: d.take(np.arange(50)) for i, d in dets.items()}
t = time.perf_counter()
a = metrics.agreement_map(ref, dets, {i: (480, 640) for i in ids}, 6, task=task)
print(f"agreement, 10000 reference boxes vs 60000: {time.perf_counter() - t:.1f} s (map {a['map50_95']:.3f})")
