"""The TensorRT EP: INT8 engines built from the QDQ model's scales, cached in quantkit's cache ("trt")."""

from pathlib import Path

from .base import ExecutionProvider


class TensorRT(ExecutionProvider):
    def options(self, model_path: Path, folder: Path | None) -> dict:
        import onnx

        is_qdq = any(
            n.op_type == "QuantizeLinear" for n in onnx.load(str(model_path), load_external_data=False).graph.node
        )
        return {"trt_int8_enable": is_qdq, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(folder)}


PROVIDER = TensorRT(
    id="tensorrt",
    ort_name="TensorrtExecutionProvider",
    thresholds={"max_latency_ratio_tensorrt": 1.0},
    why={"max_latency_ratio_tensorrt": "INT8 / FP32 on TensorRT"},
    install="pip install 'quantkit-yolo[gpu]' (onnxruntime-gpu) with TensorRT's libraries",
    cuda_binding=True,
    gpu=True,
    cache_kind="trt",
)
