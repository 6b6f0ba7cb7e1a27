"""Typed errors: each message names the problem and the fix, on one line."""


class QuantkitError(Exception):
    """Base class; the CLI prints the message and exits with code 2."""


class ModelError(QuantkitError):
    """The model file is missing, not ONNX, or not a detector quantkit can handle."""


class CalibrationError(QuantkitError):
    """The calibration folder is missing, empty or has no readable image."""


class DatasetError(QuantkitError):
    """Evaluation images or COCO annotations do not fit together."""


class OutputError(QuantkitError):
    """The output path cannot be written, or would overwrite the source."""


class ManifestError(QuantkitError):
    """The manifest (cases x configs x thresholds) is malformed."""


class RuntimeLoadError(QuantkitError):
    """The quantized model does not load in the installed onnxruntime (a known defect named with its way out)."""


class EPUnavailableError(QuantkitError):
    """An execution provider was asked for but onnxruntime did not run the session on it."""


class CacheError(QuantkitError):
    """`quantkit cache` was pointed at a folder it will not touch (not a quantkit cache)."""


class NotDecidedError(QuantkitError):
    """Too little evidence to decide accuracy (found before the long work): the CLI prints it and exits with code 3."""
