"""The CPU EP: onnxruntime's own kernels. INT8 pays where the CPU has an INT8 dot-product instruction (VNNI, AMX),
so it has a threshold per CPU class (docs/thresholds.md)."""

from .base import ExecutionProvider


class CPU(ExecutionProvider):
    def threshold_key(self, vnni: bool) -> str:
        return "max_latency_ratio_cpu_vnni" if vnni else "max_latency_ratio_cpu"


PROVIDER = CPU(
    id="cpu",
    ort_name="CPUExecutionProvider",
    thresholds={"max_latency_ratio_cpu_vnni": 0.90, "max_latency_ratio_cpu": 1.15},
    why={
        "max_latency_ratio_cpu_vnni": "INT8 / FP32 on CPUs with VNNI or AMX",
        "max_latency_ratio_cpu": "INT8 / FP32 on CPUs without (AVX2-only)",
    },
    install="part of every onnxruntime",
)
