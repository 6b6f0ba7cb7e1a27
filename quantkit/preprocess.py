"""The detector's preprocessing: any image -> 3-channel uint8 BGR -> letterbox -> NCHW float tensor.

One letterbox serves calibration and evaluation, so the quantizer sees exactly what the detector
sees: BGR->RGB, aspect-preserving resize, centred padding of 114, /255, HWC->CHW. A classifier's inputs are
resized and centre-cropped instead (``centre_crop_image``; its task's ``fit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PAD_VALUE = 114
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Letterbox:
    """How an image of ``shape`` (h, w) was placed in the model input: ``x_in = x * scale + left``."""

    scale: float
    left: int
    top: int
    shape: tuple[int, int]


def to_bgr8(img: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, gray+alpha, BGR, BGRA; 8 or 16 bit, or float) as 3-channel uint8 BGR."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if channels == 2:  # gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(img[..., 0]), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(img[..., :3])


def read_image(path: str | Path) -> np.ndarray | None:
    """Read any image file as 3-channel uint8 BGR, or None when it cannot be decoded.

    Decoded as Ultralytics decodes (``cv2.IMREAD_COLOR``): EXIF orientation applied, alpha dropped,
    16-bit scaled to 8. Reads bytes first, so non-ASCII paths work on every platform.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return None
    return to_bgr8(img)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def centre_crop_image(img: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """A classifier's preprocessing, as Ultralytics' ``classify_transforms``: a square input takes the image resized
    so its shorter side fills it (aspect kept) and cropped to the centre; a non-square one the image resized to it.
    Area interpolation when shrinking (close to torchvision's antialiased resize); returns HWC uint8."""
    h, w = img.shape[:2]
    th, tw = hw
    if th == tw:
        scale = max(th / h, tw / w)
        nh, nw = max(th, int(round(h * scale))), max(tw, int(round(w * scale)))
    else:
        scale, nh, nw = min(th / h, tw / w), th, tw
    shrink = nh * nw < h * w
    resized = (
        img
        if (nh, nw) == (h, w)
        else cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    )
    top, left = (nh - th) // 2, (nw - tw) // 2
    crop = np.ascontiguousarray(resized[top : top + th, left : left + tw])
    return crop, Letterbox(scale, -left, -top, (h, w))


def letterbox_image(img: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio and pad to ``hw`` (H, W) with 114, centred; returns HWC uint8."""
    h, w = img.shape[:2]
    th, tw = hw
    scale = min(th / h, tw / w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    resized = img if (nh, nw) == (h, w) else cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (th - nh) // 2, (tw - nw) // 2
    out = cv2.copyMakeBorder(
        resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return out, Letterbox(scale, left, top, (h, w))


def to_tensor(letterboxed_bgr: np.ndarray) -> np.ndarray:
    """HWC uint8 BGR -> [1, 3, H, W] float32 RGB in [0, 1]."""
    rgb = letterboxed_bgr[..., ::-1]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def preprocess(img: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """The detector's full preprocessing: (input tensor [1,3,H,W], letterbox to map boxes back)."""
    boxed, lb = letterbox_image(to_bgr8(img), hw)
    return to_tensor(boxed), lb


def boxes_to_image(boxes_xyxy: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Map boxes from model-input pixels back to the original image, clipped to it."""
    offset = np.array([lb.left, lb.top, lb.left, lb.top], np.float32)
    out = (np.asarray(boxes_xyxy, np.float32) - offset) / lb.scale
    h, w = lb.shape
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out
