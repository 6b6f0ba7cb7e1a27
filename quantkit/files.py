"""Writing files safely: every output goes through a temporary file in its own folder, then one rename,
so a reader never sees half a file and a crash leaves the old file whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from .errors import OutputError


def temp_beside(path: Path) -> tuple[int, str]:
    """A new temporary file next to ``path``, with the permissions open() gives (0666 less the umask;
    tempfile.mkstemp would give 0600). Thread-safe: no umask juggling."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = str(path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def check_writable_folder(folder: str | Path, option: str = "--out") -> None:
    """Raise OutputError unless ``folder`` exists or can be created and takes files; leaves nothing behind."""
    folder = Path(folder)
    created, probe = [], folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot write into {option} {folder}: {probe} is a file, not a folder: pass a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise OutputError(
            f"cannot write into {option} {folder} ({exc.strerror or exc}): pass a writable folder"
        ) from None
    finally:
        for made in created:
            with contextlib.suppress(OSError):
                made.rmdir()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` through a temporary file in the same folder, then rename it into place."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` through a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_atomic(src: str | Path, path: str | Path) -> None:
    """Copy ``src`` to ``path`` through a temporary file beside it, flushed to disk before the rename."""
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with open(src, "rb") as source, os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(source, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
