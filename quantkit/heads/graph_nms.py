"""Detect exported with NMS inside the graph (Ultralytics ``nms=True``; other exporters alike): a
NonMaxSuppression node between the head and a fixed-size output ``[1, max_det, 6]``.

Ultralytics' ``NMSModel`` wraps the one-to-many head: the ``[1, 4+nc, N]`` decode is transposed and
split, the best class and its score are taken per anchor (ReduceMax, ArgMax), anchors above the
export's ``conf`` are kept (Greater, NonZero, GatherND), boxes are offset by class and fed to
NonMaxSuppression, the kept rows gathered, concatenated and zero-padded to ``max_det`` (Pad, Reshape).

The backbone and neck are quantized; everything from the head's Convs to the output stays float
(the decode, the score filter, NMS and the padding), so only the head's input is INT8. The output
is read as rows (``rows.py``): the score threshold the export baked in (0.25 by default) applies
before quantkit sees a detection, so mAP here is measured above it, for FP32 and INT8 alike.
Segmentation and pose exports carry mask coefficients or keypoints in those rows and a second
output: they are refused with the export to use instead.
"""

from __future__ import annotations


import onnx

from . import rows
from .base import Head, is_dfl_conv, producers, walk_back


class GraphNMS(rows.RowsFamily):
    name = "graph-nms"
    covers = "Detect exported with NMS inside the graph ([1, max_det, 6] behind NonMaxSuppression, e.g. nms=True)"
    looked_for = "an output behind a NonMaxSuppression node that reads Sigmoid class scores"

    def find(self, model: onnx.ModelProto) -> Head | None:
        """Walk back from the first output to the head's Convs (through a DFL Conv where there is one); the
        walk must hold NonMaxSuppression and a Sigmoid. Everything walked stays float."""
        graph = model.graph
        by_output = producers(graph)
        last = by_output.get(graph.output[0].name) if graph.output else None
        if last is None:
            return None
        walked, feeding = walk_back(graph, last, lambda n: n.op_type == "Conv" and not is_dfl_conv(n, by_output))
        ops = {n.op_type for n in walked}
        if not feeding or "NonMaxSuppression" not in ops or "Sigmoid" not in ops:
            return None
        rows.refuse_extra_channels(
            graph,
            "NMS inside the graph",
            "export this model without nms=True and quantkit keeps its head float and runs NMS itself",
        )
        return Head(family=self.name, nodes=sorted(n.name for n in walked), feeding_convs=sorted(feeding))


FAMILY = GraphNMS()
