"""A case's INT8 models, quantized once per cache key across runs and pytest-xdist workers.

The key is every input that shapes the quantized bytes: the model's bytes, the resolved config (CPU-dependent
defaults included), the calibration files, the input size, the onnxruntime/onnx versions and quantkit's own
code (hashed by folder, ``cache.code_digest``). Entries are written and verified by ``cache``; a file lock per
entry lets one worker quantize while the others wait for its result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Callable

from filelock import FileLock

from .. import cache, compat
from ..errors import CalibrationError, QuantkitError
from ..manifest import Case, ConfigSpec
from ..cpu import has_vnni
from ..progress import say
from .calibration import files_digest, load_calibration
from .quantizer import QuantConfig, QuantResult, quantize, resolve_config


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


class QuantCache:
    """The INT8 models of ``case``: ``quantized(spec)`` quantizes on a miss, reads the verified entry on a hit.

    ``holdout`` and ``hw`` are called when first needed (the validation images calibration must not draw
    from, and the input size): the caller computes them lazily."""

    def __init__(
        self,
        case: Case,
        cache_dir: Path,
        preset: str | None = None,
        progress: bool = False,
        holdout: Callable[[], list[Path]] = list,
        hw: Callable[[], tuple[int, int]] | None = None,
        fit: Callable[[], Callable] | None = None,
    ):
        """``holdout``, ``hw`` and ``fit`` (how the model's task fits an image to the input) are asked for only
        when a model is quantized."""
        self.case, self.cache_dir, self.preset, self.progress = case, Path(cache_dir), preset, progress
        self._holdout, self._hw, self._fit = holdout, hw, fit
        self._results: dict[str, QuantResult] = {}

    @cached_property
    def model_bytes(self) -> bytes:
        if not self.case.model.is_file():
            raise QuantkitError(f"case '{self.case.id}': model not found: {self.case.model}: fix the manifest path")
        return self.case.model.read_bytes()

    def config_for(self, spec: ConfigSpec) -> QuantConfig:
        """The config a spec resolves to (``preset`` forces every spec onto one preset, e.g. 'naive')."""
        return resolve_config(self.preset) if self.preset else resolve_config(spec.preset, **spec.overrides)

    def key(self, spec: ConfigSpec) -> str:
        config = self.config_for(spec)
        calib = (
            files_digest(self.case.calib, self.case.calib_count, exclude=self._holdout())
            if config.mode == "static"
            else "-"
        )
        parts = [
            _sha(self.model_bytes),
            json.dumps(asdict(config), sort_keys=True),
            f"vnni={has_vnni()}",
            f"s8convinteger={compat.conv_integer_int8_weights()}",
            calib,
            str(self.case.imgsz),
            compat.ORT_VERSION,
            compat.ONNX_VERSION,
            cache.code_digest(),
        ]
        return _sha("|".join(parts).encode())

    def quantized(self, spec: ConfigSpec) -> QuantResult:
        """The (case, config) INT8 model with this run's cache notes first."""
        if spec.id in self._results:
            return self._results[spec.id]
        config = self.config_for(spec)
        if config.mode == "static" and not self.case.calib:
            raise CalibrationError(
                f"case '{self.case.id}' has no calibration folder: static quantization needs "
                "calibration images (--calib DIR, or calib in the manifest)"
            )
        notes: list[str] = []  # what the cache had to say: this run's, never stored with the entry
        model_path = (
            cache.kind_folder(self.cache_dir, "models", notes) / f"{self.case.id}--{spec.id}--{self.key(spec)}.onnx"
        )
        with FileLock(str(model_path) + ".lock"):
            entry = cache.read(model_path, notes)
            if entry is None:
                say(
                    f"{self.case.id}/{spec.id}: quantizing ({config.mode}, preset {self.preset or spec.preset})",
                    self.progress,
                )
                calib = (
                    load_calibration(
                        self.case.calib,
                        self._hw(),
                        self.case.calib_count,
                        progress=self.progress,
                        exclude=self._holdout(),
                        **({"fit": self._fit()} if self._fit else {}),
                    )
                    if config.mode == "static"
                    else None
                )
                model_path, entry = cache.store(
                    model_path,
                    lambda path: {
                        "result": asdict(
                            quantize(
                                self.case.model,
                                path,
                                preset=self.preset or spec.preset,
                                config=config,
                                calib=calib,
                                imgsz=self.case.imgsz,
                                progress=self.progress,
                                range_cache=self.cache_dir / "ranges",
                            )
                        )
                    },
                    notes,
                )
        result = QuantResult(**{**entry["result"], "output": str(model_path)})  # the cache may have moved (CI restores)
        result.notes = notes + result.notes
        self._results[spec.id] = result
        return result
