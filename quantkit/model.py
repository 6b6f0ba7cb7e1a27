"""Load and inspect an ONNX detector: image input, dynamic axes, Ultralytics metadata, fixing dims."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper, numpy_helper

from . import compat
from .errors import ModelError
from . import heads

# The metadata key a model's own session options are stamped under (weight-only INT8 needs
# session.disable_quant_qdq=1); written by quantization/weights, read by measure/session.
SESSION_CONFIG_KEY = "quantkit_session_config"


@dataclass
class ModelInfo:
    """What quantkit needs to know about a detector's interface."""

    input_name: str
    input_shape: list  # ints, or str for named dynamic axes, or None for unnamed ones
    output_shapes: list[list]
    names: dict[int, str] = field(default_factory=dict)  # class index -> name (Ultralytics metadata)
    imgsz: tuple[int, int] | None = None  # (H, W): fixed input dims, else metadata
    stride: int = 32  # the largest feature-map stride (metadata 'stride', else YOLOv8's 32)

    @property
    def dynamic_axes(self) -> list[int]:
        return [i for i, d in enumerate(self.input_shape) if not isinstance(d, int)]


def load_model(path: str | Path, notes: list[str] | None = None) -> onnx.ModelProto:
    """Read and check an ONNX file; raise ModelError with a fix for anything unusable.

    Weights kept in external data files are read in from the model's folder. The IR version is
    lowered to what this onnxruntime loads; ``notes`` receives a line for each of these.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model not found: {path}: check the path")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}: pass the .onnx file itself")
    data = path.read_bytes()
    if not data:
        raise ModelError(f"model file is empty: {path}: re-export the model")
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{path} is not a readable ONNX file ({type(exc).__name__}): it is truncated or not ONNX; re-export it"
        ) from None
    if not model.graph.node or model.ir_version == 0:
        raise ModelError(f"{path} is not an ONNX model (no graph found): pass an exported .onnx detector")
    files = external_files(model)
    if files:
        try:
            external_data_helper.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:
            raise ModelError(
                f"{path.name} keeps its weights in external data ({', '.join(files)}) that cannot be read "
                f"from {path.parent} ({compat.error_line(exc, 120)}): keep the .onnx and its data files in "
                "one folder"
            ) from None
        if notes is not None:
            notes.append(f"weights read from external data ({', '.join(files)}); the INT8 model is one file")
    lowered = compat.lower_ir_version(model)
    if lowered and notes is not None:
        notes.append(lowered)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise ModelError(f"{path} is truncated or invalid ONNX ({compat.error_line(exc, 160)}): re-export it") from None
    return model


def _tensors(graph: onnx.GraphProto):
    """Every tensor of ``graph``: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                yield from _tensors(sub)


def external_files(model: onnx.ModelProto) -> list[str]:
    """The external data files ``model``'s tensors point to (relative paths), in order of first use."""
    files = {}
    for tensor in _tensors(model.graph):
        if external_data_helper.uses_external_data(tensor):
            files.setdefault(next(e.value for e in tensor.external_data if e.key == "location"), None)
    return list(files)


