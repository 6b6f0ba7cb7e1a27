"""Error bars on the mAP drop (boxes, masks, keypoints): a paired bootstrap over the evaluation images.

pycocotools' ``evaluate()`` matches detections to annotations once per (category, image); its
``accumulate()`` step then pools every image's matches into a precision-recall curve. Resampling
images with replacement only changes how often each image is counted, so the matches are taken
once and the accumulation is redone here in numpy with per-image counts as weights (an image drawn
k times counts k times, its copies adjacent in score order). With every weight 1 it is
pycocotools' accumulate exactly; FP32 and INT8 are resampled with the same draws (paired).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools.coco import COCO

from .intervals import CHUNK, LEVEL, RESAMPLES, SEED, percentile_interval, resample_weights
from .. import tasks
from ..tasks import Task
from .metrics import evaluated


@dataclass
class MatchTable:
    """One model's matches at area 'all' and 300 detections, reduced to what the precision-recall
    curve needs. Recall only steps at true positives and precision peaks there, so pycocotools'
    interpolated precision depends only on the cumulative TP and FP counts at each true positive in
    pooled score order. Per image those counts are fixed: ``tp``/``fp`` [I, P] hold, for each of the
    P true positives (all categories and IoU thresholds, ``groups`` gives each one's (category, start,
    end) columns), how many TPs/FPs of image i come at or before it; a resample's counts are then
    ``weights @ tp``. ``gt`` [K, I] counts each image's non-ignored annotations per category."""

    image_ids: list[int]
    rec_thrs: np.ndarray
    n_iou: int
    tp: np.ndarray
    fp: np.ndarray
    groups: list[tuple[int, int, int]]
    gt: np.ndarray

    @classmethod
    def from_results(
        cls,
        coco_gt: COCO,
        results: list[dict],
        image_ids: list[int],
        cat_ids: list[int],
        kind: str = "bbox",
        task: Task | None = None,
    ) -> MatchTable:
        """Matches of ``results`` (a COCO results list of ``task``'s ``kind``) on ``image_ids`` via pycocotools'
        ``evaluate()``."""
        task = task or tasks.get(None)
        image_ids = [int(i) for i in image_ids]
        cats = sorted(set(int(c) for c in cat_ids))
        if results:
            return cls.from_evaluator(evaluated(coco_gt, results, image_ids, cats, kind, task), image_ids)
        gt = np.zeros((len(cats), len(image_ids)))  # nothing detected: only the annotations pycocotools counts
        for k, cat in enumerate(cats):
            for i, image_id in enumerate(image_ids):
                anns = coco_gt.imgToAnns.get(image_id, [])
                gt[k, i] = sum(task.counted(a, kind) for a in anns if a["category_id"] == cat)
        empty = np.zeros((len(image_ids), 0), np.float32)
        return cls(image_ids, np.linspace(0.0, 1.00, 101), 10, empty, empty, [], gt)

    @classmethod
    def from_evaluator(cls, ev, image_ids: list[int]) -> MatchTable:
        """Matches from a COCOeval that has run ``evaluate()`` (the one mAP was computed with)."""
        image_ids = [int(i) for i in image_ids]
        n_img, index = len(image_ids), {i: k for k, i in enumerate(image_ids)}
        gt = np.zeros((len(ev.params.catIds), n_img))
        tp_cols, fp_cols, groups, start = [], [], [], 0
        p = ev.params
        n_area, max_det, all_area = len(p.areaRng), p.maxDets[-1], p.areaRngLbl.index("all")
        rec_thrs, n_iou = np.asarray(p.recThrs), len(p.iouThrs)
        for k in range(len(p.catIds)):
            first = k * n_area * n_img + all_area * n_img
            entries = [
                (index[p.imgIds[i]], e) for i, e in enumerate(ev.evalImgs[first : first + n_img]) if e is not None
            ]
            for i, e in entries:
                gt[k, i] = np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
            if not entries:
                continue
            scores = np.concatenate([e["dtScores"][:max_det] for _, e in entries])
            order = np.argsort(-scores, kind="mergesort")  # as accumulate() sorts
            image = np.concatenate([np.full(len(e["dtScores"][:max_det]), i) for i, e in entries])[order]
            matched = np.concatenate([e["dtMatches"][:, :max_det] for _, e in entries], axis=1)[:, order].astype(bool)
            ignored = np.concatenate([e["dtIgnore"][:, :max_det] for _, e in entries], axis=1)[:, order].astype(bool)
            onehot = np.zeros((n_img, image.size), np.float32)
            onehot[image, np.arange(image.size)] = 1.0
            for t in range(n_iou):
                tp, fp = matched[t] & ~ignored[t], ~matched[t] & ~ignored[t]
                at = np.flatnonzero(tp)
                tp_cols.append(np.cumsum(onehot * tp, axis=1)[:, at])
                fp_cols.append(np.cumsum(onehot * fp, axis=1)[:, at])
                groups.append((k, start, start + at.size))
                start += at.size
        stack = lambda cols: np.concatenate(cols, axis=1) if cols else np.zeros((n_img, 0), np.float32)  # noqa: E731
        return cls(image_ids, rec_thrs, n_iou, stack(tp_cols), stack(fp_cols), groups, gt)

    def map50_95(self, weights: np.ndarray) -> np.ndarray:
        """mAP50-95 for each row of per-image ``weights`` [B, I] (all ones: pycocotools' value)."""
        weights = np.atleast_2d(np.asarray(weights, np.float32))
        n_b, n_r = len(weights), len(self.rec_thrs)
        npig = weights.astype(np.float64) @ self.gt.T  # [B, K]
        present = npig > 0
        tp, fp = (weights @ self.tp).astype(np.float64), (weights @ self.fp).astype(np.float64)  # [B, P]
        total = np.zeros(n_b)
        for k, lo, hi in self.groups:
            if hi == lo:
                continue  # no true positive at this IoU: precision 0 at every recall
            tp_k, fp_k = tp[:, lo:hi], fp[:, lo:hi]
            recall = tp_k / np.where(present[:, k], npig[:, k], 1.0)[:, None]
            precision = tp_k / (tp_k + fp_k + np.spacing(1))
            envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
            # searchsorted(recall, rec_thrs, 'left') on every row at once: rows offset by 2 apart
            n_p = hi - lo
            offset = 2.0 * np.arange(n_b)[:, None]
            at = np.searchsorted((recall + offset).ravel(), (self.rec_thrs[None] + offset).ravel(), side="left")
            at = at.reshape(n_b, n_r) - np.arange(n_b)[:, None] * n_p
            q = np.where(at < n_p, np.take_along_axis(envelope, np.minimum(at, n_p - 1), axis=1), 0.0)
            total += present[:, k] * q.mean(axis=1)
        count = present.sum(axis=1) * self.n_iou
        return np.where(count > 0, total / np.maximum(count, 1), -1.0)

    def resampled(self, weights: np.ndarray) -> np.ndarray:
        """mAP50-95 on each row of ``weights``, NaN where a draw holds no annotation (nothing to score)."""
        values = np.concatenate([self.map50_95(c) for c in np.array_split(weights, max(1, len(weights) // CHUNK))])
        return np.where(values < 0, np.nan, values)


def _summary(values: np.ndarray, level: float, n_images: int, resamples: int, seed: int, bounds=None) -> dict:
    """The CI95 (reported) and the ``level`` interval (decided on) of resampled ``values``."""
    ci95, decision = percentile_interval(values, 0.95, bounds), percentile_interval(values, level, bounds)
    return {
        "ci95": ci95,
        "ci": decision,
        "level": level,
        "halfwidth": (ci95[1] - ci95[0]) / 2 if ci95 else None,
        "resamples": resamples,
        "seed": seed,
        "images": n_images,
    }


def paired_drop(
    fp32: MatchTable, int8: MatchTable, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> dict:
    """FP32 - INT8 mAP50-95 in points on ``resamples`` paired image resamples: the 95% percentile interval
    (``ci95``), the ``level`` one the gate decides on (``ci``), and the CI95's half-width."""
    if fp32.image_ids != int8.image_ids:
        raise ValueError("the paired bootstrap needs FP32 and INT8 matched on the same images")
    weights = resample_weights(len(fp32.image_ids), resamples, seed)
    drops = 100 * (fp32.resampled(weights) - int8.resampled(weights))
    return {**_summary(drops, level, len(fp32.image_ids), resamples, seed), "sd": float(np.nanstd(drops, ddof=1))}


def interval(table: MatchTable, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """mAP50-95 of one match table on ``resamples`` image resamples, within [0, 1]: the CI95 and the ``level``
    interval (the agreement mAP's: INT8 scored against FP32's detections; a draw of images without any FP32
    detection scores nothing and is left out, never read as -1)."""
    weights = resample_weights(len(table.image_ids), resamples, seed)
    return _summary(table.resampled(weights), level, len(table.image_ids), resamples, seed, (0.0, 1.0))
