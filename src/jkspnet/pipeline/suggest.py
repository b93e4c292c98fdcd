"""Suggested colours at a point of a photo (issue 21): the network's distinct likely colours there.

A person placing a colour point often does not know the colour either; the network's 313-bin
distribution at that point says what it finds likely, and where it hesitates between a few
colours (a car: red or blue) the top modes of that distribution (:func:`distinct_modes`) are
the choices worth offering, with how likely each is, as ideepcolor (Zhang, Zhu et al. 2017)
offers them. :meth:`jkspnet.Colorizer.suggest` in the library, ``/api/suggest`` over HTTP, the
first row of the page's colour picker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..colour.spaces import lab_to_srgb8
from ..media.hints import HintError
from ..nn.distribution import distinct_modes

if TYPE_CHECKING:
    from .colorizer import Colorizer, PreparedPhoto

SWATCH_LIGHTNESS = (35.0, 85.0)
"""The L range swatches are shown at: the point's own L, but never so dark or light that their
colours cannot be told apart (a hint takes only a colour's chroma, so this changes nothing in
the result)."""


@dataclass(frozen=True)
class Suggestion:
    """A suggested colour (8-bit sRGB, at the point's lightness) and the share of the network's
    distribution there that falls nearest to it."""

    color: tuple[int, int, int]
    probability: float

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.color)

    def to_json(self) -> dict[str, object]:
        return {"color": self.hex, "probability": round(self.probability, 4)}


def check_point(x: float, y: float, width: int, height: int) -> None:
    """(x, y) lies in the photo (``0 <= x < width``, ``0 <= y < height``), or a HintError."""
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (x, y)):
        raise HintError(f"suggest: x and y must be finite numbers, got {x!r}, {y!r}")
    if not (0 <= x < width and 0 <= y < height):
        raise HintError(
            f"suggest: point ({x:g}, {y:g}) is outside the photo ({width}x{height}; "
            f"x from 0 to {width - 1}, y from 0 to {height - 1})"
        )


def suggest(colorizer: Colorizer, prepared: PreparedPhoto, x: float, y: float) -> list[Suggestion]:
    """3 to 6 distinct likely colours at pixel (x, y) of a prepared photo, most likely first:
    the network's distribution there (bilinear between the network's pixels) split into its
    modes (:func:`jkspnet.nn.distribution.distinct_modes`)."""
    height, width = prepared.lightness.shape
    check_point(x, y, width, height)
    logits = colorizer.predict_logits(prepared.network_input[None]).float()
    probabilities = torch.softmax(logits, dim=1)
    where = torch.tensor([[[[2 * x / width - 1, 2 * y / height - 1]]]], dtype=torch.float32)
    at_point = F.grid_sample(
        probabilities, where.to(probabilities.device), align_corners=False, padding_mode="border"
    )[0, :, 0, 0]
    lightness = float(prepared.lightness[int(y), int(x)].clamp(*SWATCH_LIGHTNESS))
    modes = distinct_modes(at_point)
    lab = torch.tensor([[lightness, a, b] for a, b, _ in modes], dtype=torch.float32)
    rgb = lab_to_srgb8(lab.t().reshape(3, 1, -1)).reshape(3, -1).t().tolist()
    return [
        Suggestion(tuple(int(v) for v in colour), share)
        for colour, (_, _, share) in zip(rgb, modes, strict=True)
    ]


__all__ = ["SWATCH_LIGHTNESS", "Suggestion", "check_point", "suggest"]
