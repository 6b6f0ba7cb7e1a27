"""Image folder -> preprocessed calibration tensors, and the reader onnxruntime's calibrator pulls from."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ..errors import CalibrationError
from ..manifest import DEFAULT_CALIB_COUNT
from ..preprocess import letterbox_image, list_images, read_image, to_bgr8
from ..progress import Progress

DEFAULT_COUNT = DEFAULT_CALIB_COUNT
# Ultralytics' maintainers advise at least this many calibration images for INT8; fewer get a note.
RECOMMENDED_COUNT = 300
HOLDOUT_MAX = 200  # held-out validation images taken from a calibration folder, at most


@dataclass
class CalibrationSet:
    """The chosen images letterboxed, read once and reused by every static config.

    Kept as uint8 pixels (a quarter of float32: 300 images at 640x640 are 369 MB, not 1.47 GB) and turned
    into float32 tensors a batch at a time (``batches``), the same values ``preprocess`` gives."""

    pixels: np.ndarray  # [n, 3, H, W] uint8, RGB
    files: list[str]
    skipped: list[str] = field(default_factory=list)  # unreadable files, by name
    available: int = 0  # images found in the folder

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def tensors(self) -> np.ndarray:
        """All images as one [n, 3, H, W] float32 array (made on each call: calibration itself reads ``batches``)."""
        return to_float(self.pixels)

    def batches(self, size: int):
        """[<=size, 3, H, W] float32 tensors, in order, one batch in memory at a time."""
        for start in range(0, len(self.pixels), size):
            yield to_float(self.pixels[start : start + size])

    def digest(self) -> bytes:
        """A content hash of the images as calibrated (the uint8 pixels and their float conversion)."""
        sha = hashlib.sha256(f"uint8/255 {self.pixels.shape}".encode())
        sha.update(memoryview(np.ascontiguousarray(self.pixels)).cast("B"))
        return sha.digest()

    def reader(self, input_name: str, batch: int = 1) -> "CalibrationReader":
        return CalibrationReader(self.pixels, input_name, batch)


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], exactly as ``preprocess.to_tensor`` divides; float input is returned as is."""
    if pixels.dtype != np.uint8:
        return pixels
    return np.ascontiguousarray(pixels, dtype=np.float32) / 255.0


class CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol (``get_next``, ``rewind``) over cached images (uint8 pixels,
    made float a call at a time, or float tensors).

    A model exported with a fixed batch gets ``batch`` images a call; the last call is filled up
    with images from the start of the set, so calibration ranges see only real images."""

    def __init__(self, tensors: np.ndarray, input_name: str, batch: int = 1):
        self._tensors, self._name, self._batch, self._i = tensors, input_name, max(batch, 1), 0

    def get_next(self) -> dict | None:
        if self._i >= len(self._tensors):
            return None
        rows = np.arange(self._i, self._i + self._batch) % len(self._tensors)
        self._i += self._batch
        return {self._name: to_float(self._tensors[rows])}

    def rewind(self) -> None:
        self._i = 0


def load_calibration(
    folder: str | Path,
    hw: tuple[int, int],
    count: int = DEFAULT_COUNT,
    seed: int = 0,
    progress: bool = True,
    exclude=(),
    fit=letterbox_image,
) -> CalibrationSet:
    """Choose ``count`` images from ``folder`` (seeded, like the seed's 100 of 600; never one of
    ``exclude``, the held-out validation images) and fit them to the input as the model's task does (``fit``:
    the letterbox, a classifier's centre crop).

    Unreadable files are skipped and counted; a folder with none readable is an error.
    """
    chosen, available = choose_files(folder, count, seed, exclude)
    pixels, used, skipped = None, [], []
    with Progress("reading calibration images", len(chosen), "images", enabled=progress) as bar:
        for path in bar.iter(chosen):
            img = read_image(path)
            if img is None:
                skipped.append(path.name)
                continue
            boxed = fit(to_bgr8(img), hw)[0]
            if pixels is None:  # one array filled in place: no list of per-image copies to concatenate
                pixels = np.empty((len(chosen), 3, *boxed.shape[:2]), np.uint8)
            pixels[len(used)] = boxed[..., ::-1].transpose(2, 0, 1)  # BGR HWC -> RGB CHW, as to_tensor
            used.append(path.name)
    if not used:
        raise CalibrationError(
            f"none of the {len(chosen)} images in {folder} could be read: check the files (corrupt or not images)"
        )
    return CalibrationSet(pixels[: len(used)], used, skipped, available)


def choose_files(folder: str | Path, count: int = DEFAULT_COUNT, seed: int = 0, exclude=()) -> tuple[list[Path], int]:
    """The seeded choice of ``count`` image files from ``folder`` outside ``exclude``, and how many it holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"calibration folder not found: {folder}: pass --calib DIR with images")
    images = list_images(folder)
    if not images:
        raise CalibrationError(
            f"calibration folder {folder} has no images (.jpg/.png/...): add images or pick another folder"
        )
    if count <= 0:
        raise CalibrationError(f"--calib-count must be positive, got {count}")
    available = len(images)
    if exclude:
        left = set(exclude)
        images = [p for p in images if p not in left]
        if not images:
            raise CalibrationError(
                f"calibration folder {folder} has no image left after holding out validation "
                "images: add images or pass --val-images DIR"
            )
    return sorted(random.Random(seed).sample(images, min(count, len(images)))), available


def split_folder(folder: str | Path, count: int = DEFAULT_COUNT, seed: int = 0) -> list[Path]:
    """The images of a calibration folder held out for validation when no other validation images are
    given: every image calibration would not use (N - ``count``), at least a quarter of the folder,
    at most ``HOLDOUT_MAX``, none when the folder has a single image. Seeded, so calibration and
    validation never share an image from run to run."""
    images = list_images(Path(folder)) if Path(folder).is_dir() else []
    n = len(images)
    held = 0 if n < 2 else min(HOLDOUT_MAX, max(n - count, n // 4))
    return sorted(random.Random(seed + 1).sample(images, held))


def files_digest(folder: str | Path, count: int = DEFAULT_COUNT, seed: int = 0, exclude=()) -> str:
    """Content hash of the chosen calibration files, cheap enough to key a cache without decoding."""
    digest = hashlib.sha256(f"{count}:{seed}".encode())
    for path in choose_files(folder, count, seed, exclude)[0]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
