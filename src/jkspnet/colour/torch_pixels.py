"""The full-resolution, per-pixel stages of :mod:`jkspnet.colour.pixels` in torch, on the
photo's device: what runs on a GPU (CUDA, MPS), where the tensors already are.

The same contract as the OpenCV functions (bands of rows, of :data:`DEVICE_BAND_PIXELS`
here; the same layers of maps), so :class:`~jkspnet.pipeline.colorizer.Colorizer` picks one by
device and the tests hold the two to one code value of each other.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import pixels
from .spaces import RGB_TO_Y, lab_to_srgb8, luminance_to_l, srgb_to_linear

DEVICE_BAND_PIXELS = 1 << 20
"""The bands of rows a device works on: larger than the CPU's (fewer kernel launches)."""


@functools.cache
def _table(name: str, device: str) -> torch.Tensor:
    """Per-byte lookup tables on ``device``: linear light, and L of a grey byte."""
    linear = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0)
    table = linear if name == "linear" else luminance_to_l(linear)
    return table.to(torch.float32).to(device)


def lightness(pixels_: np.ndarray, device: torch.device) -> torch.Tensor:
    """Full-resolution L (H, W) float32 on ``device``: :func:`jkspnet.colour.pixels.lightness`."""
    height, width = pixels_.shape[:2]
    out = torch.empty((height, width), dtype=torch.float32, device=device)
    luma = torch.tensor(RGB_TO_Y, device=device)
    for top, bottom in pixels.bands(height, width, DEVICE_BAND_PIXELS):
        band = torch.tensor(pixels_[top:bottom], device=device)  # decoded arrays are read-only
        if band.dtype == torch.uint8 and band.dim() == 3:
            out[top:bottom] = luminance_to_l(_table("linear", str(device))[band.long()] @ luma)
        elif band.dtype == torch.uint8:
            out[top:bottom] = _table("grey_l", str(device))[band.long()]
        else:
            out[top:bottom] = luminance_to_l(srgb_to_linear(band.float()))
    return out


def row_upsampler(small: torch.Tensor, height: int, width: int):
    """``rows(top, bottom)``: rows top..bottom of ``small`` (C, h, w) bilinearly upsampled to
    (C, height, width), as ``F.interpolate(align_corners=False)`` gives them.

    Bilinear upsampling is separable: all rows are widened once (small), then each band of
    output rows blends the two nearest widened rows, so the full-size result never exists."""
    wide = F.interpolate(small[None].float(), size=(small.shape[-2], width), mode="bilinear")[0]
    src_rows = small.shape[-2]
    scale = src_rows / height

    def rows(top: int, bottom: int) -> torch.Tensor:
        index = torch.arange(top, bottom, device=wide.device, dtype=torch.float32)
        src = ((index + 0.5) * scale - 0.5).clamp(min=0)
        low = src.floor().long().clamp(max=src_rows - 1)
        high = (low + 1).clamp(max=src_rows - 1)
        weight = (src - low).view(1, -1, 1)
        return torch.lerp(wide.index_select(1, low), wide.index_select(1, high), weight)

    return rows


def finish(
    lightness_: torch.Tensor,
    layers: Sequence[tuple[torch.Tensor, float]],
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`jkspnet.colour.pixels.finish` in torch on ``lightness_``'s device: the 8-bit photo
    (H, W, 3), or (H, W, 4) with ``alpha``, as a numpy array."""
    height, width = lightness_.shape
    upsamplers = [
        (row_upsampler(maps.to(lightness_.device), height, width), scale) for maps, scale in layers
    ]
    out = np.empty((height, width, 3 if alpha is None else 4), dtype=np.uint8)
    out_view = torch.from_numpy(out)
    for top, bottom in pixels.bands(height, width, DEVICE_BAND_PIXELS):
        band_l = lightness_[top:bottom]
        ab = torch.zeros((2, bottom - top, width), device=lightness_.device)
        for rows, scale in upsamplers:
            values = rows(top, bottom)
            if len(values) == 4:  # a local linear model, ab = A * scale * L + B
                values = torch.addcmul(values[2:], values[:2], (band_l * scale)[None])
            ab += values
        rgb = lab_to_srgb8(torch.cat([band_l[None], ab], dim=0))
        out_view[top:bottom, :, :3].copy_(rgb.permute(1, 2, 0))  # 4x faster than through numpy
    if alpha is not None:
        out[..., 3] = alpha
    return out


__all__ = ["DEVICE_BAND_PIXELS", "finish", "lightness", "row_upsampler"]
