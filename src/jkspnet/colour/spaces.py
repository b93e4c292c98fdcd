"""sRGB <-> CIE LAB (D65) as small, differentiable torch functions.

Channels sit in dimension -3, so a single image is (3, H, W) and a batch (N, 3, H, W); any device
and float dtype works. sRGB values are in [0, 1]. The constants and the piecewise rules are those
of ``skimage.color`` (sRGB primaries, D65 white, CIE 1976 L*a*b*), so results agree with it.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

L_OFFSET = 50.0
"""The seed's input normalisation: the network sees L - 50."""

_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.95047, 1.0, 1.08883)
LAB_EPSILON = 0.008856  # (6/29)^3: where the cube root gives way to the linear segment
LAB_KAPPA = 7.787  # slope of that segment in f(t)
_F_EPSILON = 0.2068966  # f(LAB_EPSILON) = 6/29
_SRGB_KNEE = 0.0031308  # linear light below which the sRGB curve is a line...
SRGB_SLOPE = 12.92  # ...of this slope; above it 1.055 x^(1/2.4) - 0.055
SRGB_GAMMA = 2.4
SRGB_OFFSET = 0.055
RGB_TO_Y = _RGB_TO_XYZ[1]
"""Linear sRGB's weights in luminance Y (CIE XYZ's middle row): what L is computed from."""


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """The network's input from L in [0, 100]."""
    return lightness - L_OFFSET


def denormalize_l(x: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] from the network's input."""
    return x + L_OFFSET


def _matrix(rows: tuple[tuple[float, ...], ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _apply_matrix(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Multiply each pixel's 3-vector (dimension -3) by ``matrix``."""
    return torch.einsum("ij,...jhw->...ihw", matrix, image)


def _check_channels(image: torch.Tensor, name: str) -> None:
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"{name} must have 3 channels in dimension -3, got shape {image.shape}")


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB transfer curve."""
    scale = 1.0 + SRGB_OFFSET
    high = ((rgb.clamp(min=0.04045) + SRGB_OFFSET) / scale) ** SRGB_GAMMA
    return torch.where(rgb > 0.04045, high, rgb / SRGB_SLOPE)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Apply the sRGB transfer curve."""
    high = (1.0 + SRGB_OFFSET) * linear.clamp(min=_SRGB_KNEE) ** (1 / SRGB_GAMMA) - SRGB_OFFSET
    return torch.where(linear > _SRGB_KNEE, high, linear * SRGB_SLOPE)


@cache
def _xyz_to_rgb() -> torch.Tensor:
    """XYZ to linear sRGB (float64, on the CPU): the inverse of ``_RGB_TO_XYZ``."""
    return torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64))


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(
        t > LAB_EPSILON, t.clamp(min=LAB_EPSILON) ** (1 / 3), LAB_KAPPA * t + 16.0 / 116.0
    )


def _f_inverse(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _F_EPSILON, t.clamp(min=_F_EPSILON) ** 3, (t - 16.0 / 116.0) / LAB_KAPPA)


