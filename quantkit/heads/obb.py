"""YOLOv8-obb / YOLO11-obb: a Detect head whose output also carries each anchor's rotation angle.

    output0 [1, 4+nc+1, N]  Concat(rotated box decode, class Sigmoid, angle)   the Detect head, kept float

The angle is (Sigmoid - 0.25) * pi, in radians, and the box decode reads it too (distances rotated into
cx, cy), which sets this head apart from a pose head's extra part: structure, not names or metadata. Boxes are
cx, cy, w, h in input pixels; candidates are suppressed by rotated NMS (``tasks/obb.py``) and each detection
carries its four corners in original pixels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx

from ..preprocess import Letterbox
from ..tasks import obb
from ..tasks.base import Detections
from . import boxes
from .base import Head, HeadFamily, detect_with_extra


def _feeds_outside(graph: onnx.GraphProto, part: list[onnx.NodeProto]) -> bool:
    """True when a node outside ``part``, not a Concat, reads one of its outputs (the angle feeding the box decode)."""
    names, outputs = {n.name for n in part}, {o for n in part for o in n.output}
    return any(n.name not in names and n.op_type != "Concat" and set(n.input) & outputs for n in graph.node)


class OrientedDetect(HeadFamily):
    name = "obb"
    task = "obb"
    covers = "YOLOv8-obb and YOLO11-obb ([1, 4+nc+1, N], the angle in radians last)"
    looked_for = (
        "one output fed by Concat(box decode with a DFL, class Sigmoid, angle) whose angle also feeds the box decode"
    )
    layout = "oriented"
    by_shape = False  # [1, 5+nc, N] is also YOLOX's (objectness): the metadata or the graph decides
    # measured on the OBB fixture, 200 val images (docs/measurements.md): minmax loses 0.89 pt rotated mAP50-95
    # [0.49, 1.31], F1 2.84 pt [1.85, 3.93] and 9.4 % of INT8's detections at conf 0.25 are not FP32's; percentile
    # loses 0.37 pt [-0.06, 0.85], F1 0.58 pt [-0.30, 1.46]
    calibration = "percentile"

    def find(self, model: onnx.ModelProto) -> Head | None:
        graph = model.graph
        task = next((p.value for p in model.metadata_props if p.key == "task"), None)
        if len(graph.output) != 1 or task not in (None, "obb"):
            return None
        found = detect_with_extra(graph, graph.output[0].name)
        if found is None:
            return None
        walked, feeding, extra = found
        if "Sigmoid" not in {n.op_type for n in extra} or not _feeds_outside(graph, extra):
            return None
        return Head(family=self.name, nodes=sorted({n.name for n in walked}), feeding_convs=sorted(feeding))

    @staticmethod
    def classes(shape: Sequence, nc: int | None) -> int | None:
        """nc of a static output ``[1, 4+nc+1, N]`` (or ``[1, N, ...]``; without ``nc`` the smaller dim), or None."""
        if len(shape) != 3 or shape[0] != 1 or not all(isinstance(v, (int, np.integer)) for v in shape):
            return None
        dims = (min(shape[1:]),) if nc is None else shape[1:]
        return next((int(c) - 5 for c in dims if int(c) - 5 >= 1 and nc in (None, int(c) - 5)), None)

    def reads(self, shapes: Sequence[Sequence[int]], nc: int | None) -> bool:
        return len(shapes) == 1 and self.classes(shapes[0], nc) is not None

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
        nc = self.classes(outputs[0].shape, nc)
        dets, anchors, preds = boxes.decode_anchors(outputs[0], lb, conf, iou, max_det, nc, nms, extra=1, task=obb.TASK)
        if not len(dets):
            dets.fields["obb"] = np.zeros((0, 4, 2), np.float32)
            return dets
        points = obb.corners(preds[[0, 1, 2, 3, -1]][:, anchors].T)
        points = (points - np.array([lb.left, lb.top])) / lb.scale
        h, w = lb.shape
        dets.boxes = obb.hull(points).clip(0, [w, h, w, h]).astype(np.float32)
        dets.fields["obb"] = points.astype(np.float32)
        return dets

    def raw_channels(self, output: np.ndarray, nc: int | None) -> np.ndarray:
        """The box and class channels, channels first (the angle is judged by the rotated IoU of matched pairs)."""
        nc = self.classes((1, *output.shape[1:]), nc)
        chw = output if output.shape[1] <= output.shape[2] else output.transpose(0, 2, 1)
        return chw[:, : 4 + nc]


FAMILY = OrientedDetect()
