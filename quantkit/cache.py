"""quantkit's cache folder: entries that prove they are what quantkit wrote, a stand-in where the folder
cannot take files, and what `quantkit cache` reports and prunes.

Every entry is a data file plus ``<file>.meta.json``: the sha256 and size of what was written and the
quantkit version, code digest and onnxruntime version that wrote it, so prune can tell stale entries. A
read checks the size every time and the sha256 once per process per file (the suite's hot path reads the
same model many times); a missing record or a mismatch discards the entry, and the caller rebuilds it and
says so. Entries are data only (ONNX, JSON, .npz without pickles): a cache restored from a shared CI cache
runs no code. The cache is an optimisation: a folder that is read-only, unwritable or full is replaced, for
this process, by a temporary folder removed at exit, and that is noted once.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from . import compat, providers
from .errors import CacheError
from .files import write_bytes_atomic, write_text_atomic

META = ".meta.json"


def default_cache_dir() -> Path:
    """$QUANTKIT_CACHE, else the XDG cache folder (quantized models, ranges, TensorRT engines, the peer)."""
    if os.environ.get("QUANTKIT_CACHE"):
        return Path(os.environ["QUANTKIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "quantkit"


KINDS = ("models", "ranges", "rewritten", *providers.cache_kinds())  # anything else in the folder is "other"
ENTRY_KINDS = ("models", "ranges", "rewritten")  # folders whose files carry a record
TAG = "CACHEDIR.TAG"
TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by quantkit (https://bford.info/cachedir/).\n"
    "# Everything here can be rebuilt: `quantkit cache prune` or delete the folder.\n"
)
KNOWN = (*KINDS, "peer", TAG)  # what a quantkit cache holds at its top, tag or not (caches made before the tag)
IN_PROGRESS_S = 3600  # files without a record, temp files and locks younger than this may belong to a running writer

_HASHES: dict[str, tuple[tuple, str]] = {}
_CHECKED: set[Path] = set()
_STANDINS: dict[Path, Path] = {}
_fallback_note: list[str] = []  # the one note of a stand-in, until a caller's notes take it
_fallback_noted = False


@functools.lru_cache(maxsize=None)
def code_digest(here: Path = Path(__file__).parent) -> str:
    """Hash of every module of the quantkit package, by relative path: moving or adding a file changes it too."""
    sha = hashlib.sha256()
    for path in sorted(here.rglob("*.py"), key=lambda p: p.relative_to(here).as_posix()):
        sha.update(path.relative_to(here).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def versions() -> dict[str, str]:
    """What an entry records of its writer, and what prune compares."""
    from . import __version__  # the package's __init__ imports this module's importers

    return {"quantkit": __version__, "code": code_digest(), "onnxruntime": compat.ORT_VERSION}


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per process while its size, mtime and inode stay the same."""
    st = path.stat()
    stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    memo = _HASHES.get(str(path))
    if memo and memo[0] == stamp:
        return memo[1]
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    _HASHES[str(path)] = (stamp, sha.hexdigest())
    return sha.hexdigest()


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + META)


def note(notes: list[str] | None, text: str | None = None) -> None:
    """Add ``text`` to ``notes``, and the stand-in's note once per process (to the first notes that come by)."""
    global _fallback_noted
    if notes is None:
        return
    if _fallback_note and not _fallback_noted:
        notes.append(_fallback_note[0])
        _fallback_noted = True
    if text:
        notes.append(text)


# -- where entries go ------------------------------------------------------------------------------
def folder(path: Path, notes: list[str] | None = None) -> Path:
    """``path``, created, where it takes files; else this process's temporary stand-in for it."""
    path = Path(path)
    if path in _STANDINS:
        note(notes)
        return _STANDINS[path]
    if path not in _CHECKED:
        try:
            path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()
        except OSError as exc:
            return fall_back(path, exc, notes)
        _CHECKED.add(path)
    note(notes)
    return path


def kind_folder(root: Path, kind: str, notes: list[str] | None = None) -> Path:
    """``root``/``kind`` as ``folder`` gives it, with the cache-directory tag in ``root`` (backup tools skip it)."""
    usable = folder(Path(root) / kind, notes)
    if usable.parent == Path(root) and not (usable.parent / TAG).exists():
        with contextlib.suppress(OSError):
            write_text_atomic(usable.parent / TAG, TAG_TEXT)
    return usable


