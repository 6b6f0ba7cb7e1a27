"""YOLOv8-cls / YOLO11-cls: class probabilities ``[1, nc]``.

    last Conv -> GlobalAveragePool -> Flatten -> Gemm (Linear) -> Softmax -> output0 [1, nc]

Quantized onto one 8-bit scale, probabilities that sum to 1 keep few distinct steps, so the Softmax and what
follows it stay float; the Linear before it is quantized like any Gemm. The decode ranks every class by its
probability (``tasks/classify.py`` scores the ranking).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx

from ..preprocess import Letterbox
from ..tasks.base import Detections
from .base import TRAILING_OPS, Head, HeadFamily, final_node, producers

LINEAR_OPS = ("Gemm", "MatMul", "Add")  # the Linear (MatMul + Add where an exporter splits it)
POOL_OPS = ("GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Squeeze")


class Classify(HeadFamily):
    name = "classify"
    task = "classify"
    covers = "YOLOv8-cls and YOLO11-cls ([1, nc] class probabilities)"
    looked_for = "one rank-2 output fed by a Softmax after a Linear (Gemm) over a global average pool"
    layout = "probs"

    def find(self, model: onnx.ModelProto) -> Head | None:
        graph = model.graph
        if len(graph.output) != 1:
            return None
        final, trailing = final_node(graph, graph.output[0].name, TRAILING_OPS)
        if final is None or final.op_type != "Softmax":
            return None
        by_output = producers(graph)
        node, seen = by_output.get(final.input[0]), []
        while node is not None and node.op_type in LINEAR_OPS:
            seen.append(node)
            node = by_output.get(node.input[0])
        if not seen or node is None or node.op_type not in POOL_OPS:
            return None
        linear = next(n for n in reversed(seen) if n.op_type in ("Gemm", "MatMul"))
        return Head(
            family=self.name, nodes=sorted([final.name, *(n.name for n in trailing)]), feeding_convs=[linear.name]
        )

    def reads(self, shapes: Sequence[Sequence[int]], nc: int | None) -> bool:
        return (
            len(shapes) == 1
            and len(shapes[0]) == 2
            and shapes[0][0] == 1
            and isinstance(shapes[0][1], (int, np.integer))
            and (nc is None or shapes[0][1] == nc)
        )

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
        """Every class, most probable first (a ranking: ``conf``, ``iou`` and NMS do not apply), each box the image."""
        probs = np.asarray(outputs[0], np.float32).reshape(-1)
        order = np.argsort(-probs, kind="stable")
        h, w = lb.shape
        whole = np.tile(np.array([0, 0, w, h], np.float32), (order.size, 1))
        return Detections(whole, probs[order], order.astype(np.int64))

    def raw_channels(self, output: np.ndarray, nc: int | None) -> np.ndarray:
        """The probabilities as ``[1, nc, 1]``."""
        return output.reshape(output.shape[0], -1, 1)


FAMILY = Classify()
