"""Oriented boxes (Ultralytics' OBB task): YOLOv8 / YOLO11 / YOLO26-obb, one-to-many and end-to-end.

    obb          output0 [1, 4+nc+1, N]  Concat(rotated box decode, class Sigmoid, angle)     the head, kept float
    obb-end2end  output0 [1, K, 7]       rows cx, cy, w, h, score, class, angle (TopK over that head's output)

The angle is in radians: (Sigmoid - 0.25) * pi on YOLOv8/11, the angle Convs' raw output on YOLO26. The box
decode reads it (the distances rotated into cx, cy by its Cos and Sin), which sets this head apart from a pose
head's extra part: structure, not names or metadata. Its box branch has a DFL on YOLOv8/11 and none on YOLO26
(reg_max 1: the anchor arithmetic, Sub and Add, straight after the box Convs). Boxes are cx, cy, w, h in input
pixels; one-to-many candidates are suppressed by rotated NMS (``tasks/obb.py``), end-to-end rows are read above
the score threshold with no NMS (one box per object already, as ``rows.py``); each detection carries its four
corners in original pixels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx

from ..errors import ModelError
from ..preprocess import Letterbox
from ..tasks import obb
from ..tasks.base import Detections
from . import boxes, rows
from .base import TRAILING_OPS, Head, HeadFamily, concat_parts, final_node, is_dfl_conv, producers, walk_back

ROW = 7  # an end-to-end row: cx, cy, w, h, score, class, angle


def _to_conv(graph: onnx.GraphProto, start: onnx.NodeProto) -> tuple[list[onnx.NodeProto], list[str]]:
    """``walk_back`` from ``start`` to the head's Convs, through a DFL Conv where there is one."""
    by_output = producers(graph)
    return walk_back(graph, start, lambda n: n.op_type == "Conv" and not is_dfl_conv(n, by_output))


def _outside(walk: list[onnx.NodeProto], part: list[onnx.NodeProto]) -> tuple[list[onnx.NodeProto], set[str]]:
    """The nodes of ``walk`` that are not ``part``'s (told by their outputs: names may be unset), and ``part``'s
    outputs."""
    outputs = {o for n in part for o in n.output}
    return [n for n in walk if not set(n.output) & outputs], outputs


def oriented(graph: onnx.GraphProto, final: onnx.NodeProto | None) -> tuple[list[onnx.NodeProto], list[str]] | None:
    """(walked nodes, feeding Convs) of the OBB head whose Concat is ``final``, or None: three parts (nested
    Concats opened), one a Sigmoid (the class scores), one the angle, which the third, the box decode, reads; the
    box decode either has a DFL or the anchor arithmetic (Sub, Add) with no Softmax or Exp."""
    if final is None or final.op_type != "Concat":
        return None
    parts = concat_parts(graph, final)
    if len(parts) != 3 or None in parts or [p.op_type for p in parts].count("Sigmoid") != 1:
        return None
    by_output = producers(graph)
    first, second = (_to_conv(graph, p) for p in parts if p.op_type != "Sigmoid")
    for (box, _), (angle, angle_convs) in ((first, second), (second, first)):
        decode, angle_outputs = _outside(box, angle)
        if not angle_convs or not any(set(n.input) & angle_outputs for n in decode):
            continue  # the box decode must read the angle
        ops = {n.op_type for n in decode}
        dfl = any(is_dfl_conv(n, by_output) for n in box)
        if dfl or ({"Sub", "Add"} <= ops and not {"Softmax", "Exp"} & ops):
            return _to_conv(graph, final)
    return None


def _with_corners(dets: Detections, xywhr: np.ndarray, lb: Letterbox) -> Detections:
    """``dets`` with the corners of ``xywhr`` ([K, 5] input pixels, radians) in original pixels (``fields["obb"]``)
    and their axis-aligned hull, clipped to the image, as the boxes."""
    points = (obb.corners(xywhr) - np.array([lb.left, lb.top])) / lb.scale
    h, w = lb.shape
    dets.boxes = obb.hull(points).clip(0, [w, h, w, h]).astype(np.float32)
    dets.fields["obb"] = points.astype(np.float32)
    return dets


def _task(model: onnx.ModelProto) -> str | None:
    return next((p.value for p in model.metadata_props if p.key == "task"), None)


