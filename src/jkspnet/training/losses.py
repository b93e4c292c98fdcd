"""The training loss over the 313 in-gamut ab bins (Zhang, Isola & Efros, ECCV 2016).

The network predicts a distribution over the 313 ab bins per pixel (:meth:`JKSPNet.logits`). Its
target is the true ab "soft-encoded" over the k nearest bins with a Gaussian (sigma 5 ab units),
the cross-entropy is rebalanced so that rare (saturated) colours are not drowned out by the
greyish ones that dominate photos, and a small smooth-L1 term on the decoded ab anchors the mean.

Everything stays sparse: a target is (indices, weights) of shape (N, k, H, W), never a dense
(N, 313, H, W) tensor, so batch 256 at 128x128 costs megabytes for the targets, not gigabytes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.bins import ab_bins, check_ab_batch, check_bins, nearest_bins
from ..nn.model import channel_softmax
from .config import TrainConfig

DEFAULT_SIGMA = 5.0
"""Gaussian std (ab units) of the soft encoding and of the histogram smoothing, as published."""

DEFAULT_K = 5
"""Bins a pixel's target is spread over, as published."""

DEFAULT_LAMBDA = 0.5
"""Mix of the empirical distribution and the uniform one in the rebalancing, as published."""


@torch.no_grad()
def soft_encode(
    ab: Tensor, bins: Tensor, sigma: float = DEFAULT_SIGMA, k: int = DEFAULT_K
) -> tuple[Tensor, Tensor]:
    """The soft-encoded target: each pixel's ab spread over its k nearest bins.

    Weights follow a Gaussian of std ``sigma`` in the distance to each bin centre and sum to 1
    per pixel; a hard one-hot target would punish a prediction one bin off as much as one on
    the other side of the gamut. Returns ``indices`` (N, k, H, W), long, nearest first, and
    ``weights`` (N, k, H, W), float32 (float64 if an input is); a target, so no gradient.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    indices, sq_distances = nearest_bins(ab, bins, k)
    # A softmax over the k log-Gaussians: stable even when every bin is far (weights never 0/0).
    weights = torch.softmax(sq_distances / (-2.0 * sigma * sigma), dim=1)
    return indices, weights


def dense_soft_encode(
    ab: Tensor, bins: Tensor, sigma: float = DEFAULT_SIGMA, k: int = DEFAULT_K
) -> Tensor:
    """:func:`soft_encode` as a dense (N, B, H, W) distribution: a reference for tests only.

    At batch 256 and 128x128 this is 5 GB in float32, which is why training never builds it.
    """
    indices, weights = soft_encode(ab, bins, sigma, k)
    n, _, h, w = ab.shape
    dense = torch.zeros(n, bins.shape[0], h, w, dtype=weights.dtype, device=weights.device)
    return dense.scatter_(1, indices, weights)


def rebalance_weights(p: Tensor, lam: float = DEFAULT_LAMBDA) -> Tensor:
    """Class weights w ∝ ((1 - lam) p + lam / B)^-1 with sum(p * w) = 1.

    Without them the loss is dominated by the common low-saturation bins and the network
    learns sepia. Mixing with the uniform distribution (``lam``, 0.5 as published) caps the
    weight of a never-seen bin at B / lam times that of uniform; ``lam`` 1 gives all ones.
    Normalising the expectation under p to 1 keeps the rebalanced loss on the scale of the
    plain one. ``p`` is normalised to sum 1 first; returns the dtype and device of ``p``.
    """
    if p.dim() != 1 or p.numel() < 1:
        raise ValueError(f"p must have shape (B,), got {tuple(p.shape)}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    if bool((p < 0).any()) or not bool(torch.isfinite(p).all()) or p.sum() <= 0:
        raise ValueError("p must be finite, non-negative and not all zero")
    work = p.double() / p.double().sum()
    weights = 1.0 / ((1.0 - lam) * work + lam / p.numel())
    weights = weights / (work * weights).sum()
    if not bool(torch.isfinite(weights).all()):
        raise ValueError("lam = 0 with empty bins in p gives infinite weights; use lam > 0")
    return weights.to(p.dtype)


class ColorizationLoss(nn.Module):
    """Rebalanced soft-encoded cross-entropy over the bins plus a small smooth-L1 on ab.

    ``loss = ce_weight * ce + ab_weight * ab``, where

    * ``ce`` is the mean over pixels of ``class_weights[nearest bin of the truth]`` times the
      cross-entropy between the soft-encoded truth (:func:`soft_encode`, ``sigma``, ``k``) and
      ``log_softmax(logits)``. It learns a multimodal colour distribution (a car may be red or
      blue) instead of the desaturated average a regression loss converges to. It is computed
      in float32 with a gather on the log-softmax, also under bf16/fp16 autocast.
    * ``ab`` is the smooth-L1 (Huber, ``huber_delta`` ab units, default 1.0) between the
      decoded ab (``ab_pred``, e.g. :meth:`JKSPNet.decode` at T = 1) and the true ab, averaged
      over pixels and both channels. It anchors the distribution's mean, which is what T = 1
      decoding shows, and trains the output convolution if it is left trainable. It is not
      rebalanced.

    Each term's weight is a keyword argument ``<term>_weight`` (:attr:`weights` holds them by
    term); what is not given is :class:`~jkspnet.training.config.TrainConfig`'s default, the one
    home of a term's weight (:meth:`TrainConfig.loss_weights`). A new term is its value in
    :meth:`forward`'s ``parts`` and its weight there: the trainer logs and validates every term
    (:attr:`terms`).

    Default weights: ``ce_weight`` 1.0 and ``ab_weight`` 0.02. At the start the CE is about
    ln(313) = 5.7 and the smooth-L1 of a near-uniform prediction against photo colours is some
    10-30 ab units, i.e. 0.2-0.6 after weighting: the CE leads, as it must for vivid colour.
    In gradient terms, the ab term's pull on a logit is ``ab_weight * p_j * |c_j - mean|``,
    small while the distribution is flat and up to ~0.02 * 50 = 1 (the CE's own scale) once
    it is peaked on a wrong colour, so both terms matter late in training. With a delta of 1
    the term is L1 (robust to the odd mislabelled pixel) beyond one ab unit, quadratic within.

    ``bins`` (B, 2) default to :func:`jkspnet.nn.bins.ab_bins`; ``class_weights`` (B,) default to
    ones (no rebalancing; see :func:`jkspnet.nn.bins.smoothed_prior` and
    :func:`rebalance_weights`). Both are buffers, so ``.to(device)`` moves them and they are
    saved in ``state_dict``.
    """

    bins: Tensor
    class_weights: Tensor

    def __init__(
        self,
        bins: Tensor | None = None,
        class_weights: Tensor | None = None,
        sigma: float = DEFAULT_SIGMA,
        k: int = DEFAULT_K,
        huber_delta: float = 1.0,
        **weights: float,
    ) -> None:
        super().__init__()
        bins = ab_bins() if bins is None else bins.detach().float().clone()
        check_bins(bins)
        num_bins = bins.shape[0]
        if class_weights is None:
            class_weights = torch.ones(num_bins)
        class_weights = class_weights.detach().float().clone()
        if class_weights.shape != (num_bins,):
            raise ValueError(
                f"class_weights must have shape ({num_bins},), got {tuple(class_weights.shape)}"
            )
        if bool((class_weights < 0).any()) or not bool(torch.isfinite(class_weights).all()):
            raise ValueError("class_weights must be finite and non-negative")
        defaults = TrainConfig().loss_weights()
        if unknown := sorted(set(weights) - set(defaults)):
            raise TypeError(f"unknown loss weights {unknown} (the terms': {sorted(defaults)})")
        weights = {**defaults, **weights}
        if any(value < 0 for value in weights.values()):
            raise ValueError(f"loss weights must be >= 0, got {weights}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if not 1 <= k <= num_bins:
            raise ValueError(f"k must be in [1, {num_bins}], got {k}")
        if not huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0, got {huber_delta}")
        self.register_buffer("bins", bins)
        self.register_buffer("class_weights", class_weights)
        self.weights = {
            name.removesuffix("_weight"): float(value) for name, value in weights.items()
        }
        self.sigma = float(sigma)
        self.k = int(k)
        self.huber_delta = float(huber_delta)

    def extra_repr(self) -> str:
        weights = "".join(f"{term}_weight={value}, " for term, value in self.weights.items())
        return (
            f"bins={self.bins.shape[0]}, {weights}"
            f"sigma={self.sigma}, k={self.k}, huber_delta={self.huber_delta}"
        )

    def forward(self, logits: Tensor, ab_pred: Tensor, ab_true: Tensor) -> dict[str, Tensor]:
        """``{"loss", "ce", "ab"}``: the weighted total and its two unweighted terms (float32).

        logits: (N, B, H, W); ab_pred and ab_true: (N, 2, H, W) in LAB units.
        """
        check_ab_batch(ab_true)
        check_ab_batch(ab_pred)
        n, _, h, w = ab_true.shape
        if logits.shape != (n, self.bins.shape[0], h, w):
            raise ValueError(
                f"logits must have shape {(n, self.bins.shape[0], h, w)}, got {tuple(logits.shape)}"
            )
        if ab_pred.shape != ab_true.shape:
            raise ValueError(
                f"ab_pred shape {tuple(ab_pred.shape)} != ab_true shape {tuple(ab_true.shape)}"
            )
        with torch.autocast(device_type=logits.device.type, enabled=False):
            indices, weights = soft_encode(ab_true.detach(), self.bins, self.sigma, self.k)
            log_probs = channel_softmax(logits.float(), log=True)
            pixel_ce = -(log_probs.gather(1, indices) * weights.float()).sum(dim=1)
            ce = (self.class_weights[indices[:, 0]] * pixel_ce).mean()
            ab = F.smooth_l1_loss(ab_pred.float(), ab_true.float(), beta=self.huber_delta)
            parts = {"ce": ce, "ab": ab}  # a new term: here, and its weight in TrainConfig
            if parts.keys() != self.weights.keys():
                raise ValueError(f"loss terms {list(parts)} but weights for {list(self.weights)}")
            loss = sum(self.weights[name] * value for name, value in parts.items())
        return {"loss": loss, **parts}

    @property
    def terms(self) -> tuple[str, ...]:
        """The names :meth:`forward` returns: ``loss`` and each term."""
        return ("loss", *self.weights)


def target_entropy(weights: Tensor) -> Tensor:
    """Mean entropy of soft-encoded targets (N, k, H, W): the floor of the unweighted CE.

    Useful when reading training logs: the CE can only fall to this value, not to 0
    (about 1.0-1.2 nats at sigma 5 with k 5 on the 10-unit bins).
    """
    w = weights.double()
    return -(torch.where(w > 0, w * w.clamp(min=1e-300).log(), 0.0)).sum(dim=1).mean().float()


__all__ = [
    "DEFAULT_K",
    "DEFAULT_LAMBDA",
    "DEFAULT_SIGMA",
    "ColorizationLoss",
    "dense_soft_encode",
    "rebalance_weights",
    "soft_encode",
    "target_entropy",
]
