"""quantkit: quantize YOLOv8 ONNX detectors to INT8 with onnxruntime, and prove they still work.

Pipeline: preprocess -> quantize -> session (run) -> detect / metrics (evaluate) -> report.
"""

from .errors import CalibrationError, DatasetError, ManifestError, ModelError, OutputError, QuantkitError
from .quantization.quantizer import PRESETS, QuantConfig, QuantResult, quantize

__all__ = [
    "quantize",
    "QuantConfig",
    "QuantResult",
    "PRESETS",
    "QuantkitError",
    "ModelError",
    "CalibrationError",
    "DatasetError",
    "OutputError",
    "ManifestError",
]
__version__ = "0.1.0"
