"""The network's 313-bin colour distribution per pixel: decoding, entropy, re-weighting.

The automatic path only needs each pixel's annealed mean (see :mod:`jkspnet.nn.inference`, which
never materialises the distribution). Guidance needs the distribution itself:

- its entropy says where the network is guessing (the uncertainty map) and how much its guess
  should weigh against a user's hint (the propagation's data term,
  :mod:`jkspnet.pipeline.propagation`);
- a reference photo's palette re-weights it (after Zhang et al. 2017's global hints,
  applied here at decoding rather than as a network input, since our network has no such input).

All functions take logits or probabilities with the 313 bins in dimension 1, (N, 313, H, W), so
they work on a batch, on one photo (1, 313, H, W) or on flat pixels (P, 313).
"""

from __future__ import annotations

import math

import torch

from .bins import NUM_BINS, ab_bins, gaussian_spread

MAX_ENTROPY = math.log(NUM_BINS)
"""The entropy (nats) of a flat distribution over the 313 bins: the most a pixel can have."""

PALETTE_SIGMA = 12.0
"""Gaussian smoothing (ab units) of a reference's palette before it re-weights: a colour within
about this of one the reference has counts as the reference's (its histogram alone is sharp, each
pixel on its 5 nearest bins, 10 units apart)."""

PALETTE_FLOOR = 0.03
"""A colour the reference lacks keeps this share of the weight of one it has: at strength 1 the
reference multiplies its colours by at most 1 / 0.03, about 33, against the others."""

PLAUSIBLE_SHARE = 0.1
"""A bin with at least this share of the pixel's most likely bin's probability is plausible and
leans fully toward the reference; a less likely one leans in proportion (0.01 of the peak: a
tenth as much), so that a reference cannot raise a pixel's faint tail over what it is sure of."""


def log_probabilities(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / T) over the bins (dimension 1), float32."""
    return torch.log_softmax(logits.float() / temperature, dim=1)


def entropy(log_p: torch.Tensor) -> torch.Tensor:
    """The entropy (nats) of each pixel's distribution, from log-probabilities: (N, H, W)."""
    return (-(log_p.exp() * log_p).sum(dim=1)).clamp(min=0.0)


