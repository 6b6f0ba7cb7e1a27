"""The cache serves only what it wrote: verified entries, data-only formats, a stand-in for a folder that
cannot take files, and `quantkit cache` info and prune."""

import builtins
import errno
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

import graphs
from quantkit import cache
from quantkit import quantize
from quantkit.errors import CacheError
from quantkit.manifest import Case, ConfigSpec
from quantkit.pipeline import CasePipeline
from quantkit.quantization.rewrite import rewritten_copy

STATIC = ConfigSpec("static", "default")


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    """Each test sees the cache as a new process would: no memoised hashes, folders or stand-in note."""
    for name, value in (
        ("_HASHES", {}),
        ("_CHECKED", set()),
        ("_STANDINS", {}),
        ("_fallback_note", []),
        ("_fallback_noted", False),
    ):
        monkeypatch.setattr(cache, name, value)


@pytest.fixture
def pipe(tiny_model, calib_dir, tmp_path):
    return lambda: CasePipeline(Case("tiny", tiny_model, calib_dir), cache_dir=tmp_path / "cache")


def _entry(root: Path) -> Path:
    (model,) = (root / "models").glob("*.onnx")
    return model


def _rebuilt(result, entry: Path, what: str) -> None:
    assert any(what in n and "discarded and rebuilt" in n for n in result.notes), result.notes
    onnx.checker.check_model(onnx.load(str(entry)))
    assert cache.read(entry) is not None


def test_a_truncated_model_is_rebuilt_not_served(pipe, tmp_path):
    first = pipe().quantized(STATIC)
    entry = _entry(tmp_path / "cache")
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2])
    again = pipe().quantized(STATIC)
    _rebuilt(again, entry, "truncated")
    assert entry.read_bytes() == good and again.output == first.output
    assert not any("discarded" in n for n in pipe().quantized(STATIC).notes)  # the rebuilt entry is served quietly


def test_a_replaced_model_is_rebuilt_not_served(pipe, tmp_path):
    pipe().quantized(STATIC)
    entry = _entry(tmp_path / "cache")
    model = onnx.load(str(entry))
    model.graph.initializer[0].raw_data = bytes(reversed(model.graph.initializer[0].raw_data))  # valid, same size
    onnx.save(model, str(entry))
    cache._HASHES.clear()  # a later run: nothing memoised
    _rebuilt(pipe().quantized(STATIC), entry, "sha256 mismatch")


def test_a_half_written_model_is_rebuilt_not_served(pipe, tmp_path):
    pipe().quantized(STATIC)
    entry = _entry(tmp_path / "cache")
    cache.meta_path(entry).unlink()  # the writer died between the model and its record
    _rebuilt(pipe().quantized(STATIC), entry, "half-written")


def test_entries_record_hash_size_and_versions(pipe, tmp_path):
    pipe().quantized(STATIC)
    entry = _entry(tmp_path / "cache")
    meta = json.loads(cache.meta_path(entry).read_text())
    assert meta["size"] == entry.stat().st_size and len(meta["sha256"]) == 64
    assert {k: meta[k] for k in ("quantkit", "code", "onnxruntime")} == cache.versions()
    assert "quantkit" in (tmp_path / "cache" / cache.TAG).read_text()  # backup tools and prune know it


def test_a_corrupt_range_entry_is_rebuilt(tiny_model, calib_dir, tmp_path):
    ranges = tmp_path / "ranges"
    quantize(tiny_model, tmp_path / "a.onnx", calib=calib_dir, range_cache=ranges, progress=False)
    (entry,) = ranges.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    again = quantize(tiny_model, tmp_path / "b.onnx", calib=calib_dir, range_cache=ranges, progress=False)
    assert any("truncated" in n and "discarded and rebuilt" in n for n in again.notes), again.notes
    assert not any("reused from the range cache" in n for n in again.notes)
    third = quantize(tiny_model, tmp_path / "c.onnx", calib=calib_dir, range_cache=ranges, progress=False)
    assert any("reused from the range cache" in n for n in third.notes)


