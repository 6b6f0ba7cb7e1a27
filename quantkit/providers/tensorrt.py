"""The TensorRT EP: INT8 engines built from the QDQ model's scales, cached in quantkit's cache ("trt")."""

from pathlib import Path

from .base import ExecutionProvider


class TensorRT(ExecutionProvider):
    def options(self, model_path: Path, cache_dir: Path) -> dict:
        import onnx

        from .. import cache

        is_qdq = any(
            n.op_type == "QuantizeLinear" for n in onnx.load(str(model_path), load_external_data=False).graph.node
        )
        engines = cache.kind_folder(cache_dir, self.cache_kind)  # a temporary stand-in where it cannot take files
        return {"trt_int8_enable": is_qdq, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines)}


PROVIDER = TensorRT(
    id="tensorrt",
    ort_name="TensorrtExecutionProvider",
    thresholds={"max_latency_ratio_tensorrt": 1.0},
    install="pip install 'quantkit-yolo[gpu]' (onnxruntime-gpu) with TensorRT's libraries",
    cuda_binding=True,
    gpu=True,
    cache_kind="trt",
)
