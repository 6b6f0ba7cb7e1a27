"""The execution-provider registry: one module per EP (``cpu``, ``cuda``, ``tensorrt``, ``openvino``, ``dml``),
each a ``base.ExecutionProvider``. Everything else — session creation, the latency thresholds in THRESHOLDS, the
CLI's and the plugin's help, the cache's folders, the errors, its rows in docs/thresholds.md — is derived from this
list, so a new EP is one module here. Light to import: no onnxruntime here."""

from __future__ import annotations

from ..errors import QuantkitError
from . import cpu, cuda, dml, openvino, tensorrt
from .base import ExecutionProvider

REGISTRY: tuple[ExecutionProvider, ...] = tuple(m.PROVIDER for m in (cpu, cuda, tensorrt, openvino, dml))
IDS = tuple(p.id for p in REGISTRY)


def get(ep: str) -> ExecutionProvider:
    """The registered EP ``ep``; QuantkitError naming the known ones otherwise."""
    for provider in REGISTRY:
        if provider.id == ep:
            return provider
    raise QuantkitError(f"unknown execution provider '{ep}': choose one of {', '.join(IDS)}")


def latency_thresholds() -> dict[str, float]:
    """Every EP's latency threshold keys with their defaults, in registry order (THRESHOLDS takes them)."""
    return {key: value for p in REGISTRY for key, value in p.thresholds.items()}


def cache_kinds() -> tuple[str, ...]:
    """The cache folders EPs keep (TensorRT's engines)."""
    return tuple(p.cache_kind for p in REGISTRY if p.cache_kind)


def listing() -> str:
    """'cpu, cuda, tensorrt, openvino or dml': for help texts."""
    return ", ".join(IDS[:-1]) + f" or {IDS[-1]}"
