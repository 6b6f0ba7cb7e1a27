"""YOLOv8-seg / YOLO11-seg: a Detect head whose output also carries ``nm`` mask coefficients per
anchor, and a second output of ``nm`` prototype masks at a quarter of the input size.

    output0 [1, 4+nc+nm, N]  Concat(box decode, class Sigmoid, coefficients)   the Detect head, kept float
    output1 [1, nm, H/4, W/4]  Proto: Conv, ConvTranspose (x2), Conv, Conv, each with SiLU

The coefficients are raw Conv outputs concatenated into output0 beside box pixels and class
probabilities, so the head's float region is the Detect head's (the walk from output0 back to the
last Conv of each branch). Which part of the prototype branch stays float is ``PROTOS_FLOAT``,
decided by measurement (docs/measurements.md, ``benchmarks/tasks.py --protos``).

A mask is decoded as Ultralytics decodes it: sigmoid(coefficients . protos) > 0.5 (the logit > 0),
cropped to its box, upsampled bilinearly and mapped back through the letterbox. Here the logits are
sampled once, straight from prototype resolution at each original-image pixel inside the box (one
affine map: letterbox and the 4x upsampling together), and stored as COCO RLE.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import onnx
from pycocotools import mask as mask_utils

from ..preprocess import Letterbox
from . import boxes
from ..tasks.base import Detections
from .base import Head, HeadFamily, detect_with_extra, producers, walk_back

PROTO_STRIDE = 4  # input pixels per prototype pixel (Ultralytics' Proto: P3 upsampled 2x)
# Which part of the prototype branch stays float: "none" (the prototype output quantized like any
# activation), "activation" (the SiLU after its last Conv) or "branch" (every Conv of it too). On the
# segmentation fixture the three read the same mask mAP and mask IoU, and "none" is the fastest
# (docs/measurements.md, benchmarks/tasks.py --protos).
PROTOS_FLOAT = "none"
PROTOS_CHOICES = ("none", "activation", "branch")


def _shape(value_info: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def proto_nodes(graph: onnx.GraphProto, output: str, policy: str) -> tuple[list[str], list[str]]:
    """The prototype branch's nodes kept float under ``policy`` (PROTOS_CHOICES) and the Convs that feed them.

    "activation": back from ``output`` to its last Conv (which feeds them). "branch": every node whose
    outputs reach only ``output``, back to the feature map the Detect head shares (no Conv of its own feeds
    them), so its Convs and ConvTranspose too."""
    by_output = producers(graph)
    last = by_output.get(output)
    if policy == "none" or last is None:
        return [], []
    if policy == "activation":
        walked, feeding = walk_back(graph, last, lambda n: n.op_type in ("Conv", "ConvTranspose"))
        return [n.name for n in walked], feeding
    readers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node.name)
    branch, grown = {last.name}, True
    while grown:  # grow until no producer is read by the branch alone
        grown = False
        for node in graph.node:
            if node.name in branch:
                continue
            used = [r for out in node.output for r in readers.get(out, [])]
            if used and all(r in branch for r in used) and not any(o.name in node.output for o in graph.output):
                branch.add(node.name)
                grown = True
    return sorted(branch), []


def rle_from_region(region: np.ndarray, top: int, left: int, hw: tuple[int, int]) -> dict:
    """COCO compressed RLE of an image of size ``hw`` that is 0 except ``region`` (bool [rh, rw]) at
    (``top``, ``left``): the runs are counted on the region alone (column-major, as COCO orders pixels),
    so a small mask on a large image costs what the mask costs."""
    h, w = hw
    rh, rw = region.shape
    padded = np.zeros((rw, rh + 2), np.uint8)  # one region column per row, a 0 above and below it
    padded[:, 1:-1] = region.T
    flat = padded.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # each column: on, off, on, off, ...
    full = (left + change // (rh + 2)) * h + top + change % (rh + 2) - 1  # the image pixel a run starts / ends at
    starts, ends = full[0::2], full[1::2]
    if starts.size:
        joined = np.concatenate([[False], starts[1:] == ends[:-1]])  # a run that goes on into the next column
        starts, ends = starts[~joined], ends[np.concatenate([~joined[1:], [True]])]
    edges = np.empty(2 * starts.size + 2, np.int64)
    edges[0], edges[1:-1:2], edges[2:-1:2], edges[-1] = 0, starts, ends, h * w
    counts = np.diff(edges)
    if counts.size > 1 and counts[-1] == 0:  # the last run reaches the last pixel: no trailing zeros to count
        counts = counts[:-1]
    rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts.tolist()}, h, w)
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def masks_from_protos(
    coefficients: np.ndarray, protos: np.ndarray, boxes_xyxy: np.ndarray, lb: Letterbox
) -> list[dict]:
    """One RLE per detection: logit = coefficients . protos, sampled bilinearly at the centre of every
    original-image pixel inside the box (``c >= x1 and c < x2``, as Ultralytics crops), kept where > 0."""
    h, w = lb.shape
    nm, mh, mw = protos.shape
    logits = (coefficients.astype(np.float32) @ protos.reshape(nm, -1).astype(np.float32)).reshape(-1, mh, mw)
    # the letterbox's resize, per axis, exactly as letterbox_image rounds it
    gx, gy = max(1, int(round(w * lb.scale))) / w, max(1, int(round(h * lb.scale))) / h
    edges = np.ceil(boxes_xyxy.astype(np.float64)).clip(0, [w, h, w, h]).astype(np.int64).tolist()
    out = []
    for logit, (c0, r0, c1, r1) in zip(logits, edges):
        if c1 <= c0 or r1 <= r0:
            out.append(rle_from_region(np.zeros((0, 0), bool), 0, 0, (h, w)))
            continue
        # original pixel (c, r) -> its centre in input pixels -> prototype sample coordinates (pixel centres)
        m = np.array(
            [
                [gx / PROTO_STRIDE, 0.0, ((c0 + 0.5) * gx + lb.left) / PROTO_STRIDE - 0.5],
                [0.0, gy / PROTO_STRIDE, ((r0 + 0.5) * gy + lb.top) / PROTO_STRIDE - 0.5],
            ]
        )
        crop = cv2.warpAffine(
            logit, m, (c1 - c0, r1 - r0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )
        out.append(rle_from_region(crop > 0, r0, c0, (h, w)))
    return out


class Segment(HeadFamily):
    name = "segment"
    task = "segment"
    covers = "YOLOv8-seg and YOLO11-seg ([1, 4+nc+32, N] with mask coefficients, protos [1, 32, H/4, W/4])"
    looked_for = (
        "two outputs: one fed by Concat(box decode with a DFL, class Sigmoid, mask coefficients), one rank-4 "
        "prototype output"
    )

    def __init__(self, protos: str = PROTOS_FLOAT):
        if protos not in PROTOS_CHOICES:
            raise ValueError(f"protos {protos!r} is not one of {', '.join(PROTOS_CHOICES)}")
        self.protos = protos

    def find(self, model: onnx.ModelProto) -> Head | None:
        """The Detect head behind the rank-3 output (walked as dfl-detect walks it, plus the coefficient
        part), and the prototype output's float nodes under ``protos``."""
        graph = model.graph
        if len(graph.output) != 2:
            return None
        ranks = [len(_shape(o)) for o in graph.output]
        if sorted(ranks) == [3, 4]:
            orders = [(0, 1) if ranks[0] == 3 else (1, 0)]
        elif not any(ranks):  # outputs without shapes: the structure says which is which
            orders = [(0, 1), (1, 0)]
        else:
            return None
        for det, proto in orders:
            found = detect_with_extra(graph, graph.output[det].name)
            if found is not None:
                break
        else:
            return None
        proto_out = graph.output[proto]
        walked, feeding, _ = found
        float_protos, proto_feeding = proto_nodes(graph, proto_out.name, self.protos)
        nodes = sorted({n.name for n in walked} | set(float_protos))
        return Head(family=self.name, nodes=nodes, feeding_convs=sorted(set(feeding) | set(proto_feeding)))

    @staticmethod
    def _split(shapes: Sequence[Sequence]) -> tuple[int, int] | None:
        """(index of the detection output, index of the protos) for two static outputs, else None."""
        if len(shapes) != 2:
            return None
        ranks = [len(s) for s in shapes]
        if sorted(ranks) != [3, 4] or not all(isinstance(d, (int, np.integer)) for s in shapes for d in s):
            return None
        return (0, 1) if ranks[0] == 3 else (1, 0)

    def reads(self, shapes: Sequence[Sequence[int]], nc: int | None) -> bool:
        split = self._split(shapes)
        if split is None:
            return False
        det, protos = shapes[split[0]], shapes[split[1]]
        nm = int(protos[1])
        if protos[0] != 1 or det[0] != 1:
            return False
        return any(c - 4 - nm >= 1 and (nc is None or c - 4 - nm == nc) for c in det[1:])

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
        det_i, proto_i = self._split([o.shape for o in outputs])
        out, protos = np.asarray(outputs[det_i]), np.asarray(outputs[proto_i])[0]
        nm = protos.shape[0]
        if nc is None:  # the channel dim is the smaller one (N anchors outnumber the channels)
            nc = min(out.shape[1:]) - 4 - nm
        dets, anchors, preds = boxes.decode_anchors(out, lb, conf, iou, max_det, nc, nms, extra=nm)
        coefficients = preds[4 + nc :, anchors].T
        dets.fields["masks"] = masks_from_protos(coefficients, protos, dets.boxes, lb) if len(dets) else []
        return dets

    def raw_channels(self, output: np.ndarray, nc: int | None) -> np.ndarray:
        """output0's box and class channels, channels first (the coefficients are judged by the masks they
        make); without the class count, all but Ultralytics' 32 coefficients."""
        chw = output if output.shape[1] <= output.shape[2] else output.transpose(0, 2, 1)
        return chw[:, : 4 + nc] if nc else chw[:, :-32]


FAMILY = Segment()
