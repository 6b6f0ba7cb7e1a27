"""Detections the graph has already selected: a fixed-size output ``[1, K, 6]``, one row per detection,
x1, y1, x2, y2 (model-input pixels), score, class index.

End-to-end heads (TopK over one-to-one scores) and exports with NMS inside the graph both end in
this layout; NMS exports pad the unused rows with zeros. Decoding keeps the rows scoring at least
``conf`` (and above 0, which drops padding), highest score first, undoes the letterbox, and runs
no NMS: selecting was the graph's job. Oriented-box rows ``[1, K, 7]`` (the angle last) are ``obb.py``'s, read
with the same ``kept`` and ``class_index``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..preprocess import Letterbox, boxes_to_image
from .base import HeadFamily
from ..tasks.base import Detections

ROW = 6  # x1, y1, x2, y2, score, class


def refuse_extra_channels(graph, what: str, fix: str) -> None:
    """ModelError when ``graph`` ends in more than ``[1, K, 6]`` rows: extra channels per row (mask
    coefficients, keypoints) or more outputs (a mask prototype), which a rows family does not decode."""
    dims = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in graph.output[0].type.tensor_type.shape.dim
    ]
    if len(graph.output) > 1 or not dims or (isinstance(dims[-1], int) and dims[-1] != ROW):
        more = f" and {len(graph.output) - 1} more output(s)" if len(graph.output) > 1 else ""
        raise ModelError(
            f"{what} with output {dims}{more}: its rows carry masks or keypoints, and quantkit reads {what} "
            f"for Detect only ([1, K, 6]); {fix}"
        )


def is_rows_layout(shape: Sequence, width: int = ROW) -> bool:
    """True for a static ``[1, K, width]`` output (K >= 1)."""
    shape = tuple(shape)
    return (
        len(shape) == 3
        and all(isinstance(d, (int, np.integer)) for d in shape)
        and shape[0] == 1
        and shape[1] >= 1
        and shape[2] == width
    )


def decode_rows(output: np.ndarray, lb: Letterbox, conf: float, max_det: int, nc: int | None = None) -> Detections:
    """Rows of ``output`` [1, K, 6] scoring >= ``conf`` and > 0, at most ``max_det``, boxes in original-image pixels
    (``kept``), classes as ``class_index`` reads them."""
    output = np.asarray(output)
    if not is_rows_layout(output.shape):
        raise ModelError(
            f"model output {list(output.shape)} is not [1, K, 6] rows (x1, y1, x2, y2, score, class): "
            "export the detector end-to-end or with NMS for Detect only"
        )
    rows = kept(output, conf, max_det)
    return Detections(boxes_to_image(rows[:, :4], lb), rows[:, 4].copy(), class_index(rows[:, 5], nc))


def kept(output: np.ndarray, conf: float, max_det: int) -> np.ndarray:
    """The rows of ``output`` [1, K, W] (the score in column 4) that are finite and score at least ``conf`` and
    above 0, highest score first, at most ``max_det``: [k, W] float32."""
    rows = np.asarray(output)[0].astype(np.float32)
    scores = rows[:, 4]
    rows = rows[np.isfinite(rows).all(axis=1) & (scores >= conf) & (scores > 0)]
    return rows[np.argsort(-rows[:, 4], kind="stable")][:max_det]


def class_index(column: np.ndarray, nc: int | None) -> np.ndarray:
    """A class column as indices: rounded to the nearest (an INT8 graph may carry it off the grid), clipped to the
    model's classes, so a damaged class column costs accuracy, not a crash."""
    return np.rint(column).clip(0, None if nc is None else nc - 1).astype(np.int64)


def raw_rows(output: np.ndarray) -> np.ndarray:
    """``[B, K, 6]`` rows as ``[B, 5, K]``: the box channels, then the score (the class index is no score)."""
    return np.asarray(output)[:, :, :5].transpose(0, 2, 1)


class RowsFamily(HeadFamily):
    """A head whose graph selects its detections itself (end-to-end TopK, NMS inside): rows ``[1, K, 6]`` read and
    decoded alike (``decode_rows``: the rows scoring at least ``conf``; ``iou`` and ``nms`` do not apply); the
    families differ in ``find``."""

    layout = "rows"

    def reads(self, shapes: Sequence[Sequence[int]], nc: int | None) -> bool:
        return len(shapes) == 1 and is_rows_layout(shapes[0])

    def decode(
        self,
        outputs: Sequence[np.ndarray],
        lb: Letterbox,
        conf: float,
        iou: float,
        max_det: int,
        nc: int | None,
        nms: str,
    ) -> Detections:
        return decode_rows(outputs[0], lb, conf, max_det, nc)

    def raw_channels(self, output: np.ndarray, nc: int | None) -> np.ndarray:
        return raw_rows(output)