def model_bytes(path: str | Path) -> int:
    """Size of a model on disk: the .onnx file plus the external data files it names."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    return path.stat().st_size + sum(
        (path.parent / f).stat().st_size for f in external_files(model) if (path.parent / f).is_file()
    )


def upcast_float16(model: onnx.ModelProto) -> int:
    """Turn a float16 model with float32 inputs into float32, in place; return how many things changed.

    onnxruntime's quantizer works on float32: float16 tensors (initializers, Constant values),
    Casts to float16 (now float to float) and float16 outputs become float32; stale shapes are dropped.
    """
    f16, f32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    changed = 0
    for tensor in _tensors(model.graph):
        if tensor.data_type == f16:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))
            changed += 1
    casts = [a for n in model.graph.node if n.op_type == "Cast" for a in n.attribute if a.name == "to" and a.i == f16]
    outputs = [o.type.tensor_type for o in model.graph.output if o.type.tensor_type.elem_type == f16]
    for attr in casts:
        attr.i = f32
    for tensor_type in outputs:
        tensor_type.elem_type = f32
    changed += len(casts) + len(outputs)
    if changed:
        del model.graph.value_info[:]
    return changed


def _dims(value_info) -> list:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def _metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def inspect_model(model: onnx.ModelProto, source: str | Path = "model") -> ModelInfo:
    """Find the rank-4 image input and read Ultralytics' metadata (class names, imgsz)."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    images = [i for i in inputs if len(d := _dims(i)) == 4 and (d[1] == 3 or not isinstance(d[1], int))]
    nhwc = [i for i in inputs if len(d := _dims(i)) == 4 and d[3] == 3 and i not in images]
    if not images and len(nhwc) == 1:
        raise ModelError(
            f"{source}: input '{nhwc[0].name}' {_dims(nhwc[0])} is NHWC (channels last): quantkit calibrates "
            "and evaluates with [N, 3, H, W] images; re-export the detector with an NCHW input (Ultralytics' default)"
        )
    if len(images) != 1:
        found = ", ".join(f"{i.name}{_dims(i)}" for i in inputs) or "none"
        raise ModelError(
            f"{source}: no single rank-4 NCHW image input (inputs: {found}): quantkit handles image detectors with "
            "one [N,3,H,W] input"
        )
    if images[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        kind = onnx.helper.tensor_dtype_to_np_dtype(images[0].type.tensor_type.elem_type).name
        raise ModelError(
            f"{source}: input '{images[0].name}' is {kind}: quantkit feeds float32 images; export with "
            "half=False (quantize the FP32 model), or convert with float32 inputs (keep_io_types=True)"
        )
    meta = _metadata(model)
    info = ModelInfo(images[0].name, _dims(images[0]), [_dims(o) for o in model.graph.output])
    try:
        if "names" in meta:
            info.names = {int(k): str(v) for k, v in ast.literal_eval(meta["names"]).items()}
        if "imgsz" in meta:
            h, w = ast.literal_eval(meta["imgsz"])
            info.imgsz = (int(h), int(w))
        if "stride" in meta and int(meta["stride"]) > 0:
            info.stride = int(meta["stride"])
    except (ValueError, SyntaxError, TypeError):
        pass  # foreign metadata: fall back to the input's own dims
    if all(isinstance(d, int) for d in info.input_shape[2:]):  # fixed dims are what the model runs at
        info.imgsz = (info.input_shape[2], info.input_shape[3])
    elif "stride" not in meta:  # the stride decides which --imgsz are valid
        info.stride = head_stride(model, info) or info.stride
    return info


def head_stride(model: onnx.ModelProto, info: ModelInfo, probe: int = 1024) -> int | None:
    """The largest stride of the feature maps the detection head reads (P6 models: 64), from shape
    inference on a copy fixed to ``probe`` x ``probe``; None without a head or shapes."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    fix_input_dims(fixed, ModelInfo(info.input_name, list(info.input_shape), []), (probe, probe))
    name_nodes(fixed)
    head = heads.find(fixed)
    if head is None:
        return None
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed)
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError):
        return None
    outputs = {n.name: n.output[0] for n in inferred.graph.node if n.name in head.feeding_convs}
    heights = [d[2] for v in inferred.graph.value_info if v.name in outputs.values() and len(d := _dims(v)) == 4]
    if len(heights) != len(outputs) or not all(isinstance(h, int) and h > 0 for h in heights):
        return None
    return probe // min(heights)


IMGSZ_RANGE = (32, 4096)


def check_imgsz(hw: tuple[int, int], stride: int = 32) -> None:
    """Raise ModelError unless H and W are multiples of ``stride`` within IMGSZ_RANGE, naming the nearest valid size."""
    low = -(-IMGSZ_RANGE[0] // stride) * stride
    high = max(low, IMGSZ_RANGE[1] // stride * stride)
    nearest = tuple(min(max(round(v / stride) * stride, low), high) for v in hw)
    if nearest == tuple(hw):
        return
    given, use = f"{hw[0]}x{hw[1]}", f"{nearest[0]}x{nearest[1]}"
    if any(v < low or v > high for v in hw):
        raise ModelError(f"--imgsz {given} is outside {low}..{high}: use {use}")
    raise ModelError(f"--imgsz {given} is not a multiple of the stride {stride}: use {use}")


def resolve_imgsz(info: ModelInfo, imgsz: tuple[int, ...] | None, source: str | Path = "model") -> tuple[int, int]:
    """The (H, W) to run at: ``--imgsz`` if given (one value = square), else metadata, else an error.

    On dynamic H/W, ``--imgsz`` must be a multiple of the model's stride within IMGSZ_RANGE."""
    fixed = info.input_shape[2:] if all(isinstance(d, int) for d in info.input_shape[2:]) else None
    if imgsz:
        hw = (int(imgsz[0]), int(imgsz[-1]))
        if min(hw) <= 0:
            raise ModelError(f"--imgsz must be positive, got {'x'.join(map(str, imgsz))}: pass H W such as 640 640")
        if fixed and tuple(fixed) != hw:
            raise ModelError(
                f"{source}: input is fixed at {fixed[0]}x{fixed[1]} but --imgsz is {hw[0]}x{hw[1]}: drop --imgsz or "
                "re-export"
            )
        if not fixed:
            check_imgsz(hw, info.stride)
        return hw
    if info.imgsz:
        return info.imgsz
    raise ModelError(
        f"{source}: input '{info.input_name}' has dynamic axes {info.input_shape} and no imgsz metadata: pass --imgsz "
        "H W"
    )


def fix_input_dims(model: onnx.ModelProto, info: ModelInfo, hw: tuple[int, int]) -> bool:
    """Pin a dynamic batch to 1 and H, W to ``hw`` on the image input, in place; True if anything changed.

    A fixed batch stays as exported. Stale intermediate shapes are dropped so shape inference recomputes them.
    """
    if not info.dynamic_axes:
        return False
    batch = info.input_shape[0]
    target = [batch if isinstance(batch, int) else 1, 3, hw[0], hw[1]]
    for graph_input in model.graph.input:
        if graph_input.name == info.input_name:
            for dim, value in zip(graph_input.type.tensor_type.shape.dim, target):
                dim.Clear()
                dim.dim_value = value
    del model.graph.value_info[:]
    info.input_shape = target
    return True


def name_nodes(model: onnx.ModelProto) -> None:
    """Give every unnamed node a unique name, in place (node exclusion lists need names)."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def quantized_nodes(model: onnx.ModelProto) -> dict[str, int]:
    """Count of each quantized op type in ``model`` ({} for a float model)."""
    return {op: n for op, n in op_counts(model).items() if heads.is_quantized_op(op)}


def refuse_quantized(model: onnx.ModelProto, source: str | Path) -> None:
    """ModelError when ``model`` is already quantized: quantizing it again only wastes minutes."""
    found = quantized_nodes(model)
    if found:
        raise ModelError(
            f"{Path(source).name} is already INT8: {' / '.join(f'{n} {op}' for op, n in found.items())} "
            "nodes: quantize the FP32 model it came from (or compare the two with `quantkit compare`)"
        )


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Node count per op type."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def float_convs(model: onnx.ModelProto) -> list[str]:
    """Conv nodes that still compute in float: their weight is a float initializer, not a DequantizeLinear output."""
    floats = {
        i.name for i in model.graph.initializer if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    }
    return [n.name for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in floats]


def quantized_convs(model: onnx.ModelProto) -> int:
    """Convs that compute in INT8: QLinearConv, ConvInteger, or (QDQ) a Conv whose weight is dequantized."""
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return sum(
        1
        for n in model.graph.node
        if n.op_type in ("QLinearConv", "ConvInteger")
        or (n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in dequantized)
    )


_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)
_PACKED_4BIT = ("INT4", "UINT4", "FLOAT4E2M1")
# where an op's inputs are scales or zero points by position; QLinear* ops take (tensor, scale, zero point) in turn
_QUANT_PARAMS = {
    "QuantizeLinear": (1, 2),
    "DequantizeLinear": (1, 2),
    "DynamicQuantizeLinear": (),
    "ConvInteger": (2, 3),
    "MatMulInteger": (2, 3),
}


def _stored_bytes(tensor: onnx.TensorProto) -> int:
    """What ``tensor``'s values take: elements x element size (4-bit types packed two a byte)."""
    elements = int(np.prod(tensor.dims, dtype=np.int64))
    if tensor.data_type == onnx.TensorProto.STRING:
        return sum(len(v) for v in tensor.string_data)
    if onnx.TensorProto.DataType.Name(tensor.data_type) in _PACKED_4BIT:
        return (elements + 1) // 2
    return elements * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize


def _quant_roles(graph: onnx.GraphProto, inits: dict) -> dict[str, str]:
    """Tensor name (initializers, Constant outputs) -> "quantized" (integer data a quantized op reads: weights,
    int32 biases) or "scales" (scales and zero points)."""
    role: dict[str, str] = {}
    for node in graph.node:
        if not heads.is_quantized_op(node.op_type):
            continue
        params = _QUANT_PARAMS.get(node.op_type)
        for k, name in enumerate(node.input):
            tensor = inits.get(name)
            if tensor is None or name in role:
                continue
            is_float = tensor.data_type in _FLOAT_TYPES
            if params is not None:
                param = k in params
            else:  # a float input is a scale, an integer right after a scale its zero point
                before = inits.get(node.input[k - 1]) if k > 0 else None
                param = is_float or (before is not None and before.data_type in _FLOAT_TYPES)
            if param:
                role[name] = "scales"
            elif not is_float:  # a float weight a QuantizeLinear quantizes as the model runs is stored float
                role[name] = "quantized"
    return role


def tensor_bytes(model: onnx.ModelProto, head_nodes=()) -> dict[str, int]:
    """The bytes of ``model``'s tensors by what quantization made of them (the size gate's figures):

    - ``quantized``: integer data a quantized op reads (DequantizeLinear's input, QLinearConv's and
      ConvInteger's weights, int32 biases), as stored; ``quantized_fp32``: the same elements at 4 bytes,
      what they weighed in FP32;
    - ``scales``: the scales and zero points of every quantized op;
    - ``head_float``: float tensors only ``head_nodes`` read (the decode's anchors and strides, the DFL's
      bins: what the head keeps float by design);
    - ``float``: every other float tensor (initializers and Constant values, subgraphs included): weights
      left float, and anything carried along, read or not;
    - ``other``: the rest (int64 shapes, indices), which quantization leaves alone; ``tensors``: all of them.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].type == onnx.AttributeProto.TENSOR:
            inits.setdefault(node.output[0], node.attribute[0].t)
    role = _quant_roles(graph, inits)
    readers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.name)
    head = set(head_nodes)
    out = dict.fromkeys(("quantized", "quantized_fp32", "scales", "head_float", "float", "other", "tensors"), 0)

    def count(tensor: onnx.TensorProto, name: str | None) -> None:
        """``name``: what the graph calls the tensor (its readers tell the head's); None inside a subgraph."""
        kind = role.get(name) if name else None
        if kind is None and tensor.data_type in _FLOAT_TYPES:
            used_by = readers.get(name, set()) if name else set()
            kind = "head_float" if used_by and used_by <= head else "float"
        kind = kind or "other"
        stored = _stored_bytes(tensor)
        if kind == "quantized":
            out["quantized_fp32"] += 4 * int(np.prod(tensor.dims, dtype=np.int64))
        out[kind] += stored
        out["tensors"] += stored

    for tensor in graph.initializer:
        count(tensor, tensor.name)
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                count(attr.t, node.output[0] if node.op_type == "Constant" else None)
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                for tensor in _tensors(sub):
                    count(tensor, None)
    return out
