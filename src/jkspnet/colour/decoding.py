"""From the network's 313-bin distributions to colour: input shape, confidence, saturation and
neutrals.

Choices the seed leaves open, each measured on photos whose source the network never saw
(``benchmarks/bench_decoding.py``; figures in MODEL_CARD.md):

- **The input's shape.** Training sees square crops; a photo can be squashed into the square or,
  since the network is fully convolutional, shown at its own aspect ratio (short side ``size``,
  the long side rounded to a multiple of 8, the network's stride). :func:`aspect_shape`.
- **Confidence.** Where the distribution is flat (high entropy) the network is guessing, and the
  mean of a flat distribution is some brownish compromise, the "sepia cast" of an unsure
  colorizer. :func:`confident_ab` shrinks those pixels' chroma toward grey and leaves confident
  pixels as vivid as the temperature makes them.
- **Neutrals.** :func:`neutral_ab` (``--neutral``; measured by ``benchmarks/bench_decoding.py
  --neutrals``) takes a fixed chroma off every pixel, so a pale wash of a few units over white
  walls and grey stone becomes grey while vivid colours lose only that much. Its ``garrote``
  shape (``--neutral-shape``; the non-negative garrote, Breiman 1995) also greys every chroma
  below the threshold but takes ever less off vivid colours, which keep their colourfulness.
- **Saturation.** :func:`saturated_ab` (``--saturation``) multiplies every chroma by one gain,
  before the neutral threshold. A lower temperature also makes colour more vivid, but it moves
  each pixel toward its distribution's mode, hue included; the gain keeps the decoded colour's
  hue (at T = 1 the mean, the estimate nearest the truth on average) and lengthens it, so on the
  held-out photos it buys more colourfulness for the same PSNR (issue 22, ``bench_decoding.py
  --saturations``).
"""

from __future__ import annotations

import torch

MAX_ASPECT = 4.0
"""The long side of an aspect-shaped input is at most this many times the short side."""

CONFIDENT_QUANTILE = 0.9
"""A pixel at least as confident as this share of the photo's pixels keeps its full chroma."""


def aspect_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The network input (h, w) for a photo: short side ``size``, the photo's aspect ratio.

    The long side is rounded to a multiple of 8 and capped at :data:`MAX_ASPECT` times ``size``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"a photo has a positive size, got {width}x{height}")
    ratio = min(MAX_ASPECT, max(height, width) / min(height, width))
    long_side = max(size, 8 * round(size * ratio / 8))
    return (size, long_side) if width >= height else (long_side, size)


def confident_ab(ab: torch.Tensor, flatness: torch.Tensor, gamma: float) -> torch.Tensor:
    """Shrink the chroma of unsure pixels toward grey.

    ``ab``: (2, h, w) (or (N, 2, h, w)); ``flatness``: the normalised entropy (h, w) (or
    (N, h, w)), as :func:`jkspnet.nn.distribution.normalized_entropy` gives. A pixel's
    confidence is ``1 - flatness``; relative to the photo's :data:`CONFIDENT_QUANTILE`
    quantile of confidence and raised to ``gamma`` it scales the pixel's ab (at most 1).
    ``gamma`` 0 leaves ab as it is.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if gamma == 0:
        return ab
    confidence = (1.0 - flatness.float()).clamp(min=0)
    batched = confidence.dim() == 3
    flat = confidence.reshape(confidence.shape[0], -1) if batched else confidence.reshape(1, -1)
    reference = torch.quantile(flat, CONFIDENT_QUANTILE, dim=1).clamp(min=1e-6)
    reference = reference.view(-1, 1, 1) if batched else reference.view(1, 1)
    scale = (confidence / reference).clamp(max=1.0).pow(gamma)
    return ab * (scale[:, None] if batched else scale[None])


def saturated_ab(ab: torch.Tensor, factor: float) -> torch.Tensor:
    """``ab`` with every chroma multiplied by ``factor`` and every hue kept; 1 returns ``ab``
    itself. Colours pushed out of the sRGB gamut are clipped where LAB becomes RGB."""
    if factor < 0:
        raise ValueError(f"factor must be >= 0, got {factor}")
    return ab if factor == 1 else ab * factor


def neutral_ab(ab: torch.Tensor, threshold: float, garrote: bool = False) -> torch.Tensor:
    """Shrink small chromas to grey: each pixel's ab keeps its hue, its chroma ``c`` becomes
    ``max(0, c - threshold)`` (the soft threshold) or, with ``garrote``,
    ``max(0, c - threshold**2 / c)`` (the option's names: ``pipeline.spec.NEUTRAL_SHAPES``).

    ``ab``: (2, h, w) or (N, 2, h, w). A threshold of 0 leaves ab as it is. Why: the annealed
    mean of an unsure pixel is a pale compromise colour, and on pixels that are neutral in truth
    that pale colour is the cast; both shapes remove casts below ``threshold``. The soft
    threshold takes ``threshold`` off vivid colours too; the garrote takes ``threshold**2 / c``,
    a unit or less off a chroma of 25 at threshold 5, so the photo keeps more of its colour for
    the same cast (issue 22: on the 144 held-out photos, ``benchmarks/bench_decoding.py
    --neutral-shapes``).
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if threshold == 0:
        return ab
    channel = ab.dim() - 3
    chroma = torch.linalg.vector_norm(ab, dim=channel, keepdim=True).clamp(min=1e-6)
    if garrote:
        scale = (1 - (threshold / chroma) ** 2).clamp(min=0)
    else:
        scale = (chroma - threshold).clamp(min=0) / chroma
    return ab * scale


__all__ = [
    "CONFIDENT_QUANTILE",
    "MAX_ASPECT",
    "aspect_shape",
    "confident_ab",
    "neutral_ab",
    "saturated_ab",
]
