"""Throughput under load: several concurrent streams, each its own session in its own thread.

onnxruntime releases the GIL inside ``InferenceSession.run`` (OpenVINO inside ``InferRequest.infer``,
for the peer's rows: ``peer.throughput_rows``), so streams in threads of one process run in parallel.
Sessions keep onnxruntime's default thread spinning (what a deployment gets), unlike the interleaved
timing of :mod:`quantkit.measure.bench`, where idle sessions take turns.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Callable

from .. import compat
from .bench import sample_input
from ..cpu import cpu_info
from ..errors import QuantkitError
from ..progress import Progress
from .session import Runner

WARMUP_RUNS = 3


def cores() -> int:
    """Logical CPUs of this machine (os.cpu_count)."""
    return os.cpu_count() or 1


def default_counts() -> list[int]:
    """1 and every core, deduplicated: the default --threads and --streams."""
    return sorted({1, cores()})


def parse_counts(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4] (sorted, deduplicated); anything but positive integers is a ValueError."""
    try:
        values = sorted({int(part) for part in text.split(",")})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise ValueError(f"takes positive integers separated by commas (e.g. 1,2), got '{text}'")
    return values


def _stream(
    runner: Runner,
    tensor,
    barrier: threading.Barrier,
    start: list[float],
    seconds: float,
    spans: list[tuple[float, float]],
    errors: list[BaseException],
) -> None:
    try:
        for _ in range(WARMUP_RUNS):
            runner.run(tensor)
        barrier.wait()
        end, done = start[0] + seconds, 0.0
        while done < end:  # at least one inference; none starts after the window
            begin = time.perf_counter()
            runner.run(tensor)
            done = time.perf_counter()
            spans.append((begin, done))
    except threading.BrokenBarrierError:
        pass  # another stream failed: its error is reported
    except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
        errors.append(exc)
        barrier.abort()


def measure(
    model: str | Path,
    hw: tuple[int, int],
    ep: str = "cpu",
    threads: int = 1,
    streams: int = 1,
    seconds: float = 2.0,
    runner: Callable[[], Runner] | None = None,
) -> dict:
    """One setting: ``streams`` sessions of ``threads`` intra-op threads each, started together behind a
    barrier after a warm-up and run for the same ``seconds`` of wall-clock time.

    ``latency_ms``: median time per inference over every stream; ``fps``: inferences of all streams per
    second of the window (from the barrier to the last stream's last inference). ``runner`` makes one
    stream's session (default: an onnxruntime ``Runner(model, ep, threads)``; another runtime passes its
    own, e.g. the OpenVINO peer's ``OVRunner``); it is called once per stream.
    """
    runners = [runner() if runner else Runner(model, ep, threads) for _ in range(streams)]
    tensor = sample_input(hw)
    start: list[float] = [0.0]
    barrier = threading.Barrier(streams, action=lambda: start.__setitem__(0, time.perf_counter()))
    spans: list[list[tuple[float, float]]] = [[] for _ in range(streams)]
    errors: list[BaseException] = []
    workers = [
        threading.Thread(target=_stream, args=(runner, tensor, barrier, start, seconds, spans[i], errors), daemon=True)
        for i, runner in enumerate(runners)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise QuantkitError(f"{Path(model).name} failed on '{ep}' during the run ({compat.error_line(errors[0])})")
    done = [s for stream in spans for s in stream]
    window = max(e for _, e in done) - start[0]
    return {
        "model": str(model),
        "ep": ep,
        "threads": threads,
        "streams": streams,
        "latency_ms": round(1e3 * statistics.median(e - b for b, e in done), 3),
        "fps": round(len(done) / window, 1),
        "oversubscribed": threads * streams > cores(),
    }


def grid(
    models: list[str | Path],
    hws: list[tuple[int, int]],
    eps: list[str],
    threads: list[int],
    streams: list[int],
    seconds: float = 2.0,
) -> list[dict]:
    """``measure`` for every model x EP x threads x streams. Every (model, EP) is loaded once first, so an
    EP that is unknown or a model that does not load there fails before any timing."""
    for model in models:
        for ep in eps:
            Runner(model, ep, threads[0])
    return [
        measure(model, hw, ep, t, s, seconds)
        for model, hw in zip(models, hws)
        for ep in eps
        for t in threads
        for s in streams
    ]


def best(rows: list[dict]) -> dict[str, dict]:
    """Per model: the row of lowest latency and the row of highest throughput."""
    picks: dict[str, dict] = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        picks[model] = {
            "latency": min(mine, key=lambda r: r["latency_ms"]),
            "throughput": max(mine, key=lambda r: r["fps"]),
        }
    return picks


def machine() -> dict:
    """CPU brand and INT8 flags, core count, onnxruntime version and the 1-minute load average (taken
    before a run: other work on a shared machine lowers what the streams get)."""
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return {"cpu": cpu_info(), "cores": cores(), "onnxruntime": compat.ORT_VERSION, "load_before": load}


def best_throughput(
    pairs: list[tuple[str, Path, str]], hw: tuple[int, int], seconds: float = 1.0, progress: bool = False
) -> dict | None:
    """The highest-throughput setting over default threads x streams of each (name, path, EP) pair (check passes
    only the pairs that passed that EP's gates); a pair that does not run is left out. None when nothing ran.
    ``progress``: the settings' progress on stderr (``quantkit.progress``)."""
    rows, settings = [], [(t, s) for t in default_counts() for s in default_counts()]
    with Progress("throughput", len(pairs) * len(settings), "settings", enabled=progress) as bar:
        for name, path, ep in pairs:
            mine = []
            try:
                for t, s in settings:
                    mine.append({**measure(path, hw, ep, t, s, seconds), "model": name})
                    bar.update()
            except QuantkitError:
                bar.update(len(settings) - len(mine))  # the pair's settings not run: done
                continue
            rows += mine
    return max(rows, key=lambda r: r["fps"]) if rows else None


def describe(row: dict | None) -> str:
    """One line for a ``best_throughput`` row."""
    if row is None:
        return "not measured (no deployable model ran)"
    return (
        f"{row['model']} on {row['ep']}, {row['threads']} thread(s) x {row['streams']} stream(s): {row['fps']} "
        "images/s "
        f"(median latency {row['latency_ms']} ms)"
    )
