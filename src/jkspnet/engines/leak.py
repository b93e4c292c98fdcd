"""One colour hint's leak, harm and gain (issue 21): does a hint stay in its region?

PSNR over the whole photo hides a hint that tints a far building: the hint's own region gains
more than the building loses. So ``jkspnet eval --hints`` also places one hint per photo, sampled
from the truth on a coloured pixel (:func:`sample_colour_hint`), and measures (:func:`hint_leak`):

- *leak*: over the pixels far from the hint (over 1/8 of the photo's diagonal) whose true colour
  is not the hint's (more than 30 ab units from it), how far their colour moved toward the
  hint's (ab units, the mean of each pixel's move projected on the way from its automatic colour
  to the hint's: 0 when they kept their colour, negative when they moved away);
- *harm*: the dB those pixels lost (PSNR over them, automatic minus guided);
- *gain*: the dB won near the hint (within the same distance) where the truth has the hint's
  colour (PSNR over them, guided minus automatic).

All three compare the guided result with the automatic one from the same distribution, so they
measure the hint alone.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from . import metrics

if TYPE_CHECKING:
    from ..media.hints import ABTarget

MIN_HINT_CHROMA = 20.0
"""The leak's hint falls on a pixel whose patch has at least this chroma (ab units): a hint of
no colour cannot leak."""

FAR_FRACTION = 1 / 8
"""Pixels further from the hint than this share of the photo's diagonal are *far*."""

COLOUR_DISTANCE = 30.0
"""ab distance beyond which a pixel's true colour is not the hint's (within it, it is)."""

PATCH_RADIUS = 2
"""The hint is the mean ab of a 5 x 5 patch of the truth, as the sampled hints are."""


@dataclass(frozen=True)
class HintLeak:
    """One photo's leak (ab units), harm and gain (dB); None where the pixels they are measured
    over are absent (no far pixel of another colour, no near pixel of the hint's) or a result
    is perfect there (an infinite PSNR)."""

    leak: float | None
    harm: float | None
    gain: float | None


def sample_colour_hint(
    truth: np.ndarray, seed: int | str = 0, patch_radius: int = PATCH_RADIUS
) -> ABTarget | None:
    """One hint from a colour photo's truth (H, W, 3) uint8: a seeded random pixel among those
    whose (2r + 1)^2 patch has a mean chroma of at least :data:`MIN_HINT_CHROMA`, the patch's
    mean ab, with the patch's radius. None when no pixel is that colourful."""
    from ..media.hints import ABTarget

    ab = metrics.ab_of(truth, torch.float64)[None]
    size = 2 * patch_radius + 1
    mean = F.avg_pool2d(ab, size, 1, patch_radius, count_include_pad=False)[0].numpy()
    rows, columns = np.nonzero(np.hypot(mean[0], mean[1]) >= MIN_HINT_CHROMA)
    if rows.size == 0:
        return None
    key = seed if isinstance(seed, int) else zlib.crc32(str(seed).encode("utf-8"))
    pick = int(np.random.default_rng([key, 21]).integers(rows.size))
    y, x = int(rows[pick]), int(columns[pick])
    a, b = float(mean[0, y, x]), float(mean[1, y, x])
    return ABTarget(x + 0.5, y + 0.5, a, b, patch_radius + 0.5)


def _masked_psnr(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    difference = pred[mask].astype(np.float64) - truth[mask].astype(np.float64)
    mse = float(np.mean(difference * difference))
    return math.inf if mse == 0.0 else 10.0 * math.log10(metrics.DATA_RANGE**2 / mse)


def _finite_difference(one: float, other: float) -> float | None:
    value = one - other
    return value if math.isfinite(value) else None


def hint_leak(
    truth: np.ndarray, automatic: np.ndarray, guided: np.ndarray, hint: ABTarget
) -> HintLeak:
    """Leak, harm and gain (see the module) of ``hint`` on one photo, from its 8-bit (H, W, 3)
    truth, automatic result and result guided by that hint alone."""
    if not (truth.shape == automatic.shape == guided.shape) or truth.ndim != 3:
        raise ValueError(
            f"truth, automatic and guided differ in shape: "
            f"{truth.shape}, {automatic.shape}, {guided.shape}"
        )
    height, width = truth.shape[:2]
    rows, columns = np.mgrid[0:height, 0:width] + 0.5
    far_away = np.hypot(rows - hint.y, columns - hint.x) > FAR_FRACTION * math.hypot(height, width)
    colour = np.array([hint.a, hint.b]).reshape(2, 1, 1)
    true_ab = metrics.ab_of(truth, torch.float64).numpy()
    same_colour = np.sqrt(np.square(true_ab - colour).sum(axis=0)) <= COLOUR_DISTANCE
    far, near = far_away & ~same_colour, ~far_away & same_colour
    leak = harm = gain = None
    if far.any():
        before = metrics.ab_of(automatic, torch.float64).numpy()
        after = metrics.ab_of(guided, torch.float64).numpy()
        toward = colour - before
        length = np.sqrt(np.square(toward).sum(axis=0)).clip(min=1e-9)
        moved = ((after - before) * toward).sum(axis=0) / length
        leak = float(moved[far].mean())
        harm = _finite_difference(
            _masked_psnr(automatic, truth, far), _masked_psnr(guided, truth, far)
        )
    if near.any():
        gain = _finite_difference(
            _masked_psnr(guided, truth, near), _masked_psnr(automatic, truth, near)
        )
    return HintLeak(leak, harm, gain)


def summarise(leaks: Sequence[HintLeak], without_colour: int = 0) -> dict[str, object]:
    """The set's means of leak, harm and gain (each over the photos where it is defined), for
    ``summary.json``'s ``one_hint`` block; ``without_colour`` photos had no pixel to hint."""

    def mean(values: list[float | None]) -> tuple[float | None, int]:
        present = [v for v in values if v is not None]
        return (round(float(np.mean(present)), 4) if present else None), len(present)

    block: dict[str, object] = {}
    for name in ("leak", "harm", "gain"):
        block[name], block[f"{name}_photos"] = mean([getattr(item, name) for item in leaks])
    block.update(
        photos=len(leaks),
        without_colour=without_colour,
        min_chroma=MIN_HINT_CHROMA,
        far="over 1/8 of the diagonal",
        colour_distance=COLOUR_DISTANCE,
    )
    return block


__all__ = [
    "COLOUR_DISTANCE",
    "FAR_FRACTION",
    "MIN_HINT_CHROMA",
    "HintLeak",
    "hint_leak",
    "sample_colour_hint",
    "summarise",
]
