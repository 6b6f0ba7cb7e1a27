"""End-to-end Detect (YOLO26 ``nms=False``, YOLOv10): the NMS-free one-to-one head, output ``[1, K, 6]``.

Ultralytics builds it (``Detect.postprocess``) behind the usual decode: boxes as x1, y1, x2, y2 and
Sigmoid class scores are concatenated, transposed to ``[1, N, 4+nc]`` and split; the best class score
per anchor goes through TopK (K = max_det), GatherElements picks those anchors' class scores, a
second TopK over the flattened ``[K*nc]`` scores picks score and class (Mod and Div of the flat
index), GatherElements picks their boxes, and a final Concat writes the rows:

    box convs -> box decode (DFL on YOLOv10) -+                                   GatherElements(boxes) -+
                                              Concat -> Transpose -> Split -> TopK ...                  Concat -> output
    cls convs -> Sigmoid ---------------------+                                  TopK score, class ------+

Everything from the head's Convs to the output stays float: the selection compares scores, and an
INT8 final Concat puts box pixels, scores and class indices on one scale. There is one box per
object already, so decoding keeps the rows above the score threshold and runs no NMS (``rows.py``).
"""

from __future__ import annotations


import onnx

from . import rows
from .base import TRAILING_OPS, Head, final_node, is_dfl_conv, producers, walk_back

GATHERS = {"GatherElements", "Gather", "GatherND"}


class EndToEnd(rows.RowsFamily):
    name = "end2end"
    covers = "YOLO26 / YOLOv10 end-to-end Detect ([1, K, 6]: x1, y1, x2, y2, score, class; TopK in the graph)"
    looked_for = (
        "an output fed by a Concat of rows behind TopK and GatherElements/Gather over Sigmoid class scores, "
        "with no NonMaxSuppression"
    )
    # YOLO26n end-to-end fixture, 200 val images: percentile ranges keep more FP32 detections than MinMax (parity
    # recall 0.875 vs 0.828, agreement mAP 0.938 vs 0.915); neither reaches the 0.90 gate (fixtures/models/README.md)
    calibration = "percentile"

    def find(self, model: onnx.ModelProto) -> Head | None:
        """Walk back from the output's Concat to the head's Convs, through a DFL Conv where there is one
        (YOLOv10); the walk must hold TopK, a Gather and a Sigmoid, and no NonMaxSuppression."""
        graph = model.graph
        if not graph.output:
            return None
        final, trailing = final_node(graph, graph.output[0].name, TRAILING_OPS)
        if final is None or final.op_type != "Concat":
            return None
        by_output = producers(graph)
        walked, feeding = walk_back(graph, final, lambda n: n.op_type == "Conv" and not is_dfl_conv(n, by_output))
        ops = {n.op_type for n in walked}
        if not feeding or "TopK" not in ops or "Sigmoid" not in ops or not ops & GATHERS or "NonMaxSuppression" in ops:
            return None
        rows.refuse_extra_channels(
            graph,
            "an end-to-end head",
            "export this model one-to-many (Ultralytics' default: leave nms unset) and quantkit keeps its head float",
        )
        nodes = [n.name for n in trailing] + [n.name for n in walked]
        return Head(family=self.name, nodes=sorted(nodes), feeding_convs=sorted(feeding))


FAMILY = EndToEnd()
