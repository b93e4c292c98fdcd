"""The full-resolution, per-pixel stages of the colour pipeline on OpenCV's SIMD kernels (CPU).

On a 12 MP scan the network is a small part of the cost; most of it is per-pixel work around it:
the photo's L, the guided upsampling's A * L + B and the conversion of LAB to 8-bit sRGB. In
PyTorch each of those is several elementwise passes over memory with their own temporaries.
OpenCV (``opencv-python-headless``) does each in one vectorised pass, in row bands that stay
small, and spreads its larger kernels over the cores: ``cv2.LUT`` for L, ``cv2.resize`` for
the bilinear step, ``cv2.accumulateProduct`` for A * L + B, ``cv2.cvtColor`` on float32 LAB,
``cv2.boxFilter`` for the guided filter's box means on the reduced grid.

Results match :mod:`jkspnet.colour.spaces` and :mod:`jkspnet.colour.upsample`: L and the box
means to float rounding, the 8-bit colours to within one code value
(``tests/colour/test_pixels.py``). :class:`~jkspnet.pipeline.colorizer.Colorizer` uses this
module on the CPU; on a GPU the same stages run in torch (:mod:`jkspnet.colour.torch_pixels`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

BAND_PIXELS = 1 << 17
"""Full-resolution work on the CPU runs in bands of rows of about this many pixels: a band's
planes (512 KB each) stay in the cache from one pass to the next. On a 12 MP finish (one
process, sizes alternating, 9 rounds), bands of 128 K pixels took 99 ms of CPU against 123 to
141 ms for bands of 1 M (one or two OpenCV threads), 97 to 108 for 64 K, 107 to 112 for 256 K."""

_B_LIMIT = 200.0 / 116.0
"""b at most (L + 16) * 200 / 116: scikit-image's lab2xyz sets a negative fz = fy - b / 200 to
0, which for any L is exactly this clamp of b (OpenCV would extrapolate instead)."""


@contextlib.contextmanager
def opencv_threads(count: int | None) -> Iterator[None]:
    """OpenCV's threads set to ``count`` (None: left alone) for the block, as they were after
    it. Where photos are finished side by side in threads, one OpenCV thread each spares the
    per-call hand-offs of its parallel kernels (thousands of small bands a photo) and leaves
    the cores to the photos."""
    before = cv2.getNumThreads()
    if count is not None:
        cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def bands(height: int, width: int, band_pixels: int | None = None) -> list[tuple[int, int]]:
    """(top, bottom) of each band of rows of about ``band_pixels`` pixels (default
    :data:`BAND_PIXELS`)."""
    rows = max(1, (BAND_PIXELS if band_pixels is None else band_pixels) // max(width, 1))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """L of each grey byte (256,), and each byte's linear light times its channel's share of
    the luminance Y (256, 1, 3), from :mod:`jkspnet.colour.spaces` in float64."""
    import torch

    from .spaces import RGB_TO_Y, luminance_to_l, srgb_to_linear

    linear = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0)
    grey = luminance_to_l(linear).numpy().astype(np.float32)
    shares = linear.numpy()[:, None] * np.asarray(RGB_TO_Y)[None]
    return grey, shares.astype(np.float32).reshape(256, 1, 3)


def _luminance_to_l(y: np.ndarray, out: np.ndarray) -> None:
    """CIE L* of luminance Y (float32), into ``out``: 116 Y^(1/3) - 16, linear near black."""
    from .spaces import LAB_EPSILON, LAB_KAPPA

    cv2.pow(y, 1.0 / 3.0, dst=out)
    cv2.addWeighted(out, 116.0, out, 0.0, -16.0, dst=out)
    dark = y <= LAB_EPSILON
    if dark.any():
        out[dark] = y[dark] * np.float32(116.0 * LAB_KAPPA)


def lightness(pixels: np.ndarray) -> np.ndarray:
    """CIE L* (H, W) float32 of a decoded photo (:class:`jkspnet.media.photos.Photo` pixels: uint8
    grey, uint8 RGB, or float32 grey in [0, 1]), as :func:`jkspnet.colour.spaces.rgb_to_l`."""
    from .spaces import SRGB_GAMMA, SRGB_OFFSET, SRGB_SLOPE

    height, width = pixels.shape[:2]
    out = np.empty((height, width), np.float32)
    grey, shares = _tables()
    for top, bottom in bands(height, width):
        band, dst = pixels[top:bottom], out[top:bottom]
        if band.dtype == np.uint8 and band.ndim == 2:
            cv2.LUT(band, grey, dst=dst)
            continue
        if band.dtype == np.uint8:
            y = cv2.transform(cv2.LUT(band, shares), np.ones((1, 3), np.float32))
        else:  # 16-bit grey, already in [0, 1]: the sRGB curve, undone (rare: plain numpy)
            band = band.astype(np.float32)
            curve = ((band + SRGB_OFFSET) / (1 + SRGB_OFFSET)) ** SRGB_GAMMA
            y = np.where(band > 0.04045, curve, band / SRGB_SLOPE).astype(np.float32)
        _luminance_to_l(y, dst)
    return out


def _window_counts(size: int, radius: int) -> np.ndarray:
    index = np.arange(size)
    return (np.minimum(index + radius + 1, size) - np.maximum(index - radius, 0)).astype(float)


def cv_box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean (float64) over the part inside the image of each pixel's (2r+1)^2 window of ``x``
    (H, W): running sums in float64 (``cv2.boxFilter``), over the count of pixels inside."""
    if radius < 1:
        return x.astype(np.float64)
    size = 2 * radius + 1
    x = np.ascontiguousarray(x)
    border = cv2.BORDER_CONSTANT  # the window's part outside the image adds nothing
    sums = cv2.boxFilter(x, cv2.CV_64F, (size, size), normalize=False, borderType=border)
    height, width = x.shape
    return sums / np.outer(_window_counts(height, radius), _window_counts(width, radius))


