"""YOLO26 Detect, one-to-many export (Ultralytics' default ONNX export): no DFL, output ``[1, 4+nc, N]``.

YOLO26 regresses each box side directly (reg_max 1), so its head has no Softmax and no DFL Conv:

    box convs -> Reshape/Concat -> box decode (Slice, Sub, Add, Div, Mul) -+
                                                                            Concat -> output
    cls convs -> Reshape/Concat -> Sigmoid ---------------------------------+

Same output layout as YOLOv8's, so the same decode with NMS; the same hazard when quantized (the
final Concat puts box pixels and class probabilities on one scale). Found by structure only: the
walk from the final Concat stops at every Conv, the class input is a Sigmoid, and the box input
holds the anchor arithmetic (Sub and Add) without a Softmax or an Exp (a YOLOX-style decode).
"""

from __future__ import annotations


import onnx

from .base import TRAILING_OPS, AnchorDetect, Head, final_node, is_dfl_conv, producers, walk_back

# Ops that mark another head: a DFL (Softmax), a YOLOX-style exp(wh) decode, a selection or NMS behind the Concat.
_FOREIGN = {"Softmax", "Exp", "TopK", "NonMaxSuppression"}


class Detect26(AnchorDetect):
    name = "detect26"
    covers = "YOLO26 Detect one-to-many ([1, 4+nc, N], no DFL)"
    looked_for = (
        "an output fed by Concat(box decode, Sigmoid class scores) with the anchor arithmetic (Sub, Add) "
        "straight after the box Convs: no Softmax/DFL"
    )
    # YOLO26n fixture, 200 val images: MinMax ranges lose more than 1 FP32 detection in 10 (parity recall 0.892,
    # agreement mAP 0.881), the 99.999th percentile keeps 0.916 (0.910); benchmarks/calibration_methods.py
    calibration = "percentile"

    def find(self, model: onnx.ModelProto) -> Head | None:
        """Step back from the output over layout ops to a two-input Concat whose second input is a Sigmoid;
        walk back to the Convs (all of them end the walk: there is no DFL Conv to pass)."""
        graph = model.graph
        if len(graph.output) != 1:
            return None
        final, trailing = final_node(graph, graph.output[0].name, TRAILING_OPS)
        if final is None or final.op_type != "Concat" or len(final.input) != 2:
            return None
        by_output = producers(graph)
        scores = by_output.get(final.input[1])
        if scores is None or scores.op_type != "Sigmoid":
            return None
        walked, feeding = walk_back(graph, final, lambda n: n.op_type == "Conv")
        box_ops = (
            {n.op_type for n in walk_back(graph, by_output[final.input[0]], lambda n: n.op_type == "Conv")[0]}
            if final.input[0] in by_output
            else set()
        )
        if not feeding or {"Sub", "Add"} - box_ops or _FOREIGN & {n.op_type for n in walked}:
            return None
        if any(is_dfl_conv(n, by_output) for n in graph.node if n.name in feeding):
            return None  # a DFL Conv ends this walk: that is a YOLOv8 head, dfl_detect's
        nodes = [n.name for n in trailing] + [n.name for n in walked]
        return Head(family=self.name, nodes=sorted(nodes), feeding_convs=sorted(feeding))


FAMILY = Detect26()
