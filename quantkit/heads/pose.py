"""YOLOv8-pose / YOLO11-pose: a Detect head whose output also carries K keypoints per anchor.

    output0 [1, 4+nc+K*d, N]  Concat(box decode, class Sigmoid, keypoint decode)   kept float

The keypoint part is decoded in the graph, (raw * 2 + anchor - 0.5) * stride for x and y and a
Sigmoid for the visibility (d = 3), so its values are input pixels beside 0..1 scores: quantized onto
one scale with them, like the box pixels and the class scores of a plain Detect head, the scores
collapse. The walk from the output back to the last Conv of each branch is the float head.

K and d come from Ultralytics' ``kpt_shape`` metadata; without it, from the class count (names):
the channels past 4+nc are K x 3.
"""

from __future__ import annotations

import ast
from typing import Sequence

import numpy as np
import onnx

from ..preprocess import Letterbox
from . import boxes
from ..tasks.base import Detections
from .base import Head, HeadFamily, detect_with_extra


class Pose(HeadFamily):
    name = "pose"
    task = "pose"
    covers = "YOLOv8-pose and YOLO11-pose ([1, 4+nc+K*3, N], K keypoints from the kpt_shape metadata)"
    looked_for = "one output fed by Concat(box decode with a DFL, class Sigmoid, keypoint decode)"

    def __init__(self, kpt_shape: tuple[int, int] | None = None):
        self.kpt_shape = kpt_shape

    def with_metadata(self, meta: dict[str, str]) -> Pose:
        """The family with Ultralytics' ``kpt_shape`` ('[17, 3]'); unreadable or absent: K from the class count."""
        try:
            k, d = (int(v) for v in ast.literal_eval(meta.get("kpt_shape", "")))
        except (ValueError, SyntaxError, TypeError):
            return self
        return Pose((k, d)) if k > 0 and d in (2, 3) else self

    def find(self, model: onnx.ModelProto) -> Head | None:
        graph = model.graph
        task = next((p.value for p in model.metadata_props if p.key == "task"), None)
        if len(graph.output) != 1 or task not in (None, "pose"):
            return None
        found = detect_with_extra(graph, graph.output[0].name)
        if found is None:
            return None
        walked, feeding, extra = found
        if not {"Mul", "Add"} <= {n.op_type for n in extra}:  # keypoints are decoded in the graph (anchor, stride)
            return None
        return Head(family=self.name, nodes=sorted({n.name for n in walked}), feeding_convs=sorted(feeding))

    def layout(self, shape: Sequence, nc: int | None) -> tuple[int, int, int] | None:
        """(nc, K, d) of a static output ``[1, 4+nc+K*d, N]`` (or ``[1, N, ...]``: the channels are the smaller
        dim, anchors outnumber them), or None."""
        if len(shape) != 3 or shape[0] != 1 or not all(isinstance(v, (int, np.integer)) for v in shape):
            return None
        for channels in (min(int(shape[1]), int(shape[2])),):
            if self.kpt_shape:
                k, d = self.kpt_shape
                classes = channels - 4 - k * d
                if classes >= 1 and (nc is None or classes == nc):
                    return classes, k, d
            elif nc is not None and (extra := channels - 4 - nc) >= 3 and extra % 3 == 0:
                return nc, extra // 3, 3
        return None

    def reads(self, shapes: Sequence[Sequence[int]], nc: int | None) -> bool:
        return len(shapes) == 1 and self.layout(shapes[0], nc) is not None

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
        nc, k, d = self.layout(outputs[0].shape, nc)
        dets, anchors, preds = boxes.decode_anchors(outputs[0], lb, conf, iou, max_det, nc, nms, extra=k * d)
        dets.fields["keypoints"] = keypoints_to_image(preds[4 + nc :, anchors].T.reshape(-1, k, d), lb)
        return dets

    def raw_channels(self, output: np.ndarray, nc: int | None) -> np.ndarray:
        """The box and class channels, channels first (keypoints are judged by their distance)."""
        nc, _, _ = self.layout((1, *output.shape[1:]), nc)
        chw = output if output.shape[1] <= output.shape[2] else output.transpose(0, 2, 1)
        return chw[:, : 4 + nc]


def keypoints_to_image(kpts: np.ndarray, lb: Letterbox) -> np.ndarray:
    """[K, P, d] keypoints in input pixels -> [K, P, 3] in original pixels (clipped to the image, as
    Ultralytics clips them), with the visibility score (1 where the head predicts none, d = 2)."""
    out = np.ones((*kpts.shape[:2], 3), np.float32)
    out[..., : kpts.shape[2]] = kpts
    out[..., 0] = ((out[..., 0] - lb.left) / lb.scale).clip(0, lb.shape[1])
    out[..., 1] = ((out[..., 1] - lb.top) / lb.scale).clip(0, lb.shape[0])
    return out


FAMILY = Pose()
