"""YOLOv8 / YOLO11 / YOLOv5u Detect: a DFL box branch and a Sigmoid class branch, output ``[1, 4+nc, N]``.

The head is what lies between the output and the last Conv of each box / class branch:

    box convs -> Reshape/Concat -> DFL (Softmax, 1x1 Conv) -> box decode (Slice, Sub, Add, Div, Mul) -+
                                                                                                     Concat -> output
    cls convs -> Reshape/Concat -> Sigmoid -------------------------------------------------------------+

Quantized, that final Concat puts box pixels (0..640) and class probabilities (0..1) on one
scale: scores leave [0, 1] and detections vanish, while a raw-tensor cosine still reads ~0.997.
Node names differ between exporters, pruning tools and re-exports, so nothing here reads them.
"""

from __future__ import annotations


import onnx

from .base import TRAILING_OPS, AnchorDetect, Head, final_node, is_dfl_conv, producers, walk_back


class DFLDetect(AnchorDetect):
    name = "dfl-detect"
    covers = "YOLOv8, YOLO11 and YOLOv5u Detect ([1, 4+nc, N], DFL box branch)"
    looked_for = (
        f"an output fed by Concat(box decode, class scores) — possibly through {'/'.join(TRAILING_OPS)} — "
        "with a DFL (Softmax, then a 1x1 Conv) on the box branch and a Sigmoid on the class branch"
    )

    def find(self, model: onnx.ModelProto) -> Head | None:
        """From the output, step back over layout ops to the head's Concat, then walk back through every
        node until a Conv that is not the DFL's: those Convs end the backbone/neck and stay quantizable;
        everything walked is the head. The walk must have met a Sigmoid (class branch) and the DFL (box branch)."""
        graph = model.graph
        if len(graph.output) != 1:
            return None
        final, trailing = final_node(graph, graph.output[0].name, TRAILING_OPS)
        if final is None or final.op_type != "Concat" or len(final.input) != 2:
            return None
        by_output = producers(graph)
        walked, feeding = walk_back(graph, final, lambda n: n.op_type == "Conv" and not is_dfl_conv(n, by_output))
        ops = {n.op_type for n in walked}
        if not any(is_dfl_conv(n, by_output) for n in walked) or "Sigmoid" not in ops or not feeding:
            return None
        nodes = [n.name for n in trailing] + [n.name for n in walked]
        return Head(family=self.name, nodes=sorted(nodes), feeding_convs=sorted(feeding))


FAMILY = DFLDetect()
