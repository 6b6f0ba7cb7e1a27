"""Oriented boxes: each detection carries its rotated rectangle's four corners (``fields["obb"]``: [K, 4, 2] in
original pixels; ``boxes`` holds their axis-aligned hull). Candidates are suppressed by OpenCV's rotated NMS,
FP32/INT8 pairs matched by rotated IoU, and mAP50-95 is pycocotools' matching and accumulation with that IoU in
place of the axis-aligned one (annotations carry ``"obb": [x1, y1, ..., x4, y4]``). Neither ground truth nor
predictions are clipped to the image, so a box past the edge is judged alike on both sides.

Rotated IoU is exact: the intersection of two convex polygons (clipped one by the other, in float64) over their
union; pairs whose hulls do not overlap are 0 without it. OpenCV's ``intersectConvexConvex`` was not used: it reads
about 0 for some nearly identical rectangles (22 of 2000 perturbed by 1e-5 px), which unmatched unchanged boxes.
"""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .base import Detections, Task, box_iou

CLASS_OFFSET = 1e5  # input pixels between classes' centres in one rotated NMS pass (class-wise suppression)


def corners(xywhr: np.ndarray) -> np.ndarray:
    """[K, 5] cx, cy, w, h, angle (radians, as Ultralytics' OBB head emits it) -> [K, 4, 2] corners, in the
    order OpenCV's ``RotatedRect.points`` gives them."""
    cx, cy, w, h, r = np.asarray(xywhr, np.float64).reshape(-1, 5).T
    cos, sin = np.cos(r), np.sin(r)
    along = np.stack([w / 2 * cos, w / 2 * sin], axis=1)  # half the width along the box's own x axis
    across = np.stack([-h / 2 * sin, h / 2 * cos], axis=1)
    centre = np.stack([cx, cy], axis=1)
    return np.stack(
        [centre - along + across, centre - along - across, centre + along - across, centre + along + across], 1
    )


def hull(points: np.ndarray) -> np.ndarray:
    """[K, 4, 2] corners -> [K, 4] xyxy of their axis-aligned hull."""
    points = np.asarray(points, np.float64).reshape(-1, 4, 2)
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def _area(points) -> float:
    """Signed area of a polygon (shoelace) given as (x, y) pairs: positive when its corners run counter-clockwise
    (x right, y up)."""
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))


def _clipped(subject: list, clip: list) -> list:
    """The part of convex polygon ``subject`` inside convex polygon ``clip`` (Sutherland-Hodgman, ``clip``
    counter-clockwise; plain floats: numpy's per-call cost dwarfs 4-8 points). Points on an edge count as inside,
    so identical and nearly identical boxes overlap fully."""
    out = subject
    for (ax, ay), (bx, by) in zip(clip, clip[1:] + clip[:1]):
        if not out:
            break
        ex, ey = bx - ax, by - ay
        side = [ex * (y - ay) - ey * (x - ax) for x, y in out]  # >= 0: inside
        kept = []
        for k, (px, py) in enumerate(out):
            qx, qy = out[(k + 1) % len(out)]
            sp, sq = side[k], side[(k + 1) % len(out)]
            if sp >= 0:
                kept.append((px, py))
            if (sp >= 0) != (sq >= 0):
                t = sp / (sp - sq)
                kept.append((px + (qx - px) * t, py + (qy - py) * t))
        out = kept
    return out


def polygon_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of convex quadrilaterals: [A, 4, 2] x [B, 4, 2] -> [A, B], exact (in float64): the
    intersection clipped polygon by polygon, pairs whose hulls do not overlap 0 without it."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4, 2), np.asarray(b, np.float64).reshape(-1, 4, 2)
    polygons = []
    for side in (a, b):
        points = [[tuple(p) for p in quad] for quad in side.tolist()]
        polygons.append([q if _area(q) >= 0 else q[::-1] for q in points])  # counter-clockwise
    (pa, pb), out = polygons, np.zeros((len(a), len(b)))
    area_a, area_b = [_area(q) for q in pa], [_area(q) for q in pb]
    for i, j in zip(*np.nonzero(box_iou(hull(a), hull(b)) > 0)):
        inter = _clipped(pa[i], pb[j])
        inter_area = _area(inter) if len(inter) >= 3 else 0.0
        union = area_a[i] + area_b[j] - inter_area
        out[i, j] = inter_area / union if union > 0 else 0.0
    return out


