"""The peer a YOLOv8 user would pick instead for CPU INT8: OpenVINO with NNCF post-training
quantization, made the way ``yolo export format=openvino int8=True`` makes it (preset MIXED, the
detect head's decode, DFL and Sigmoid left in float) — with the head found by quantkit's own head
finder instead of node-name patterns, and calibrated on the same letterboxed images.

Optional: ``pip install "quantkit-yolo[openvino]"`` brings openvino and nncf. Without them
``available()`` is False and reports carry a note instead of the peer's row.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from pathlib import Path

import numpy as np
import onnx

from .calibration import CalibrationSet
from .errors import QuantkitError
from .head import find_head
from .model import name_nodes


def available() -> bool:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def versions() -> str:
    import nncf
    import openvino

    return f"openvino {openvino.__version__.split('-')[0]}, nncf {nncf.__version__}"


def nncf_int8(model_path: str | Path, calib: CalibrationSet, cache_dir: Path) -> Path:
    """The NNCF INT8 OpenVINO model (.xml) of ``model_path``, made once per model and calibration set."""
    import nncf
    import openvino as ov

    key = hashlib.sha256(Path(model_path).read_bytes() + calib.tensors.tobytes()).hexdigest()[:16]
    out = cache_dir / "peer" / f"{Path(model_path).stem}-nncf-{key}.xml"
    if out.is_file():
        return out
    proto = onnx.load(str(model_path))
    name_nodes(proto)
    head = find_head(proto)
    if head is None:
        raise QuantkitError(f"{Path(model_path).name}: no YOLOv8 head found, so the peer cannot keep it in float")
    model = ov.Core().read_model(str(model_path))
    input_name = model.inputs[0].get_any_name()
    dataset = nncf.Dataset(list(calib.tensors), lambda t: {input_name: t[None]})
    quantized = nncf.quantize(model, dataset, preset=nncf.QuantizationPreset.MIXED, subset_size=len(calib.tensors),
                              ignored_scope=nncf.IgnoredScope(names=head.nodes, types=["Sigmoid"], validate=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{time.time_ns()}.xml")
    ov.save_model(quantized, str(tmp))
    tmp.with_suffix(".bin").replace(out.with_suffix(".bin"))
    tmp.replace(out)
    return out


class OVRunner:
    """An OpenVINO compiled model with quantkit's Runner interface: ``run(tensor) -> first output``.

    ``threads`` sets ``INFERENCE_NUM_THREADS``; None keeps OpenVINO's own default (its deployment setting).
    """

    def __init__(self, model_path: str | Path, threads: int | None = None):
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        self.model_path, self.ep, self.threads, self.batch = Path(model_path), "openvino-native", threads, 1
        self.compiled = ov.Core().compile_model(str(model_path), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def run(self, tensor: np.ndarray) -> np.ndarray:
        return self.request.infer([tensor])[0]


def block_ms(runner, tensor: np.ndarray, rounds: int = 30, warmup: int = 5) -> float:
    """Median milliseconds of ``rounds`` back-to-back runs: one runtime alone, its defaults as deployed."""
    for _ in range(warmup):
        runner.run(tensor)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        runner.run(tensor)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)
