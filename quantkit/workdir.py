"""quantkit's private temporary folders: one per quantization, owned by a process, swept once it is gone.

Each folder (``quantkit-*`` in the system temp dir) holds a ``pid`` file naming its owner. A run
that is killed cannot remove its folder (12-24 MB for a small detector); the next run removes the
folders whose owner no longer exists, and never one whose owner is alive.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "quantkit-"
PID_FILE = "pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except (OverflowError, ValueError):
        return False
    return True


def sweep(root: str | Path | None = None) -> list[Path]:
    """Remove the ``quantkit-*`` folders under ``root`` (the system temp dir) whose owning process is gone."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            pid = int((folder / PID_FILE).read_text())
        except (OSError, ValueError):  # not ours, or its owner has not written the pid yet
            continue
        if pid > 0 and pid != os.getpid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def private_dir():
    """A fresh ``quantkit-*`` folder owned by this process, removed on exit; stale ones are swept first."""
    sweep()
    path = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        (path / PID_FILE).write_text(str(os.getpid()))
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
