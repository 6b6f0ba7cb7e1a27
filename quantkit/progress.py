"""Progress of long steps on stderr, written once for every long loop (calibration, quantize_static, evaluation,
timing).

On a terminal a step with a count is a tqdm bar, as before. Elsewhere (a CI log, stderr piped to a file) a bar
is noise, so the step writes plain lines instead: one at least every ``INTERVAL_S`` seconds while it runs, e.g.
``quantkit: calibration 48/100 images, 31 s``, and one when it ends if it printed any. A step the caller
``announce``s (calibration, onnxruntime's quantize_static) also says when it starts and how long it took, on a
terminal too. A step shorter than the interval and not announced prints nothing, so the one-line errors of bad
input stay one line. ``enabled=False`` (the API's ``progress=False``, ``--json``) prints nothing at all; nothing
is ever written to stdout.

While a step runs in plain-line mode, a background thread writes the line when the step's loop does not come
round in time (one slow image, onnxruntime working inside a single call); only the innermost open step speaks,
and only when no line was written for ``INTERVAL_S``. Tests lower ``INTERVAL_S`` (or pass ``interval``).
"""

from __future__ import annotations

import sys
import threading
import time

from tqdm import tqdm

INTERVAL_S = 30.0  # plain-line mode: at least one line this often while a step runs
STREAM = None  # where progress goes when a caller names no stream (None: stderr); the pytest plugin sets it
_LOCK = threading.RLock()
_OPEN: list["Progress"] = []  # open plain-line steps, innermost last
_last_line = 0.0  # time.monotonic() of the last plain line written


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        return False


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"


def say(text: str, enabled: bool = True, stream=None) -> None:
    """One plain line ``quantkit: <text>`` on stderr (a phase starting); it counts as the last line written."""
    if enabled:
        _write(stream or STREAM or sys.stderr, f"quantkit: {text}")


def _write(stream, line: str) -> None:
    global _last_line
    with _LOCK:
        print(line, file=stream, flush=True)
        _last_line = time.monotonic()


class Progress:
    """A long step: ``with Progress("calibration", total=100, unit="images", enabled=progress) as bar:`` then
    ``bar.update(n)`` (or ``for x in bar.iter(items)``). ``total=None``: a step without a count (elapsed time
    only). ``announce``: a line at its start and one with the elapsed time at its end, whatever it lasts.
    Leaving the ``with`` on an exception writes no end line (the error says what happened)."""

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        unit: str = "",
        *,
        enabled: bool = True,
        announce: bool = False,
        interval: float | None = None,
        stream=None,
    ):
        self.desc, self.total, self.unit, self.announce = desc, total, unit, announce
        self.stream = stream or STREAM or sys.stderr
        self.interval = INTERVAL_S if interval is None else interval
        self.mode = None if not enabled else "bar" if _is_tty(self.stream) else "lines"
        self.n, self.start, self.lines = 0, time.monotonic(), 0
        self._bar, self._thread, self._stop = None, None, threading.Event()

    # -- the caller's side -----------------------------------------------------------------------
    def __enter__(self) -> "Progress":
        self.start = time.monotonic()
        if self.mode is None:
            return self
        if self.announce:
            count = f" 0/{self.total} {self.unit}" if self.total is not None else ""
            _write(self.stream, f"quantkit: {self.desc}{count} ...")
        if self.mode == "bar":
            if self.total is not None:
                self._bar = tqdm(
                    total=self.total, desc=self.desc, unit=self.unit or "it", leave=False, file=self.stream
                )
            return self
        with _LOCK:
            _OPEN.append(self)
        self._thread = threading.Thread(target=self._beat, name=f"quantkit-progress {self.desc}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.mode is None:
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            with _LOCK:
                if self in _OPEN:
                    _OPEN.remove(self)
        if self._bar is not None:
            self._bar.close()
        if exc_type is None and (self.announce or self.lines):
            self._line(done=True)

    def update(self, n: int = 1) -> None:
        """``n`` more done (held at ``total``); in plain-line mode a line when one is due."""
        if self.total is not None:
            n = max(0, min(n, self.total - self.n))
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and self._due():
            self._line()

    def iter(self, items):
        """Each of ``items``, counting one as done when the caller asks for the next."""
        for item in items:
            yield item
            self.update()

    # -- lines -----------------------------------------------------------------------------------
    def _due(self) -> bool:
        return time.monotonic() - max(_last_line, self.start) >= self.interval

    def _line(self, done: bool = False) -> None:
        elapsed = _seconds(time.monotonic() - self.start)
        if self.total is None:
            text = f"{self.desc} done, {elapsed}" if done else f"{self.desc}, {elapsed}"
        else:
            text = f"{self.desc} {self.n}/{self.total} {self.unit}, {elapsed}" + (", done" if done else "")
        with _LOCK:
            self.lines += 0 if done else 1
            _write(self.stream, f"quantkit: {text}")

    def _beat(self) -> None:
        """Plain-line mode: the line when the loop does not come round in time; only the innermost open step
        speaks."""
        while not self._stop.wait(max(0.05, self.interval - (time.monotonic() - max(_last_line, self.start)))):
            with _LOCK:
                if _OPEN and _OPEN[-1] is self and self._due():
                    self._line()
