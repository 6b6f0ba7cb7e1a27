"""Intervals from the evidence: a per-image bootstrap, and what a gate decides from its interval.

Every accuracy figure quantkit gates is a statistic over images: a ratio of per-image sums (recall =
matched / FP32 detections, a mean over matched pairs = their sum / their count) or a COCOeval mAP
(``bootstrap.py`` redoes its accumulation per resample). Resampling the images with replacement gives
its sampling interval; a gate passes when the whole interval clears its threshold, fails when the whole
interval lies beyond it, and is undecided when the interval holds it (docs/thresholds.md: the rule and
the measurement that chose the level).
"""

from __future__ import annotations

import numpy as np

RESAMPLES, SEED, CHUNK = 1000, 0, 250
LEVEL = 0.95  # the default two-sided level of every decision interval (THRESHOLDS["decision_level"])


def resample_weights(n_images: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """[resamples, n_images] counts of each image in a draw of ``n_images`` with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_images, (resamples, n_images))
    return np.stack([np.bincount(row, minlength=n_images) for row in draws]).astype(np.float64)


def percentile_interval(values: np.ndarray, level: float = LEVEL, bounds: tuple | None = None) -> list[float] | None:
    """The ``level`` percentile interval of resampled ``values``, ignoring resamples where the statistic is
    undefined (NaN: nothing to measure in that draw); clipped to ``bounds``. None when no resample measured it."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    if bounds is not None:
        low, high = np.clip([low, high], *bounds)
    return [float(low), float(high)]


def paired_interval(
    statistic,
    *per_image,
    level: float = LEVEL,
    bounds: tuple | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> list[float] | None:
    """Interval of ``statistic(*sums)`` on ``resamples`` image resamples, where each of ``per_image`` (arrays of
    one figure per image) is summed over the same draw (paired: FP32 and INT8 counts resampled together); a draw
    where the statistic is undefined (NaN) measures nothing and is left out."""
    arrays = [np.asarray(a, np.float64) for a in per_image]
    if not arrays[0].size:
        return None
    weights = resample_weights(arrays[0].size, resamples, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = statistic(*(weights @ a for a in arrays))
    return percentile_interval(values, level, bounds)


def ratio_interval(
    num, den, level: float = LEVEL, bounds: tuple | None = (0.0, 1.0), resamples: int = RESAMPLES, seed: int = SEED
) -> list[float] | None:
    """Interval of sum(num) / sum(den) over per-image ``num``/``den``; a draw whose denominator is 0 measures
    nothing and is left out. None without images or a denominator."""
    if np.asarray(den, np.float64).sum() <= 0:
        return None
    return paired_interval(
        lambda n, d: np.where(d > 0, n / np.where(d > 0, d, 1), np.nan),
        num,
        den,
        level=level,
        bounds=bounds,
        resamples=resamples,
        seed=seed,
    )


def decide(value: float, interval: list[float] | None, op: str, threshold: float) -> str:
    """ "pass", "fail" or "undecided" of ``value op threshold`` from its interval: pass when the whole interval
    satisfies it, fail when none of it does, undecided when the interval holds the threshold. Without an
    interval the value decides."""
    ok = (lambda v: v >= threshold) if op == ">=" else (lambda v: v <= threshold)
    if interval is None:
        return "pass" if ok(value) else "fail"
    low_ok, high_ok = ok(interval[0]), ok(interval[1])
    if low_ok and high_ok:
        return "pass"
    if not low_ok and not high_ok:
        return "fail"
    return "undecided"


def images_to_decide(n_images: int, value: float, interval: list[float], threshold: float) -> int | None:
    """About how many more images would shrink the interval (as 1/sqrt(n)) until it clears ``threshold`` on the
    side ``value`` lies; None when the value sits on the threshold (no number of images decides it)."""
    half = value - interval[0] if value > threshold else interval[1] - value  # the side toward the threshold
    gap = abs(value - threshold)
    if gap <= 1e-12 or n_images <= 0:
        return None
    return max(1, int(np.ceil(n_images * (half / gap) ** 2)) - n_images)
