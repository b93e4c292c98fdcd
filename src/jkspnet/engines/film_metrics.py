"""Films' colour metrics: :func:`flicker`, the temporal instability of a film's colours (the mean
ab change between consecutive frames where the picture stands still), and
:func:`motion_ab_error`, the ab error where it moves, which shows colour that lags behind motion
(smearing)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import torch

from ..colour.spaces import rgb_to_lab
from .metrics import ImageLike, to_uint8_rgb

STATIC_TOLERANCE = 2.0
"""Largest frame-to-frame change of L (LAB units) at which a pixel counts as standing still."""


def _lab_frames(frames: Iterable[ImageLike]) -> Iterator[torch.Tensor]:
    """LAB (3, H, W), float32, of each 8-bit sRGB frame, all of one shape."""
    shape = None
    for index, frame in enumerate(frames):
        image = to_uint8_rgb(frame, f"frame {index}")
        if shape is not None and image.shape != shape:
            raise ValueError(f"frame {index} has shape {image.shape}, the first {shape}")
        shape = image.shape
        yield rgb_to_lab(torch.tensor(image).permute(2, 0, 1).float() / 255.0)


def _ab_distance(one: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    if one.shape != other.shape:
        raise ValueError(f"frames differ in shape: {tuple(one.shape)} vs {tuple(other.shape)}")
    return (one[1:] - other[1:]).pow(2).sum(dim=0).sqrt()


def _pooled_mean(distances: Iterable[tuple[torch.Tensor, torch.Tensor]], nothing: str) -> float:
    """Mean of ``distance[mask]`` over all (distance, mask) pairs' pixels together."""
    total, count = 0.0, 0
    for distance, mask in distances:
        total += float(distance[mask].sum(dtype=torch.float64))
        count += int(mask.sum())
    if count == 0:
        raise ValueError(f"need two frames or more with pixels that {nothing}")
    return total / count


def flicker(frames: Iterable[ImageLike], static_tolerance: float = STATIC_TOLERANCE) -> float:
    """Colour flicker of a film: mean |Δab| between consecutive frames where nothing moves.

    For each pair of consecutive frames (8-bit sRGB, (H, W, 3)), the Euclidean ab distance at
    each pixel whose L changed by at most ``static_tolerance``, averaged over all such pixels of
    all pairs (LAB units). Pixels that move are left out, since their colour ought to change:
    on a static shot this is the flicker alone. Raises ValueError for fewer than two frames or
    no pixel that stands still.
    """
    return _pooled_mean(
        (
            (_ab_distance(lab, previous), (lab[0] - previous[0]).abs() <= static_tolerance)
            for previous, lab in itertools.pairwise(_lab_frames(frames))
        ),
        "stand still",
    )


def motion_ab_error(
    preds: Iterable[ImageLike],
    truths: Iterable[ImageLike],
    static_tolerance: float = STATIC_TOLERANCE,
) -> float:
    """Mean ab error against the truth where the picture moves: how much colour smears.

    Over frames 2, 3, ... of a film and its ground truth (same count and shape), the Euclidean
    ab distance between prediction and truth at each pixel whose truth L changed from the
    previous frame by more than ``static_tolerance``, averaged over those pixels. A smoothing
    that drags colour behind moving edges raises it. Raises ValueError where nothing moves.
    """
    pairs = zip(_lab_frames(preds), _lab_frames(truths), strict=True)
    return _pooled_mean(
        (
            (_ab_distance(pred, truth), (truth[0] - previous[0]).abs() > static_tolerance)
            for (_, previous), (pred, truth) in itertools.pairwise(pairs)
        ),
        "move",
    )


__all__ = ["STATIC_TOLERANCE", "flicker", "motion_ab_error"]