def fall_back(path: Path, exc: OSError, notes: list[str] | None = None) -> Path:
    """From now on in this process, a temporary folder (removed at exit) stands in for ``path``."""
    path = Path(path)
    if path not in _STANDINS:
        standin = Path(tempfile.mkdtemp(prefix=f"quantkit-cache-{path.name}-"))
        atexit.register(shutil.rmtree, standin, ignore_errors=True)
        _STANDINS[path] = standin
        if not _fallback_note:
            _fallback_note.append(
                f"cache: {path} cannot take files ({exc.strerror or exc}): this run caches in a "
                "temporary folder, removed at exit (point $QUANTKIT_CACHE at a writable folder)"
            )
    note(notes)
    return _STANDINS[path]


# -- entries ---------------------------------------------------------------------------------------
def _problem(path: Path) -> tuple[dict | None, str | None]:
    """The entry's record, and what is wrong with the entry (None: it is what was written)."""
    try:
        meta = json.loads(meta_path(path).read_text())
    except FileNotFoundError:
        return None, "has no record (half-written)" if path.exists() else "has a record but no file"
    except (OSError, ValueError):
        return None, "has an unreadable record"
    if not isinstance(meta, dict):
        return None, "has an unreadable record"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return meta, "has a record but no file"
    if size != meta.get("size"):
        return meta, f"is {size} bytes where {meta.get('size')} were written (truncated or replaced)"
    if file_sha256(path) != meta.get("sha256"):
        return meta, "differs from what was written (sha256 mismatch: replaced or corrupt)"
    return meta, None


def discard(path: Path) -> None:
    for item in (path, meta_path(path)):
        with contextlib.suppress(OSError):
            item.unlink()


def read(path: Path, notes: list[str] | None = None) -> dict | None:
    """The record of the entry at ``path`` when the file is what quantkit wrote; else None, with the entry
    discarded and a note that it is rebuilt (where something was there)."""
    path = Path(path)
    if not path.exists() and not meta_path(path).exists():
        return None
    meta, problem = _problem(path)
    if problem is None:
        with contextlib.suppress(OSError):  # the last use, for `prune --older-than`
            os.utime(meta_path(path))
        return meta
    discard(path)
    note(notes, f"cache: {path.parent.name}/{path.name} {problem}: discarded and rebuilt")
    return None


def record(path: Path, **extra) -> dict:
    """Write the record of the file now at ``path``: its hash and size, the writer's versions and ``extra``."""
    meta = {"sha256": file_sha256(path), "size": path.stat().st_size, **versions(), "created": time.time(), **extra}
    write_text_atomic(meta_path(path), json.dumps(meta))
    return meta


def store(path: Path, write: Callable[[Path], dict], notes: list[str] | None = None) -> tuple[Path, dict]:
    """Make the entry ``path``: ``write(target)`` puts the data at ``target`` and returns what to record beside
    hash and size. Where the folder cannot take it (read-only, full), it goes to the folder's stand-in instead.
    Returns where it went and its record."""
    target = folder(Path(path).parent, notes) / Path(path).name
    try:
        return target, record(target, **write(target))
    except OSError as exc:
        if target.parent in _STANDINS.values():
            raise
        discard(target)
        target = fall_back(target.parent, exc, notes) / target.name
        return target, record(target, **write(target))


def store_bytes(path: Path, data: bytes, notes: list[str] | None = None, **extra) -> Path:
    """``store`` for data in memory."""
    return store(path, lambda target: (write_bytes_atomic(target, data), extra)[1], notes)[0]


# -- info and prune --------------------------------------------------------------------------------
@dataclass
class Removal:
    path: Path
    bytes: int
    reason: str


def _kind(root: Path, path: Path) -> str:
    top = path.relative_to(root).parts[0]
    return top if top in KINDS and len(path.relative_to(root).parts) > 1 else "other"


def _files(root: Path):
    """Every file and link under ``root`` (links are never followed), but the tag."""
    for base, dirs, names in os.walk(root):
        for name in sorted(names) + sorted(d for d in dirs if os.path.islink(os.path.join(base, d))):
            path = Path(base) / name
            if path != root / TAG:
                yield path


def _size(path: Path) -> int:
    with contextlib.suppress(OSError):
        return path.lstat().st_size
    return 0