def test_a_crafted_range_file_is_never_run(tiny_model, calib_dir, tmp_path):
    """A pickle whose __reduce__ creates a file, where the old .pkl and the new .npz entry lie, with a record
    that matches it: nothing runs, the ranges are collected again."""
    ranges, marker = tmp_path / "ranges", tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return open, (str(marker), "w")

    quantize(tiny_model, tmp_path / "a.onnx", calib=calib_dir, range_cache=ranges, progress=False)
    (entry,) = ranges.glob("*.npz")
    entry.with_suffix(".pkl").write_bytes(pickle.dumps(Evil()))
    buffer = io.BytesIO()
    np.savez(buffer, __index__=np.array([Evil()], dtype=object))
    entry.write_bytes(buffer.getvalue())
    cache.record(entry)  # the attacker controls the whole folder, records included
    again = quantize(tiny_model, tmp_path / "b.onnx", calib=calib_dir, range_cache=ranges, progress=False)
    assert not marker.exists()
    assert any("not quantkit's range data" in n for n in again.notes), again.notes
    assert not any("reused from the range cache" in n for n in again.notes)


def test_a_replaced_rewritten_model_is_rebuilt(tmp_path):
    model = graphs.save(graphs.tiny_yolo(opset=17), tmp_path / "tiny.onnx")
    out = rewritten_copy(model, tmp_path / "cache")
    good = out.read_bytes()
    out.write_bytes(Path(model).read_bytes())  # another valid model
    notes = []
    assert rewritten_copy(model, tmp_path / "cache", notes) == out and out.read_bytes() == good
    assert any("rewritten/" in n and "discarded and rebuilt" in n for n in notes), notes


@pytest.fixture
def read_only(monkeypatch, tmp_path):
    """Every write under the returned folder fails with EROFS, as on a read-only mount (chmod does not stop root)."""
    root = tmp_path / "ro-cache"
    root.mkdir()

    def refuse(path, writing=True):
        if writing and Path(path).absolute().is_relative_to(root):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    monkeypatch.setattr(
        builtins,
        "open",
        lambda file, mode="r", *a, **k: (
            refuse(file, isinstance(file, (str, Path)) and any(c in mode for c in "wax+")),
            real_open(file, mode, *a, **k),
        )[1],
    )
    monkeypatch.setattr(
        os,
        "open",
        lambda path, flags, *a, **k: (
            refuse(path, bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))),
            real_os_open(path, flags, *a, **k),
        )[1],
    )
    monkeypatch.setattr(os, "mkdir", lambda path, *a, **k: (refuse(path), real_mkdir(path, *a, **k))[1])
    return root


def test_a_read_only_cache_falls_back_and_notes_it_once(tiny_model, calib_dir, read_only, monkeypatch, tmp_path):
    pipe = CasePipeline(Case("tiny", tiny_model, calib_dir), cache_dir=read_only)
    first = pipe.quantized(STATIC)
    second = pipe.quantized(ConfigSpec("qop", "qoperator"))
    assert [n for n in first.notes if "cannot take files" in n and "Read-only" in n], first.notes
    assert not any("cannot take files" in n for n in second.notes)  # once
    for result in (first, second):
        assert Path(result.output).is_file() and not Path(result.output).is_relative_to(read_only)
    assert not any(read_only.iterdir())
    monkeypatch.setenv("QUANTKIT_CACHE", str(read_only))  # `quantkit quantize` on a read-only QUANTKIT_CACHE
    assert quantize(tiny_model, tmp_path / "q.onnx", calib=calib_dir, progress=False).output_bytes > 0


def test_a_full_disk_keeps_the_entry_in_the_stand_in(tmp_path):
    calls, notes = [], []

    def write(target: Path) -> dict:
        calls.append(target)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        target.write_bytes(b"data")
        return {}

    path, meta = cache.store(tmp_path / "cache" / "models" / "m.onnx", write, notes)
    assert calls[0].parent == tmp_path / "cache" / "models" and path.parent != calls[0].parent
    assert path.read_bytes() == b"data" and meta["size"] == 4
    assert len(notes) == 1 and "No space left" in notes[0]


