"""What a Colorizer is asked to be, in one place: :class:`ColorizerSpec`, its allowed values, its
defaults and its checks. No torch: the command line's argument types and choices, the server's
form parsing and a Ray driver all check values here, so a bad value gets the same words
everywhere (exit 2 on the command line, 422 over HTTP). :meth:`ColorizerSpec.load` builds it."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import JKSPNetError, check_choice
from ..media.photos import DEFAULT_MAX_PIXELS
from ..nn.backends import BACKENDS, PRECISIONS

if TYPE_CHECKING:
    from .colorizer import Colorizer

SHAPES = ("square", "aspect")
"""The network's input: the photo squashed to a square, or at its own aspect ratio."""
UPSAMPLERS = ("guided", "bilinear")
"""How colour reaches full resolution: edge-aware (:mod:`jkspnet.colour.upsample`) or bilinear."""
MAX_CONFIDENCE = 10.0
MAX_NEUTRAL = 30.0
"""The largest chroma threshold: 30 LAB units greys all but vivid colours."""
NEUTRAL_SHAPES = ("soft", "garrote")
"""How the neutral threshold t shrinks a chroma c (:func:`jkspnet.colour.decoding.neutral_ab`):
``soft`` to ``max(0, c - t)``, ``garrote`` to ``max(0, c - t**2 / c)``, which greys the same
pale pixels and leaves vivid ones nearly whole."""
MAX_SATURATION = 4.0
"""The largest chroma gain: four times the decoded chroma is out of gamut for most colours."""


def read_number(text: object, name: str, whole: bool = False) -> float:
    """``text`` (a flag's, a form field's) as a number, a whole one if ``whole``."""
    try:
        return int(str(text)) if whole else float(str(text))
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise JKSPNetError(f"{name} must be {kind}, got {str(text)[:40]!r}") from None


def check_size(size: int) -> int:
    """The network's input side: a positive multiple of 8 (three stride-2 stages)."""
    if size < 8 or size % 8:
        raise JKSPNetError(f"size must be a positive multiple of 8, got {size}")
    return size


def check_confidence(confidence: float) -> float:
    if not 0 <= confidence <= MAX_CONFIDENCE:
        raise JKSPNetError(f"confidence must be between 0 (off) and 10, got {confidence}")
    return float(confidence)


def check_neutral(chroma: float) -> float:
    """The chroma threshold of :func:`jkspnet.colour.decoding.neutral_ab`: 0 (off) to
    :data:`MAX_NEUTRAL` LAB units; more would grey out every colour the network paints."""
    if not (math.isfinite(chroma) and 0 <= chroma <= MAX_NEUTRAL):
        raise JKSPNetError(f"neutral must be between 0 (off) and {MAX_NEUTRAL:g}, got {chroma}")
    return float(chroma)


def check_saturation(factor: float) -> float:
    """The gain on every decoded chroma (:func:`jkspnet.colour.decoding.saturated_ab`): 0 (grey)
    to :data:`MAX_SATURATION`; 1 leaves the decoding as it is."""
    if not (math.isfinite(factor) and 0 <= factor <= MAX_SATURATION):
        raise JKSPNetError(
            f"saturation must be between 0 and {MAX_SATURATION:g} (1 = off), got {factor}"
        )
    return float(factor)


def check_reference_strength(strength: float) -> float:
    """How much a reference palette re-weights the distribution: a finite number, 0 or more."""
    if not (math.isfinite(strength) and strength >= 0):
        raise JKSPNetError(f"reference strength must be 0 or more, got {strength}")
    return float(strength)


def check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise JKSPNetError(f"temperature must be greater than 0, got {temperature}")
    return float(temperature)


def check_max_pixels(pixels: int) -> int:
    if pixels < 1:
        raise JKSPNetError(f"max pixels must be at least 1, got {pixels}")
    return pixels


@dataclass(frozen=True)
class ColorizerSpec:
    """A Colorizer's options: which weights, which backend, where and how it runs.

    None leaves a value to the weights (``size``, ``shape``, ``confidence``, ``saturation``,
    ``neutral``, ``neutral_shape``: what was stored with them) or the bundled weights
    (``weights``). Every value is checked on construction.
    """

    weights: str | None = None
    backend: str = BACKENDS[0]
    device: str = "auto"
    precision: str = PRECISIONS[0]
    size: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    upsample: str = UPSAMPLERS[0]
    shape: str | None = None
    confidence: float | None = None
    saturation: float | None = None
    neutral: float | None = None
    neutral_shape: str | None = None

    def __post_init__(self) -> None:
        if self.weights is not None:
            object.__setattr__(self, "weights", os.fspath(self.weights))
        object.__setattr__(self, "device", str(self.device))
        check_choice("backend", self.backend, BACKENDS)
        check_choice("precision", self.precision, PRECISIONS)
        check_max_pixels(self.max_pixels)
        check_choice("upsample", self.upsample, UPSAMPLERS)
        if self.size is not None:
            check_size(self.size)
        if self.shape is not None:
            check_choice("shape", self.shape, SHAPES)
        if self.confidence is not None:
            object.__setattr__(self, "confidence", check_confidence(self.confidence))
        if self.saturation is not None:
            object.__setattr__(self, "saturation", check_saturation(self.saturation))
        if self.neutral is not None:
            object.__setattr__(self, "neutral", check_neutral(self.neutral))
        if self.neutral_shape is not None:
            check_choice("neutral shape", self.neutral_shape, NEUTRAL_SHAPES)

    def replace(self, **changes: object) -> ColorizerSpec:
        """This spec with some values changed (and checked)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def load(self) -> Colorizer:
        """The Colorizer this spec asks for: the backend's network from the weights, then the
        pipeline around it."""
        from ..nn.backends import load_network
        from .colorizer import Colorizer

        network = load_network(self.backend, self.weights, self.device, self.precision)
        return Colorizer(network, self)


__all__ = [
    "BACKENDS",
    "MAX_SATURATION",
    "NEUTRAL_SHAPES",
    "PRECISIONS",
    "SHAPES",
    "UPSAMPLERS",
    "ColorizerSpec",
    "check_confidence",
    "check_max_pixels",
    "check_neutral",
    "check_reference_strength",
    "check_saturation",
    "check_size",
    "check_temperature",
    "read_number",
]