class RotatedEval(COCOeval):
    """pycocotools' COCOeval (bbox: its area ranges, maxDets, matching, accumulation) with rotated IoU."""

    def computeIoU(self, imgId, catId):  # noqa: N802, N803 - pycocotools' names
        gt, dt = self._gts[imgId, catId], self._dts[imgId, catId]
        if not gt and not dt:
            return []
        dt = [dt[i] for i in np.argsort([-d["score"] for d in dt], kind="mergesort")][: self.params.maxDets[-1]]
        return polygon_iou([d["obb"] for d in dt], [g["obb"] for g in gt])


class OBB(Task):
    name = "obb"
    fields = ("obb",)
    scored_on = ("obb",)
    labels = {"obb": "box"}
    annotation_field = {"obb": "obb"}
    # rotated IoU reads angle jitter on near-square shapes (a circle's angle is arbitrary), so agreement reads lower:
    # on the OBB fixture the good INT8 0.901 [0.886, 0.918] (val), 0.909 [0.904, 0.915] (1000 unseen images), a
    # planted Conv scale x2 0.860 [0.843, 0.878] / 0.861 [0.854, 0.869] (docs/measurements.md)
    defaults = {"min_agreement_map": 0.88}

    def iou(self, a: Detections, ai: np.ndarray, b: Detections, bi: np.ndarray) -> np.ndarray:
        if "obb" not in a.fields or "obb" not in b.fields:
            return super().iou(a, ai, b, bi)
        return polygon_iou(np.asarray(a.fields["obb"])[ai], np.asarray(b.fields["obb"])[bi])

    def suppress(self, preds, keep, scores, classes, iou):
        """Class-wise rotated NMS (OpenCV's ``NMSBoxesRotated``, exact polygon IoU): each class's centres shifted
        ``CLASS_OFFSET`` apart so classes never suppress each other. The angle is ``preds``' last channel."""
        cx, cy, w, h = preds[:4, keep].astype(np.float64)
        degrees = np.degrees(preds[-1, keep].astype(np.float64))
        shift = classes.astype(np.float64) * CLASS_OFFSET
        rects = [((x + s, y), (bw, bh), a) for x, y, bw, bh, a, s in zip(cx, cy, w, h, degrees, shift)]
        return np.asarray(cv2.dnn.NMSBoxesRotated(rects, scores.tolist(), 0.0, iou), np.int64).reshape(-1)

    def result_fields(self, dets: Detections, kind: str) -> dict[str, list]:
        """The hull's bbox (pycocotools' loader needs one) and the corners."""
        out = super().result_fields(dets, "bbox")
        if "obb" in dets.fields:
            out["obb"] = np.round(np.asarray(dets.fields["obb"], np.float64).reshape(len(dets), 8), 3).tolist()
        return out

    def annotation_fields(self, dets: Detections, k: int) -> dict:
        return {"obb": np.asarray(dets.fields["obb"][k], np.float64).reshape(8).tolist()}

    def evaluator(self, coco_gt: COCO, coco_dt: COCO, kind: str) -> COCOeval:
        return RotatedEval(coco_gt, coco_dt, "bbox")

    def load_results(self, coco_gt: COCO, results: list[dict]) -> COCO:
        """pycocotools' loader, each prediction's area its rotated box's (the ground truth's is the object's)."""
        coco_dt = super().load_results(coco_gt, results)
        for ann in coco_dt.dataset["annotations"]:
            ann["area"] = abs(cv2.contourArea(np.asarray(ann["obb"], np.float32).reshape(4, 2)))
        return coco_dt

    def ground_truth(self, annotations: list[dict]) -> Detections:
        gt = super().ground_truth(annotations)
        gt.fields["obb"] = np.array([a["obb"] for a in annotations], np.float32).reshape(-1, 4, 2)
        return gt


TASK = OBB()
