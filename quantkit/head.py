"""Find the YOLOv8 detection head by graph structure, so the quantizer can keep it in float.

Node names differ between exporters, pruning tools and re-exports, so nothing here reads them.
The head is what lies between the output and the last Conv of each box / class branch:

    box convs -> Reshape/Concat -> DFL (Softmax, 1x1 Conv) -> box decode (Slice, Sub, Add, Div, Mul) -+
                                                                                                     Concat -> output
    cls convs -> Reshape/Concat -> Sigmoid -------------------------------------------------------------+

Quantized, that final Concat puts box pixels (0..640) and class probabilities (0..1) on one
scale: scores leave [0, 1] and detections vanish, while a raw-tensor cosine still reads ~0.997.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx


@dataclass
class Head:
    """The head's float nodes, and the Convs that feed it (the last quantizable layers)."""

    nodes: list[str]
    dfl_conv: str
    feeding_convs: list[str]


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _is_dfl_conv(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> bool:
    """The DFL's 1x1 Conv reads a Softmax, directly or through Transpose/Reshape."""
    if node.op_type != "Conv":
        return False
    src = producers.get(node.input[0])
    while src is not None and src.op_type in ("Transpose", "Reshape"):
        src = producers.get(src.input[0])
    return src is not None and src.op_type == "Softmax"


# Layout ops an exporter may put between the head's Concat and the output ([1, anchors, 4+nc] exports).
TRAILING_OPS = ("Transpose", "Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze")
LOOKED_FOR = ("an output fed by Concat(box decode, class scores) — possibly through "
              f"{'/'.join(TRAILING_OPS)} — with a DFL (Softmax, then a 1x1 Conv) on the box branch and a "
              "Sigmoid on the class branch (YOLOv8, YOLO11 and YOLOv5u Detect heads)")


def find_head(model: onnx.ModelProto) -> Head | None:
    """The YOLOv8 head of ``model``, or None when the graph does not have one.

    From the output, step back over layout ops (``TRAILING_OPS``) to the head's Concat, then walk
    back through every node until a Conv that is not the DFL's: those Convs end the backbone/neck
    and stay quantizable; everything walked is the head. The walk must have met a Sigmoid (class
    branch) and the DFL (box branch).
    """
    graph = model.graph
    producers = _producers(graph)
    if len(graph.output) != 1:
        return None
    final = producers.get(graph.output[0].name)
    trailing = []
    while final is not None and final.op_type in TRAILING_OPS:
        trailing.append(final)
        final = producers.get(final.input[0])
    if final is None or final.op_type != "Concat" or len(final.input) != 2:
        return None

    initializers = {init.name for init in graph.initializer}
    graph_inputs = {i.name for i in graph.input}
    head, feeding, dfl = [t.name for t in trailing], [], None
    seen: set[int] = set()
    stack = [final]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type == "Conv" and not _is_dfl_conv(node, producers):
            feeding.append(node.name)
            continue
        if node.op_type == "Conv":
            dfl = node.name
        head.append(node.name)
        if node.op_type == "Shape":  # dynamic exports size anchors from a feature map: only its shape flows
            continue
        for name in node.input:
            if name in initializers or name in graph_inputs or name not in producers:
                continue
            stack.append(producers[name])

    ops = {n.op_type for n in graph.node if n.name in set(head)}  # nodes are named by model.name_nodes
    if dfl is None or "Sigmoid" not in ops or not feeding:
        return None
    return Head(nodes=sorted(head), dfl_conv=dfl, feeding_convs=sorted(feeding))


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