def cv_local_linear_fit(
    guide: np.ndarray, values: np.ndarray, radius: int, eps: float
) -> np.ndarray:
    """:func:`jkspnet.colour.upsample.local_linear_fit` on OpenCV: ``guide`` (H, W), ``values``
    (C, H, W), float32 or float64 (products in that type, sums in float64); returns A then B,
    (2C, H, W), in ``values``' type."""
    dtype = values.dtype
    guide = guide.astype(dtype)
    mean_i = cv_box_mean(guide, radius)
    var_i = np.maximum(cv_box_mean(guide * guide, radius) - mean_i * mean_i, 0.0)
    slopes, offsets = [], []
    for plane in values:
        mean_p = cv_box_mean(plane, radius)
        slope = (cv_box_mean(guide * plane, radius) - mean_i * mean_p) / (var_i + eps)
        slopes.append(slope.astype(dtype))
        offsets.append((mean_p - slope * mean_i).astype(dtype))
    return np.stack([cv_box_mean(plane, radius) for plane in [*slopes, *offsets]]).astype(dtype)


class RowUpsampler:
    """Rows of maps (C, h, w) upsampled bilinearly to (C, height, width), as
    ``F.interpolate(mode="bilinear", align_corners=False)`` gives them, a band at a time.

    Bilinear upsampling is separable: the band's rows are blended on the small grid first
    (a few hundred pixels wide), then one ``cv2.resize`` widens all C planes of the band at
    once (stacked, with no vertical scaling, so planes never mix)."""

    def __init__(self, small: np.ndarray, height: int, width: int) -> None:
        self.small = np.ascontiguousarray(small, dtype=np.float32)
        self.height, self.width = height, width

    def rows(self, top: int, bottom: int) -> np.ndarray:
        channels, src_rows, src_cols = self.small.shape
        index = np.arange(top, bottom, dtype=np.float32)
        scale = np.float32(src_rows / self.height)
        src = np.maximum((index + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0))
        low = np.minimum(np.floor(src).astype(np.intp), src_rows - 1)
        high = np.minimum(low + 1, src_rows - 1)
        weight = (src - low).astype(np.float32)[None, :, None]
        lower = self.small[:, low]
        blended = lower + (self.small[:, high] - lower) * weight
        count = bottom - top
        stacked = blended.reshape(channels * count, src_cols)
        wide = cv2.resize(stacked, (self.width, channels * count), interpolation=cv2.INTER_LINEAR)
        return wide.reshape(channels, count, self.width)


def lab_planes_to_srgb8(
    lightness: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray
) -> None:
    """8-bit sRGB, out-of-gamut colours clipped, of LAB planes (rows, W) float32, into ``out``
    (rows, W, 3) uint8: :func:`jkspnet.colour.spaces.lab_to_srgb8` to within one code value.
    ``b`` is clamped in place."""
    limit = cv2.addWeighted(lightness, _B_LIMIT, lightness, 0.0, 16.0 * _B_LIMIT)
    cv2.min(b, limit, dst=b)
    lab = cv2.merge([lightness, a, b])
    cv2.cvtColor(lab, cv2.COLOR_Lab2RGB, dst=lab)  # float32: sRGB in [0, 1], clipped
    cv2.convertScaleAbs(lab, dst=out, alpha=255.0)  # rounded, saturated


def finish(
    lightness: np.ndarray,
    layers: Sequence[tuple[np.ndarray, float]],
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """The 8-bit photo (H, W, 3), or (H, W, 4) with ``alpha``, from its L (H, W) and the ab
    that ``layers`` add up: each is maps (2 or 4, h, w) upsampled bilinearly to the photo's
    size and a scale; 2 maps are ab itself, 4 are a local linear model ab = A * scale * L + B
    (the guided filter's coefficients). ``lightness`` is read, never changed."""
    if not layers:
        raise ValueError("finish needs at least one layer of maps")
    height, width = lightness.shape
    upsamplers = []
    for maps, scale in layers:
        maps = np.array(maps, dtype=np.float32)  # a copy: A is scaled on the small grid
        if len(maps) == 4:
            maps[:2] *= np.float32(scale)
        upsamplers.append(RowUpsampler(maps, height, width))
    out = np.empty((height, width, 3 if alpha is None else 4), np.uint8)
    for top, bottom in bands(height, width):
        band_l = lightness[top:bottom]
        ab = None
        for upsampler in upsamplers:
            planes = upsampler.rows(top, bottom)
            if len(planes) == 4:  # B += A * L
                cv2.accumulateProduct(planes[0], band_l, planes[2])
                cv2.accumulateProduct(planes[1], band_l, planes[3])
                planes = planes[2:]
            if ab is None:
                ab = planes
            else:
                ab += planes
        if alpha is None:
            lab_planes_to_srgb8(band_l, ab[0], ab[1], out[top:bottom])
        else:
            rgb = np.empty((bottom - top, width, 3), np.uint8)
            lab_planes_to_srgb8(band_l, ab[0], ab[1], rgb)
            out[top:bottom, :, :3] = rgb
            out[top:bottom, :, 3] = alpha[top:bottom]
    return out


__all__ = [
    "BAND_PIXELS",
    "RowUpsampler",
    "bands",
    "cv_box_mean",
    "cv_local_linear_fit",
    "finish",
    "lab_planes_to_srgb8",
    "lightness",
    "opencv_threads",
]
