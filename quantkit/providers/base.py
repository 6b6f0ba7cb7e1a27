"""What quantkit knows of one onnxruntime execution provider: the interface every ``providers/`` module fills."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ExecutionProvider:
    """One EP: its short id (CLI value, test ids, threshold keys), onnxruntime's name for it, its latency
    thresholds (key -> default INT8/FP32 ratio, in THRESHOLDS; ``why`` their docs rows), how to install it, and how
    a session uses it."""

    id: str
    ort_name: str
    thresholds: dict[str, float]  # latency threshold key(s) -> default; `threshold_key` picks one
    install: str  # one phrase: how to get it, for the "not available" error
    cuda_binding: bool = False  # IOBinding with outputs on the CUDA device
    gpu: bool = False  # needs an accelerator: its benchmarks carry the `gpu` mark
    cache_kind: str | None = None  # a folder of its own in quantkit's cache (TensorRT engines)
    notes: tuple[str, ...] = field(default=())
    why: dict[str, str] = field(default_factory=dict)  # each threshold key's row text in docs/thresholds.md

    def threshold_key(self, vnni: bool) -> str:
        """The latency threshold that applies on this machine (``vnni``: the CPU has an INT8 dot-product
        instruction); an EP with one threshold ignores it."""
        return next(iter(self.thresholds))

    def options(self, model_path: Path, folder: Path | None) -> dict | None:
        """onnxruntime provider options for ``model_path`` (None: its defaults); ``folder`` is its ``cache_kind``
        folder in quantkit's cache, where it has one."""
        return None