def normalized_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Each pixel's entropy over that of a flat distribution, in [0, 1]: 1 is a pure guess.

    The measure behind the uncertainty map and the guidance's confidence (1 - this); meant for
    reuse (e.g. shrinking the chroma of pixels the network is unsure of)."""
    return (entropy(log_probabilities(logits)) / MAX_ENTROPY).clamp(0.0, 1.0)


def expected_ab(
    log_p: torch.Tensor, temperature: float = 1.0, bins: torch.Tensor | None = None
) -> torch.Tensor:
    """The annealed mean ab (N, 2, H, W) of a distribution given as log-probabilities:
    ``E[ab]`` under ``p^(1/T)`` renormalised, each bin standing for ``bins`` (313, 2), by
    default the bin centres. With the network's own projection (``ab_projection()`` of the
    PyTorch backend) and its own ``log_p`` this is the automatic path's ``out(softmax(logits /
    T))``; with the centres it is off by as much as training moved that projection."""
    weights = torch.softmax(log_p / temperature, dim=1)
    bins = (ab_bins() if bins is None else bins).to(weights.device, weights.dtype)
    return torch.einsum("nkhw,kc->nchw", weights, bins)


def reweight(
    log_p: torch.Tensor,
    histogram: torch.Tensor,
    strength: float = 1.0,
    *,
    floor: float = PALETTE_FLOOR,
    sigma: float = PALETTE_SIGMA,
    plausible_share: float = PLAUSIBLE_SHARE,
) -> torch.Tensor:
    """Each pixel's distribution leaned toward a reference's palette ``histogram`` (313,), as
    log-probabilities: ``p(bin) * (boost(bin) ** (strength * plausible(bin)))``, renormalised.

    ``boost`` is ``(f + (1 - f) r) / f``: ``r`` the palette smoothed by :data:`PALETTE_SIGMA`
    over its largest bin, ``f`` :data:`PALETTE_FLOOR`, so between 1 (a colour the reference
    lacks) and about 33 (its main colour). ``plausible`` is the bin's probability over the pixel's
    most likely bin's, over :data:`PLAUSIBLE_SHARE`, at most 1. Why, rather than Zhang et al.'s
    ``p * h ** strength``: ``h`` is near zero for every colour the reference lacks, so where the
    network is sure of one (a blue sky under a red-flower reference) that rule kept only the
    pixel's faint tail of the reference's colours and renormalised it into the whole pixel (the
    sky turned red-orange and the rest drained grey), and strengths 1 and 2 both saturated. Here
    the reference chooses among the colours a pixel finds plausible, a pixel sure of a colour
    the reference lacks keeps it, and each strength multiplies the lean (0: unchanged; 1, 2 and
    4 move a torn pixel further each time). ``floor``, ``sigma`` and ``plausible_share`` are
    there to measure others (``benchmarks/bench_reference.py``)."""
    if strength == 0:
        return log_p
    palette = gaussian_spread(histogram.detach().cpu().double(), ab_bins().double(), sigma)
    share = palette / palette.max().clamp(min=1e-300)
    boost = torch.log1p(share * (1 / floor - 1)).float().to(log_p.device)
    plausible = (log_p - log_p.amax(dim=1, keepdim=True)).exp().div(plausible_share).clamp(max=1)
    lean = strength * plausible * boost.view(1, -1, *([1] * (log_p.dim() - 2)))
    return torch.log_softmax(log_p + lean, dim=1)


MODE_SEPARATION = 25.0
"""Least ab distance between two suggested colours (:func:`distinct_modes`): closer ones are
one colour to a person choosing (bins are 10 apart)."""

MODE_SMOOTHING = 8.0
"""Gaussian smoothing (ab units) of a distribution before its modes are ranked, so that a broad
hill of many small bins outranks one slightly larger isolated bin."""


def distinct_modes(
    probabilities: torch.Tensor,
    most: int = 6,
    least: int = 3,
    min_share: float = 0.02,
    separation: float = MODE_SEPARATION,
) -> list[tuple[float, float, float]]:
    """A pixel's distinct likely colours: ``(a, b, share)`` for each of the top modes of its
    distribution over the 313 bins (313,), most likely first, as ideepcolor suggests colours.

    Bins are ranked by their smoothed probability and taken greedily, each at least
    ``separation`` from those taken (so two suggestions never name the same colour); every bin
    then counts for its nearest mode, whose ``share`` is that mass (the shares sum to 1) and
    whose ab is the mean of its bins within half the separation. ``least`` modes are always
    given, more (up to ``most``) only with at least ``min_share`` of the mass."""
    p = probabilities.detach().double().cpu().reshape(-1)
    p = p / p.sum().clamp(min=1e-300)
    bins = ab_bins().double()
    distance = torch.cdist(bins, bins)
    smooth = torch.exp(-distance.square() / (2 * MODE_SMOOTHING**2)) @ p
    chosen: list[int] = []
    for index in torch.argsort(smooth, descending=True).tolist():
        if all(distance[index, other] >= separation for other in chosen):
            chosen.append(index)
            if len(chosen) == most:
                break
    nearest = distance[:, chosen].argmin(dim=1)
    shares = torch.zeros(len(chosen), dtype=torch.float64).index_add_(0, nearest, p)
    modes = []
    for rank, index in enumerate(chosen):
        member = (nearest == rank) & (distance[index] <= separation / 2)
        weights = p * member
        centre = (weights @ bins) / weights.sum() if weights.sum() > 0 else bins[index]
        modes.append((float(centre[0]), float(centre[1]), float(shares[rank])))
    modes.sort(key=lambda mode: -mode[2])
    return [mode for rank, mode in enumerate(modes) if rank < least or mode[2] >= min_share]


__all__ = [
    "MAX_ENTROPY",
    "MODE_SEPARATION",
    "MODE_SMOOTHING",
    "PALETTE_FLOOR",
    "PALETTE_SIGMA",
    "PLAUSIBLE_SHARE",
    "distinct_modes",
    "entropy",
    "expected_ab",
    "log_probabilities",
    "normalized_entropy",
    "reweight",
]