def info(root: Path) -> dict:
    """Where the cache is, its size, and its entries by kind (a data file and its record are one entry)."""
    root = Path(root)
    kinds = {kind: {"entries": 0, "bytes": 0} for kind in (*KINDS, "other")}
    for path in _files(root) if root.is_dir() else ():
        kind = kinds[_kind(root, path)]
        kind["bytes"] += _size(path)
        if not (path.name.endswith((META, ".lock", ".tmp")) and _kind(root, path) in ENTRY_KINDS):
            kind["entries"] += 1
    return {
        "path": str(root),
        "exists": root.is_dir(),
        "bytes": sum(k["bytes"] for k in kinds.values()),
        "entries": sum(k["entries"] for k in kinds.values()),
        "kinds": kinds,
    }


def looks_like_cache(root: Path) -> bool:
    """quantkit's tag is there, or (a cache from before the tag) only quantkit's folders are."""
    with contextlib.suppress(OSError):
        if "quantkit" in (root / TAG).read_text():
            return True
    names = {p.name for p in root.iterdir()} if root.is_dir() else set()
    return bool(names) and names <= set(KNOWN)


def _stale_lock(path: Path) -> bool:
    """An old lock that nobody holds."""
    if time.time() - path.lstat().st_mtime < IN_PROGRESS_S:
        return False
    try:
        with FileLock(str(path), timeout=0):
            return True
    except Timeout:
        return False


def _why(root: Path, path: Path, now: float, cutoff: float | None, current: dict) -> str | None:
    """Why ``path`` goes, or None."""
    st = path.lstat()
    young = now - st.st_mtime < IN_PROGRESS_S
    if path.name.endswith(".lock"):
        return "stale lock" if _stale_lock(path) else None
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        return None if young else "unfinished write"
    if _kind(root, path) in ENTRY_KINDS and not path.is_symlink() and path.parent.parent == root:
        data = path.with_name(path.name[: -len(META)]) if path.name.endswith(META) else path
        if data != path and data.exists():
            return None  # decided with its data file
        meta, problem = _problem(data)
        if problem:
            return None if young and meta is None and data.exists() else f"orphaned or corrupt: {problem}"
        stale = [f"{key} {meta.get(key)}" for key in current if meta.get(key) != current[key]]
        if stale:
            return "written by another version: " + ", ".join(stale)
        used = meta_path(data).lstat().st_mtime  # read() touches the record; prune itself reads it, so not atime
    else:
        used = max(st.st_mtime, st.st_atime)  # onnxruntime's engines, the peer's models: their own access times
    if cutoff is not None and used < cutoff:
        return f"not used for {(now - used) / 86400:.0f} days"
    return None


def prune(
    root: Path, older_than_days: float | None = None, everything: bool = False, dry_run: bool = False
) -> list[Removal]:
    """Remove entries of other quantkit/onnxruntime versions, orphaned or corrupt files, stale locks and
    unfinished writes; with ``older_than_days`` also what was not used for that long; with ``everything``
    all but the tag. Never leaves ``root`` (links are removed, not followed). Returns what went (would go)."""
    root = Path(root)
    if not root.exists():
        return []
    if not looks_like_cache(root):
        raise CacheError(
            f"{root} does not look like a quantkit cache (no quantkit {TAG}, and it holds "
            f"more than {'/, '.join(KNOWN[:-1])}/): refusing to prune it; check $QUANTKIT_CACHE"
        )
    now, current = time.time(), versions()
    cutoff = now - older_than_days * 86400 if older_than_days is not None else None
    removals: dict[Path, Removal] = {}
    for path in _files(root):
        reason = "--all" if everything else _why(root, path, now, cutoff, current)
        if reason is None:
            continue
        data = path.with_name(path.name[: -len(META)]) if path.name.endswith(META) else path
        for item in dict.fromkeys([data, meta_path(data)] if _kind(root, path) in ENTRY_KINDS else [path]):
            if (item.is_symlink() or item.exists()) and item not in removals:
                removals[item] = Removal(item, _size(item), reason)
    if not dry_run:
        for removal in removals.values():
            with contextlib.suppress(FileNotFoundError):
                removal.path.unlink()
        if everything:
            for base, _, _ in os.walk(root, topdown=False):
                if Path(base) != root:
                    with contextlib.suppress(OSError):
                        Path(base).rmdir()
    return list(removals.values())
