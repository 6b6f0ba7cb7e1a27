"""What every head family shares: the float head a family finds in a graph, the family interface,
and the graph walk the families build on.

A family module declares how its head is found by graph structure (never by node names), which nodes stay
float, how its activations are calibrated, how its outputs are decoded into detections, and what they are
scored on. The pipeline, gates, CLI and plugin ask the registry in ``heads/__init__.py``, never a family by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import onnx

from .. import tasks
from ..preprocess import Letterbox
from . import boxes
from ..tasks.base import Detections


@dataclass
class Head:
    """A head found in a graph: its float nodes, and the Convs that feed it (the last quantizable layers)."""

    family: str
    nodes: list[str]
    feeding_convs: list[str]


class HeadFamily:
    """One head family. Subclasses set the class attributes and implement ``find``, ``reads`` and ``decode``."""

    name: str = ""  # registry key, e.g. "dfl-detect"
    task: str = "detect"  # Ultralytics' task (``quantkit/tasks/``): what its predictions carry, how they are scored
    covers: str = ""  # the models it serves, for the one-line refusal
    looked_for: str = ""  # the structure ``find`` looks for, in words
    layout: str = "anchors"  # "anchors": one prediction per anchor, NMS by quantkit; "rows": the graph selected them
    # False where another export's output has the same shapes (an OBB's [1, 5+nc, N] is YOLOX's): then only the
    # metadata's task or the graph (``find``) lets the family decode
    by_shape: bool = True
    # activation calibration of the presets that leave it to the family (calibrate_method "auto"), chosen by the
    # family's fixture (docs/quantization.md)
    calibration: str = "minmax"

    @property
    def scored_on(self) -> tuple[str, ...]:
        """What its predictions are scored on (its task's kinds, the primary first)."""
        return tasks.get(self.task).scored_on

    def find(self, model: onnx.ModelProto) -> Head | None:
        """This family's head in ``model`` (nodes named, see ``model.name_nodes``), or None. Raises ModelError
        (one line: why, and which export to use) where it recognises its structure in a form it cannot serve;
        the registry raises that only when no other family finds a head."""
        raise NotImplementedError

    def with_metadata(self, meta: dict[str, str]) -> HeadFamily:
        """This family set up from a model's metadata (Ultralytics' ``kpt_shape``, ...); most need none."""
        return self

    def reads(self, shapes: Sequence[Sequence[int]], nc: int | None) -> bool:
        """True when outputs of these (static) shapes are this family's layout."""
        raise NotImplementedError

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
        """One image's outputs (batch 1) -> detections in original-image pixels, highest score first."""
        raise NotImplementedError

    def raw_channels(self, output: np.ndarray, nc: int | None) -> np.ndarray:
        """The first output as ``[B, C, N]`` with the 4 box channels first, then the scores (what `compare`'s
        per-channel-group statistics read). Default: a one-to-many box output, either orientation."""
        from .boxes import head_layout

        return output if head_layout(output.shape, nc) == "channels_first" else output.transpose(0, 2, 1)


class AnchorDetect(HeadFamily):
    """A Detect head whose output is one-to-many boxes ``[1, 4+nc, N]`` (YOLOv8/11/v5u, YOLO26's default export):
    read and decoded alike, with class-wise NMS (``boxes.decode``); the families differ in ``find``."""

    def reads(self, shapes: Sequence[Sequence[int]], nc: int | None) -> bool:
        return len(shapes) == 1 and boxes.is_box_layout(shapes[0], nc)

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
        return boxes.decode(outputs[0], lb, conf=conf, iou=iou, max_det=max_det, nc=nc, nms=nms)


def producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """Tensor name -> the node that writes it."""
    return {out: node for node in graph.node for out in node.output}


def final_node(
    graph: onnx.GraphProto, output: str, skip: Sequence[str]
) -> tuple[onnx.NodeProto | None, list[onnx.NodeProto]]:
    """The node behind graph output ``output`` after stepping back over ``skip`` op types, and the skipped nodes."""
    by_output = producers(graph)
    node, skipped = by_output.get(output), []
    while node is not None and node.op_type in skip:
        skipped.append(node)
        node = by_output.get(node.input[0])
    return node, skipped


def walk_back(
    graph: onnx.GraphProto, start: onnx.NodeProto, stops: Callable[[onnx.NodeProto], bool]
) -> tuple[list[onnx.NodeProto], list[str]]:
    """Every node from ``start`` back to the first node on each path for which ``stops`` is true.

    Returns (walked nodes, names of the stopping nodes). Graph inputs and initializers end a path; a
    Shape node ends it too (dynamic exports size anchors from a feature map: only its shape flows).
    """
    by_output = producers(graph)
    constants = {init.name for init in graph.initializer} | {i.name for i in graph.input}
    walked, stopped, seen, stack = [], [], set(), [start]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if stops(node):
            stopped.append(node.name)
            continue
        walked.append(node)
        if node.op_type == "Shape":
            continue
        stack.extend(by_output[name] for name in node.input if name not in constants and name in by_output)
    return walked, stopped


QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger")


def is_quantized_op(op_type: str) -> bool:
    """Q/DQ, the integer kernels, and every QLinear* op (QOperator's QLinearConv, its contrib QLinearSigmoid, ...)."""
    return op_type in QUANTIZED_OPS or op_type.startswith("QLinear")


def head_is_float(model: onnx.ModelProto, head_nodes: list[str]) -> bool:
    """True when every head node survives in ``model`` as a float op and none of its outputs is quantized."""
    by_name = {n.name: n for n in model.graph.node}
    outputs = set()
    for name in head_nodes:
        node = by_name.get(name)
        if node is None or is_quantized_op(node.op_type):
            return False
        outputs.update(node.output)
    return not any(n.op_type == "QuantizeLinear" and n.input[0] in outputs for n in model.graph.node)


# Layout ops an exporter may put between a head's last op and the output ([1, anchors, 4+nc] exports).
TRAILING_OPS = ("Transpose", "Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze")


def is_dfl_conv(node: onnx.NodeProto, by_output: dict[str, onnx.NodeProto]) -> bool:
    """A DFL's fixed 1x1 Conv: it reads a Softmax, directly or through Transpose/Reshape. Part of a head
    (it turns bin probabilities into distances), not a layer of the network that feeds it."""
    if node.op_type != "Conv":
        return False
    src = by_output.get(node.input[0])
    while src is not None and src.op_type in ("Transpose", "Reshape"):
        src = by_output.get(src.input[0])
    return src is not None and src.op_type == "Softmax"


def concat_parts(graph: onnx.GraphProto, final: onnx.NodeProto) -> list[onnx.NodeProto | None]:
    """The producers of ``final``'s inputs, nested Concats on the same axis opened (an unsimplified
    export concatenates (boxes, scores) first, then the extra part)."""
    by_output = producers(graph)
    axis = next((a.i for a in final.attribute if a.name == "axis"), None)
    parts = []
    for name in final.input:
        node = by_output.get(name)
        inner = (
            node is not None
            and node.op_type == "Concat"
            and next((a.i for a in node.attribute if a.name == "axis"), None) == axis
        )
        parts += concat_parts(graph, node) if inner else [node]
    return parts


def detect_with_extra(graph: onnx.GraphProto, output: str) -> tuple[list[onnx.NodeProto], list[str], list] | None:
    """A Detect head behind ``output`` whose Concat carries one part beyond the boxes and class scores:
    (walked nodes incl. trailing layout ops, feeding Convs, the extra part's walked nodes), or None.
    The boxes are the part whose walk meets the DFL, the scores a Sigmoid; the extra part meets neither."""
    final, trailing = final_node(graph, output, TRAILING_OPS)
    if final is None or final.op_type != "Concat":
        return None
    by_output = producers(graph)
    stop = lambda n: n.op_type == "Conv" and not is_dfl_conv(n, by_output)  # noqa: E731
    kinds, extra = [], []
    for part in concat_parts(graph, final):
        if part is None:
            return None
        walked, _ = walk_back(graph, part, stop)
        if any(is_dfl_conv(n, by_output) for n in walked):
            kinds.append("box")
        elif part.op_type == "Sigmoid":
            kinds.append("cls")
        else:
            kinds.append("extra")
            extra = walked
    if sorted(kinds) != ["box", "cls", "extra"]:
        return None
    walked, feeding = walk_back(graph, final, stop)
    return [*trailing, *walked], feeding, extra
