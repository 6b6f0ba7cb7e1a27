"""Latency of FP32 and INT8 sessions measured side by side, interleaved in one process.

Absolute times on shared machines drift; the ratio of interleaved medians is what is compared.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..progress import Progress
from .session import Runner


def interleaved(
    runners: dict[str, Runner],
    tensor: np.ndarray,
    rounds: int = 30,
    warmup: int = 5,
    samples: dict[str, list[float]] | None = None,
    bar: Progress | None = None,
) -> dict[str, float]:
    """Median milliseconds per runner, each round running every runner once in turn; ``samples`` (if given)
    receives every round's seconds per runner (what pytest-benchmark records).

    Build the runners with ``spin=False``: spinning thread pools of idle sessions slow the active one.
    ``bar`` (a ``quantkit.progress.Progress``) counts the rounds.
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
        if bar is not None:
            bar.update()
    if samples is not None:
        samples.update(times)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def timed_twice(
    runners: dict[str, Runner], tensor: np.ndarray, rounds: int = 30, progress: bool = False
) -> tuple[dict[str, float], dict[str, float]]:
    """``interleaved`` twice: (mean of the two medians, relative spread |a - b| / mean) per runner.

    The spread is the run-to-run noise a comparison must beat before one model is called faster. ``progress``:
    the rounds' progress on stderr (``quantkit.progress``)."""
    desc = f"interleaved timing ({len(runners)} models)"
    with Progress(desc, 2 * rounds, "rounds", enabled=progress) as bar:
        runs = [interleaved(runners, tensor, rounds, bar=bar) for _ in range(2)]
    ms = {name: (runs[0][name] + runs[1][name]) / 2 for name in runners}
    return ms, {name: abs(runs[0][name] - runs[1][name]) / ms[name] for name in runners}


def fastest(ms: dict[str, float], allowed, spread: dict[str, float] | None = None) -> tuple[str | None, list[str]]:
    """The fastest of ``allowed`` by ``ms``, and every allowed name within the larger of the two timings'
    spreads of it (the tie, fastest first); (None, []) when none of them was timed."""
    timed = sorted((name for name in allowed if ms.get(name)), key=ms.get)
    if not timed:
        return None, []
    best, spread = timed[0], spread or {}
    tied = [n for n in timed if ms[n] <= ms[best] * (1 + max(spread.get(n, 0.0), spread.get(best, 0.0)))]
    return best, tied


def sample_input(hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A fixed input tensor of the model's size (latency does not depend on content here)."""
    return np.random.default_rng(seed).random((1, 3, *hw), dtype=np.float32)


def latency_ratio(
    fp32_model,
    int8_model,
    hw: tuple[int, int],
    ep: str = "cpu",
    threads: int | None = 1,
    rounds: int = 30,
    samples: dict[str, list[float]] | None = None,
) -> dict:
    """{fp32_ms, int8_ms, ratio, threads} for one EP, FP32 and INT8 interleaved (``samples``: see ``interleaved``)."""
    runners = {"fp32": Runner(fp32_model, ep, threads, spin=False), "int8": Runner(int8_model, ep, threads, spin=False)}
    ms = interleaved(runners, sample_input(hw), rounds, samples=samples)
    return {
        "ep": ep,
        "threads": threads,
        "fp32_ms": round(ms["fp32"], 3),
        "int8_ms": round(ms["int8"], 3),
        "ratio": round(ms["int8"] / ms["fp32"], 4),
    }
