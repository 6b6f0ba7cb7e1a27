"""The CUDA EP. It has no INT8 convolution kernels: a QDQ model runs its Convs in float there."""

from .base import ExecutionProvider

PROVIDER = ExecutionProvider(
    id="cuda",
    ort_name="CUDAExecutionProvider",
    thresholds={"max_latency_ratio_cuda": 1.0},
    why={"max_latency_ratio_cuda": "INT8 / FP32 on the CUDA EP (it has no INT8 conv kernels)"},
    install="pip install 'quantkit-yolo[gpu]' (onnxruntime-gpu) on a machine with CUDA",
    cuda_binding=True,
    gpu=True,
)