class OrientedDetect(HeadFamily):
    name = "obb"
    task = "obb"
    covers = "YOLOv8-obb, YOLO11-obb and YOLO26-obb one-to-many ([1, 4+nc+1, N], the angle in radians last)"
    looked_for = (
        "one output fed by Concat(box decode, class Sigmoid, angle) whose angle also feeds the box decode "
        "(with a DFL, or YOLO26's anchor arithmetic)"
    )
    layout = "oriented"
    by_shape = False  # [1, 5+nc, N] is also YOLOX's (objectness): the metadata or the graph decides
    # measured on the OBB fixture, 200 val images (docs/measurements.md): minmax loses 0.89 pt rotated mAP50-95
    # [0.49, 1.31], F1 2.84 pt [1.85, 3.93] and 9.4 % of INT8's detections at conf 0.25 are not FP32's; percentile
    # loses 0.37 pt [-0.06, 0.85], F1 0.58 pt [-0.30, 1.46] (YOLO26-obb: not measured, percentile as YOLO26's)
    calibration = "percentile"

    def find(self, model: onnx.ModelProto) -> Head | None:
        graph = model.graph
        if len(graph.output) != 1 or _task(model) not in (None, "obb"):
            return None
        final, trailing = final_node(graph, graph.output[0].name, TRAILING_OPS)
        found = oriented(graph, final)
        if found is None:
            return None
        walked, feeding = found
        return Head(
            family=self.name, nodes=sorted({n.name for n in [*trailing, *walked]}), feeding_convs=sorted(feeding)
        )

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
        return _with_corners(dets, preds[[0, 1, 2, 3, -1]][:, anchors].T, lb)

    def raw_channels(self, output: np.ndarray, nc: int | None) -> np.ndarray:
        """The box and class channels, channels first (the angle is judged by the rotated IoU of matched pairs)."""
        nc = self.classes((1, *output.shape[1:]), nc)
        chw = output if output.shape[1] <= output.shape[2] else output.transpose(0, 2, 1)
        return chw[:, : 4 + nc]


class OrientedRows(HeadFamily):
    name = "obb-end2end"
    task = "obb"
    covers = "YOLO26-obb end-to-end ([1, K, 7]: cx, cy, w, h, score, class, angle; TopK in the graph)"
    looked_for = "an output fed by a Concat of rows behind TopK and GatherElements over an OBB head's Concat"
    layout = "rows"
    by_shape = False  # [1, K, 7] is also K anchors of an OBB with 2 classes or a Detect with 3
    calibration = "percentile"  # not measured: YOLO26's end-to-end Detect and the OBB fixture's choice

    def find(self, model: onnx.ModelProto) -> Head | None:
        """Walk back from the output's Concat to the head's Convs: the walk holds TopK, GatherElements and an OBB
        head (``oriented``). A graph whose OBB head is behind anything else (rotated NMS inside the graph,
        Ultralytics' ``nms=True``) is refused in one line."""
        graph = model.graph
        if (
            not graph.output
            or _task(model) not in (None, "obb")
            or not {"Cos", "Sin"} <= {n.op_type for n in graph.node}
        ):
            return None
        final, trailing = final_node(graph, graph.output[0].name, TRAILING_OPS)
        if oriented(graph, final) is not None:
            return None  # one-to-many: the obb family's
        inner = next((n for n in graph.node if n.op_type == "Concat" and oriented(graph, n)), None)
        if inner is None:
            return None
        walked, feeding = _to_conv(graph, final) if final is not None and final.op_type == "Concat" else ([], [])
        ops, outputs = {n.op_type for n in walked}, {o for n in walked for o in n.output}
        dims = [d.dim_value or d.dim_param or "?" for d in graph.output[0].type.tensor_type.shape.dim]
        if (
            len(graph.output) > 1
            or dims[-1:] != [ROW]
            or {"TopK", "GatherElements"} - ops
            or inner.output[0] not in outputs
        ):
            more = f" and {len(graph.output) - 1} more output(s)" if len(graph.output) > 1 else ""
            raise ModelError(
                f"an oriented-box head behind post-processing quantkit does not read (output {dims}{more}, not the "
                "end-to-end head's TopK rows [1, K, 7]; rotated NMS inside the graph is Ultralytics' nms=True): "
                "export it one-to-many (leave nms unset) or end-to-end (nms=False)"
            )
        nodes = [n.name for n in trailing] + [n.name for n in walked]
        return Head(family=self.name, nodes=sorted(nodes), feeding_convs=sorted(feeding))

    def reads(self, shapes: Sequence[Sequence[int]], nc: int | None) -> bool:
        return len(shapes) == 1 and rows.is_rows_layout(shapes[0], ROW)

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
        """The rows scoring at least ``conf`` (``rows.kept``; ``iou`` and ``nms`` do not apply), with their corners."""
        kept = rows.kept(outputs[0], conf, max_det)
        dets = Detections(np.zeros((len(kept), 4), np.float32), kept[:, 4].copy(), rows.class_index(kept[:, 5], nc))
        return _with_corners(dets, kept[:, [0, 1, 2, 3, 6]], lb)

    def raw_channels(self, output: np.ndarray, nc: int | None) -> np.ndarray:
        return rows.raw_rows(output)


FAMILY = OrientedDetect()
END2END = OrientedRows()
