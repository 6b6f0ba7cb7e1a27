"""onnxruntime's OpenVINO EP (the onnxruntime-openvino build), on the CPU."""

from pathlib import Path

from .base import ExecutionProvider


class OpenVINO(ExecutionProvider):
    def options(self, model_path: Path, folder: Path | None) -> dict:
        return {"device_type": "CPU"}


PROVIDER = OpenVINO(
    id="openvino",
    ort_name="OpenVINOExecutionProvider",
    thresholds={"max_latency_ratio_openvino": 1.0},
    why={"max_latency_ratio_openvino": "INT8 / FP32 on the OpenVINO EP"},
    install="pip install onnxruntime-openvino (in place of onnxruntime)",
)
