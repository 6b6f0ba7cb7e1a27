"""Property tests of the letterbox: geometry, padding, pixel content, box mapping, channel order, input kinds."""

import cv2
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from quantkit.preprocess import (
    PAD_VALUE,
    Letterbox,
    boxes_to_image,
    centre_crop_image,
    letterbox_image,
    preprocess,
    to_bgr8,
)

sides = st.integers(1, 4000)
targets = st.tuples(st.integers(32, 640), st.integers(32, 640))
colours = st.tuples(*[st.integers(0, 255)] * 3)


def boxes_to_input(boxes_xyxy: np.ndarray, lb: Letterbox) -> np.ndarray:
    """The forward map (image pixels -> model-input pixels) that ``boxes_to_image`` must invert."""
    offset = np.array([lb.left, lb.top, lb.left, lb.top], np.float32)
    return np.asarray(boxes_xyxy, np.float32) * lb.scale + offset


def textured(h, w, seed):
    """An h x w BGR image built cheaply: a small random tile scaled up (nearest), so pixels vary."""
    tile = np.random.default_rng(seed).integers(0, 256, (min(h, 8), min(w, 8), 3), dtype=np.uint8)
    return cv2.resize(tile, (w, h), interpolation=cv2.INTER_NEAREST)


def content_size(h, w, th, tw):
    """The resized image's (nh, nw) inside the letterbox: the scaled size, rounded, at least 1 px."""
    scale = min(th / h, tw / w)
    return max(1, round(h * scale)), max(1, round(w * scale))


@given(h=sides, w=sides, hw=targets, colour=colours)
def test_shapes_dtypes_and_range(h, w, hw, colour):
    img = np.full((h, w, 3), colour, np.uint8)
    boxed, lb = letterbox_image(img, hw)
    tensor, lb2 = preprocess(img, hw)
    assert boxed.shape == (*hw, 3) and boxed.dtype == np.uint8
    assert tensor.shape == (1, 3, *hw) and tensor.dtype == np.float32
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0
    assert lb == lb2 and lb.shape == (h, w)
    assert lb.scale == min(hw[0] / h, hw[1] / w)


@given(h=sides, w=sides, hw=targets, seed=st.integers(0, 2**16))
def test_content_is_cv2_resize_and_padding_is_114_and_centred(h, w, hw, seed):
    img = textured(h, w, seed)
    boxed, lb = letterbox_image(img, hw)
    th, tw = hw
    nh, nw = content_size(h, w, th, tw)
    top, left = lb.top, lb.left
    assert abs(top - (th - nh - top)) <= 1 and abs(left - (tw - nw - left)) <= 1
    expected = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(boxed[top : top + nh, left : left + nw], expected)
    pad = np.ones(hw, bool)
    pad[top : top + nh, left : left + nw] = False
    assert (boxed[pad] == PAD_VALUE).all()


@given(h=sides, w=sides, hw=targets, colour=st.tuples(*[st.integers(0, 255).filter(lambda v: v != PAD_VALUE)] * 3))
def test_content_region_found_from_pixels_matches_letterbox(h, w, hw, colour):
    """Locate the image by its colour (no 114 in it) and check the Letterbox describes where it is."""
    boxed, lb = letterbox_image(np.full((h, w, 3), colour, np.uint8), hw)
    rows = np.flatnonzero((boxed != PAD_VALUE).any(axis=(1, 2)))
    cols = np.flatnonzero((boxed != PAD_VALUE).any(axis=(0, 2)))
    assert (rows[0], cols[0]) == (lb.top, lb.left)
    nh, nw = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    assert abs(nh - h * lb.scale) <= 0.5 or nh == 1
    assert abs(nw - w * lb.scale) <= 0.5 or nw == 1
    # The full-image box maps onto that region to within rounding.
    mapped = boxes_to_input(np.array([[0, 0, w, h]], np.float32), lb)[0]
    np.testing.assert_allclose(mapped, [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], atol=1.0)


