"""The CUDA EP. It has no INT8 convolution kernels: a QDQ model runs its Convs in float there."""

from .base import ExecutionProvider

PROVIDER = ExecutionProvider(
    id="cuda",
    ort_name="CUDAExecutionProvider",
    thresholds={"max_latency_ratio_cuda": 1.0},
    install="pip install 'quantkit-yolo[gpu]' (onnxruntime-gpu) on a machine with CUDA",
    cuda_binding=True,
    gpu=True,
)
