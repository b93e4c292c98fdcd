"""The network's 313-bin colour distribution per pixel: decoding, entropy, re-weighting.

The automatic path only needs each pixel's annealed mean (see :mod:`jkspnet.nn.inference`, which
never materialises the distribution). Guidance needs the distribution itself:

- its entropy says where the network is guessing (the uncertainty map) and how much its guess
  should weigh against a user's hint (the propagation's data term,
  :mod:`jkspnet.pipeline.propagation`);
- a reference photo's palette re-weights it bin by bin (Zhang et al. 2017's global hints,
  applied here at decoding rather than as a network input, since our network has no such input).

All functions take logits or probabilities with the 313 bins in dimension 1, (N, 313, H, W), so
they work on a batch, on one photo (1, 313, H, W) or on flat pixels (P, 313).
"""

from __future__ import annotations

import math

import torch

from .bins import NUM_BINS, ab_bins

MAX_ENTROPY = math.log(NUM_BINS)
"""The entropy (nats) of a flat distribution over the 313 bins: the most a pixel can have."""

_FLOOR = 1e-4
"""The share of a flat distribution mixed into a reference histogram before it re-weights: a
bin the reference lacks is made unlikely, never impossible (which would zero a pixel whose every
likely bin is missing from the reference)."""


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


def expected_ab(log_p: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The annealed mean ab (N, 2, H, W) of a distribution given as log-probabilities:
    ``E[ab]`` under ``p^(1/T)`` renormalised, the same as the automatic path's
    ``out(softmax(logits / T))`` when ``log_p`` is the network's own."""
    weights = torch.softmax(log_p / temperature, dim=1)
    bins = ab_bins().to(weights.device)
    return torch.einsum("nkhw,kc->nchw", weights, bins)


def reweight(log_p: torch.Tensor, histogram: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """``p(bin) * h(bin) ** strength``, renormalised, as log-probabilities: each pixel keeps
    the bins it finds likely but leans toward the reference's palette ``h`` (313,). Strength 0
    leaves the distribution as it is; larger values follow the palette more closely."""
    if strength == 0:
        return log_p
    floor = _FLOOR / NUM_BINS
    log_h = torch.log(histogram.float().to(log_p.device) * (1 - _FLOOR) + floor)
    return torch.log_softmax(log_p + strength * log_h.view(1, -1, *([1] * (log_p.dim() - 2))), 1)


__all__ = [
    "MAX_ENTROPY",
    "entropy",
    "expected_ab",
    "log_probabilities",
    "normalized_entropy",
    "reweight",
]
