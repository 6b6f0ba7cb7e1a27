"""Latency of FP32 and INT8 sessions measured side by side, interleaved in one process.

Absolute times on shared machines drift; the ratio of interleaved medians is what is compared.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from .session import Runner


def interleaved(runners: dict[str, Runner], tensor: np.ndarray, rounds: int = 30, warmup: int = 5) -> dict[str, float]:
    """Median milliseconds per runner, each round running every runner once in turn.

    Build the runners with ``spin=False``: spinning thread pools of idle sessions slow the active one.
    """
    for runner in runners.values():
        for _ in range(warmup):
            runner.run(tensor)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.run(tensor)
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def sample_input(hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A fixed input tensor of the model's size (latency does not depend on content here)."""
    return np.random.default_rng(seed).random((1, 3, *hw), dtype=np.float32)


def latency_ratio(fp32_model, int8_model, hw: tuple[int, int], ep: str = "cpu", threads: int | None = 1,
                  rounds: int = 30) -> dict:
    """{fp32_ms, int8_ms, ratio, threads} for one EP, FP32 and INT8 interleaved."""
    runners = {"fp32": Runner(fp32_model, ep, threads, spin=False), "int8": Runner(int8_model, ep, threads, spin=False)}
    ms = interleaved(runners, sample_input(hw), rounds)
    return {"ep": ep, "threads": threads, "fp32_ms": round(ms["fp32"], 3), "int8_ms": round(ms["int8"], 3),
            "ratio": round(ms["int8"] / ms["fp32"], 4)}
