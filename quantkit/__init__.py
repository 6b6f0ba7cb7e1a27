"""quantkit: quantize YOLOv8 ONNX detectors to INT8 with onnxruntime, and prove they still work.

Pipeline: preprocess -> quantize -> session (run) -> detect / metrics (evaluate) -> report.
"""

from .errors import CalibrationError, DatasetError, ManifestError, ModelError, OutputError, QuantkitError

_LAZY = ("quantize", "QuantConfig", "QuantResult", "PRESETS")  # onnx and onnxruntime load on first use


def __getattr__(name: str):
    """The quantizer's API, imported when first asked for: `import quantkit` (and the command's first
    instant, where a Ctrl-C must end in one line) stays free of onnx's and onnxruntime's import time."""
    if name in _LAZY:
        from .quantization import quantizer

        return getattr(quantizer, name)
    raise AttributeError(f"module 'quantkit' has no attribute {name!r}")


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