@given(h=sides, w=sides, hw=targets, corners=st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_boxes_round_trip_within_one_pixel(h, w, hw, corners):
    x0, x1 = sorted(corners[:2])
    y0, y1 = sorted(corners[2:])
    box = np.array([[x0 * w, y0 * h, x1 * w, y1 * h]], np.float32)
    _, lb = letterbox_image(np.zeros((h, w, 3), np.uint8), hw)
    back = boxes_to_image(boxes_to_input(box, lb), lb)
    np.testing.assert_allclose(back, box, atol=1.0)


@given(h=st.integers(1, 1500), w=st.integers(1, 1500), hw=targets)
def test_boxes_to_image_clips_to_the_image(h, w, hw):
    _, lb = letterbox_image(np.zeros((h, w, 3), np.uint8), hw)
    whole_input = np.array([[-50, -50, hw[1] + 50, hw[0] + 50]], np.float32)
    np.testing.assert_allclose(boxes_to_image(whole_input, lb), [[0, 0, w, h]])


@given(h=st.integers(1, 2000), w=st.integers(1, 2000), hw=targets)
def test_tensor_is_rgb(h, w, hw):
    blue_bgr = np.full((h, w, 3), (255, 0, 0), np.uint8)
    tensor, lb = preprocess(blue_bgr, hw)
    nh, nw = content_size(h, w, *hw)
    pad = np.ones(hw, bool)
    pad[lb.top : lb.top + nh, lb.left : lb.left + nw] = False
    content = tensor[0][:, ~pad]
    assert (content[2] == 1.0).all() and (content[:2] == 0.0).all()
    assert (tensor[0][:, pad] == np.float32(PAD_VALUE) / 255).all()


@given(h=st.integers(1, 1000), w=st.integers(1, 1000), value=st.integers(0, 255), alpha=st.integers(0, 255))
def test_gray_and_alpha_inputs(h, w, value, alpha):
    gray = np.full((h, w), value, np.uint8)
    for img in (gray, gray[..., None], np.dstack([gray, np.full((h, w), alpha, np.uint8)])):
        bgr = to_bgr8(img)
        assert bgr.shape == (h, w, 3) and bgr.dtype == np.uint8
        assert (bgr == value).all()


@given(h=st.integers(1, 1000), w=st.integers(1, 1000), colour=colours, alpha=st.integers(0, 255), hw=targets)
def test_bgra_drops_alpha(h, w, colour, alpha, hw):
    bgra = np.full((h, w, 4), (*colour, alpha), np.uint8)
    bgr = to_bgr8(bgra)
    assert bgr.shape == (h, w, 3)
    assert (bgr == colour).all()
    tensor, _ = preprocess(bgra, hw)
    np.testing.assert_array_equal(tensor, preprocess(bgr, hw)[0])


@given(
    h=st.integers(1, 1000),
    w=st.integers(1, 1000),
    value=st.integers(0, 65535),
    channels=st.sampled_from([None, 1, 2, 3, 4]),
    hw=targets,
)
def test_uint16_inputs(h, w, value, channels, hw):
    shape = (h, w) if channels is None else (h, w, channels)
    img = np.full(shape, value, np.uint16)
    bgr = to_bgr8(img)
    assert bgr.shape == (h, w, 3) and bgr.dtype == np.uint8
    assert (bgr == value >> 8).all()
    tensor, _ = preprocess(img, hw)
    assert tensor.shape == (1, 3, *hw) and tensor.max() <= 1.0


def test_exif_orientation_is_applied_like_ultralytics(tmp_path):
    """A phone photo stored landscape with EXIF 'rotate 90 CW' reads as portrait, as cv2.imread does."""
    from PIL import Image

    from quantkit.preprocess import read_image

    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    img = read_image(path)
    assert img.shape[:2] == (60, 40)
    assert img[:10].mean() > 200 and img[-10:].mean() < 50  # the left band is now on top


@given(h=sides, w=sides, side=st.integers(16, 640), seed=st.integers(0, 2**16))
def test_centre_crop_fills_the_square_input_with_the_image_centre(h, w, side, seed):
    """A classifier's fit (Ultralytics' resize-then-centre-crop): no padding, the shorter side fills the input, and
    the input's centre maps back to the image's centre (within a pixel of the resize)."""
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    crop, lb = centre_crop_image(img, (side, side))
    assert crop.shape == (side, side, 3) and crop.dtype == np.uint8 and lb.shape == (h, w)
    assert min(round(h * lb.scale), round(w * lb.scale)) <= side + 1 and lb.left <= 0 and lb.top <= 0
    centre = boxes_to_image(np.array([[side / 2, side / 2, side / 2, side / 2]], np.float32), lb)[0]
    assert abs(centre[0] - w / 2) <= 1 / lb.scale + 0.5 and abs(centre[1] - h / 2) <= 1 / lb.scale + 0.5
    if (h, w) == (side, side):
        assert (crop == img).all()
