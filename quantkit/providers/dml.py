"""DirectML, Windows' GPU EP (the onnxruntime-directml build)."""

from .base import ExecutionProvider

PROVIDER = ExecutionProvider(
    id="dml",
    ort_name="DmlExecutionProvider",
    thresholds={"max_latency_ratio_dml": 1.0},
    why={"max_latency_ratio_dml": "INT8 / FP32 on DirectML"},
    install="pip install onnxruntime-directml (Windows, in place of onnxruntime)",
    gpu=True,
)