def luminance_to_l(y: torch.Tensor) -> torch.Tensor:
    """CIE L* in [0, 100] from relative luminance Y in [0, 1]."""
    return 116.0 * _f(y) - 16.0


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """Only the L channel of :func:`rgb_to_lab`, shape (..., 1, H, W); cheaper for big photos."""
    _check_channels(rgb, "rgb")
    weights = _matrix((_RGB_TO_XYZ[1],), rgb)
    return luminance_to_l(_apply_matrix(weights, srgb_to_linear(rgb)))


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIE LAB (L in [0, 100], a and b roughly in [-128, 127]) from sRGB in [0, 1]."""
    _check_channels(rgb, "rgb")
    xyz = _apply_matrix(_matrix(_RGB_TO_XYZ, rgb), srgb_to_linear(rgb))
    white = torch.tensor(_WHITE_D65, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    fx, fy, fz = _f(xyz / white).unbind(dim=-3)
    lab = (116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz))
    return torch.stack(lab, dim=-3)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """sRGB from CIE LAB; out-of-gamut colours are clipped to [0, 1] unless ``clip`` is False."""
    _check_channels(lab, "lab")
    lightness, a, b = lab.unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp(min=0.0)  # as skimage: z < 0 is invalid and set to 0
    white = torch.tensor(_WHITE_D65, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    xyz = _f_inverse(torch.stack((fx, fy, fz), dim=-3)) * white
    rgb = linear_to_srgb(_apply_matrix(_xyz_to_rgb().to(lab.device, lab.dtype), xyz))
    return rgb.clamp(0.0, 1.0) if clip else rgb


def lab_to_srgb8(lab: torch.Tensor) -> torch.Tensor:
    """8-bit sRGB (uint8) from CIE LAB, clipped: ``round(255 * lab_to_rgb(lab))`` in fewer passes
    over memory (1.4x faster on the CPU), for writing photos, where this conversion at full
    resolution is the main cost. The cube is a product, the white point is folded into the
    matrix, and most steps run in place. Not differentiable; use :func:`lab_to_rgb` for that.
    """
    _check_channels(lab, "lab")
    lightness, a, b = lab.unbind(dim=-3)
    f = torch.empty_like(lab)
    fx, fy, fz = f.unbind(dim=-3)  # views: written in place
    torch.add(lightness, 16.0, out=fy).div_(116.0)
    torch.add(fy, a, alpha=1 / 500.0, out=fx)
    torch.add(fy, b, alpha=-1 / 200.0, out=fz).clamp_(min=0.0)  # as lab_to_rgb
    linear_segment = (f - 16.0 / 116.0).mul_(1 / LAB_KAPPA)
    xyz = torch.where(f > _F_EPSILON, f.square().mul_(f), linear_segment)
    xyz_to_rgb = _xyz_to_rgb() * torch.tensor(_WHITE_D65, dtype=torch.float64)
    rgb = _apply_matrix(xyz_to_rgb.to(lab.device, lab.dtype), xyz).clamp_(0.0, 1.0)
    # linear_to_srgb, times 255, in place
    on_curve = rgb > _SRGB_KNEE  # else on the linear segment near black
    curve = rgb.clamp(min=_SRGB_KNEE).pow_(1 / SRGB_GAMMA)
    curve.mul_((1.0 + SRGB_OFFSET) * 255.0).sub_(SRGB_OFFSET * 255.0)
    codes = torch.where(on_curve, curve, rgb.mul_(SRGB_SLOPE * 255.0))
    return codes.add_(0.5).to(torch.uint8)  # the values are >= 0: truncation rounds


def max_chroma(rgb: np.ndarray) -> float:
    """The largest |a| or |b| (LAB units) of an 8-bit sRGB array (H, W, 3)."""
    image = torch.tensor(rgb).permute(2, 0, 1).double() / 255.0  # a copy: photos are read-only
    return float(rgb_to_lab(image)[1:].abs().max())


# How much colour counts as none depends on what the photo is for; the three thresholds differ
# on purpose, and each caller names its own.
NO_COLOUR = 0.0
"""An evaluation's truth is skipped as grey only if R = G = B exactly: any colour in it, however
faint (a toned or faded print), is something to score against, so a report scores every photo
that has colour at all (and the check needs no LAB conversion)."""

GREY_CHROMA = 5.0
"""A training photo whose max |a|, |b| is at most this (after resizing) is greyscale and left
out: Zhang et al.'s rule. Toned prints and near-grey scans teach the network little colour, and
would pull the class weights toward grey."""

REFERENCE_MIN_CHROMA = 1.0
"""A reference photo needs a palette: one whose max |a|, |b| (at 256 pixels) is at most 1 LAB
unit is refused as grey: it looks grey, and its palette would lean every colour toward grey.
Above that even a muted palette (a faded photo) is a fair reference, weighed by the reference
strength, so the bar stays far below training's."""


def is_grey(pixels: np.ndarray, chroma: float = NO_COLOUR) -> bool:
    """Whether a photo has no colour: a grey array (H, W), or every pixel's |a| and |b| at most
    ``chroma`` LAB units (:data:`NO_COLOUR`, 0: R = G = B exactly, found without converting;
    :data:`GREY_CHROMA` for training photos; :data:`REFERENCE_MIN_CHROMA` for a reference)."""
    if pixels.ndim == 2:
        return True
    if chroma == NO_COLOUR:
        return bool(
            np.array_equal(pixels[..., 0], pixels[..., 1])
            and np.array_equal(pixels[..., 1], pixels[..., 2])
        )
    return max_chroma(pixels) <= chroma