def test_the_stand_in_is_removed_at_exit(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    code = (
        "import sys; from pathlib import Path; from quantkit import cache; "
        f"print(cache.folder(Path({str(tmp_path / 'file' / 'cache')!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out and not Path(out).exists()


def test_code_digest_covers_every_module(tmp_path):
    package = tmp_path / "quantkit"
    shutil.copytree(Path(cache.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = cache.code_digest(package)
    (package / "suite").mkdir(exist_ok=True)
    (package / "quantization" / "weights.py").rename(package / "suite" / "weights.py")
    assert cache.code_digest.__wrapped__(package) != before  # past the lru_cache: same folder, new layout


# -- quantkit cache ---------------------------------------------------------------------------------
def _planted(root: Path) -> dict[str, Path]:
    """A cache with one entry of each standing."""
    models = root / "models"
    models.mkdir(parents=True)
    (root / cache.TAG).write_text(cache.TAG_TEXT)
    paths = {name: models / f"{name}.onnx" for name in ("current", "old_version", "corrupt", "orphan", "unused")}
    for name, path in paths.items():
        path.write_bytes(name.encode() * 100)
        cache.record(path)
    meta = json.loads(cache.meta_path(paths["old_version"]).read_text())
    cache.meta_path(paths["old_version"]).write_text(json.dumps({**meta, "onnxruntime": "1.0.0"}))
    paths["corrupt"].write_bytes(b"x")
    cache.meta_path(paths["orphan"]).unlink()
    long_ago = time.time() - 30 * 86400
    for path in (paths["orphan"], cache.meta_path(paths["unused"])):
        os.utime(path, (long_ago, long_ago))
    paths["lock"] = models / "current.onnx.lock"
    paths["lock"].touch()
    os.utime(paths["lock"], (long_ago, long_ago))
    (root / "trt").mkdir()
    paths["engine"] = root / "trt" / "engine.trt"
    paths["engine"].write_bytes(b"e" * 1000)
    os.utime(paths["engine"], (long_ago, long_ago))
    return paths


def test_cache_info_by_kind(tmp_path, run_cli, monkeypatch):
    root = tmp_path / "cache"
    _planted(root)
    code, out, err = run_cli("cache", "info", "--dir", root, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["kinds"]["models"]["entries"] == 5 and report["kinds"]["trt"] == {"entries": 1, "bytes": 1000}
    assert set(report["kinds"]) == {"models", "ranges", "rewritten", "trt", "other"}
    monkeypatch.setenv("QUANTKIT_CACHE", str(root))
    code, out, _ = run_cli("cache")
    assert code == 0 and out.startswith(f"{root}: ") and "models" in out and "trt" in out


def test_cache_prune_removes_what_no_longer_serves(tmp_path, run_cli):
    root = tmp_path / "cache"
    paths = _planted(root)
    code, out, _ = run_cli("cache", "prune", "--dir", root, "--dry-run")
    assert code == 0 and "would remove models/old_version.onnx" in out and paths["old_version"].exists()
    code, out, err = run_cli("cache", "prune", "--dir", root)
    assert code == 0, err
    gone = {name for name, path in paths.items() if not path.exists()}
    assert gone == {"old_version", "corrupt", "orphan", "lock"}, out
    assert not cache.meta_path(paths["old_version"]).exists() and "freed" in out
    code, out, _ = run_cli("cache", "prune", "--dir", root, "--older-than", "7")
    assert not paths["unused"].exists() and not paths["engine"].exists() and paths["current"].exists()
    code, out, _ = run_cli("cache", "prune", "--dir", root, "--all")
    assert code == 0 and not paths["current"].exists() and (root / cache.TAG).exists()


def test_cache_prune_never_leaves_the_folder(tmp_path, run_cli):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.onnx").write_bytes(b"keep")
    root = tmp_path / "cache"
    _planted(root)
    (root / "models" / "link").symlink_to(outside)
    (root / "models" / "file-link.onnx").symlink_to(outside / "keep.onnx")
    code, _, err = run_cli("cache", "prune", "--dir", root, "--all")
    assert code == 0, err
    assert (outside / "keep.onnx").read_bytes() == b"keep" and not (root / "models" / "link").is_symlink()


def test_cache_prune_refuses_a_folder_that_is_not_a_cache(tmp_path, run_cli):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("years of work")
    code, out, err = run_cli("cache", "prune", "--dir", tmp_path / "home", "--all")
    assert code == 2 and err.count("\n") == 1 and "does not look like a quantkit cache" in err
    assert (tmp_path / "home" / "thesis.tex").exists()
    with pytest.raises(CacheError):
        cache.prune(tmp_path / "home")
