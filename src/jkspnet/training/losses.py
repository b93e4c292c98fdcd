"""The training loss over the 313 in-gamut ab bins (Zhang, Isola & Efros, ECCV 2016).

The network predicts a distribution over the 313 ab bins per pixel (:meth:`JKSPNet.logits`). Its
target is the true ab "soft-encoded" over the k nearest bins with a Gaussian (sigma 5 ab units),
the cross-entropy is rebalanced so that rare (saturated) colours are not drowned out by the
greyish ones that dominate photos, and a small smooth-L1 term on the decoded ab anchors the mean.

Everything stays sparse: a target is (indices, weights) of shape (N, k, H, W), never a dense
(N, 313, H, W) tensor, so batch 256 at 128x128 costs megabytes for the targets, not gigabytes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.model import ab_bins, channel_softmax

DEFAULT_SIGMA = 5.0
"""Gaussian std (ab units) of the soft encoding and of the histogram smoothing, as published."""

DEFAULT_K = 5
"""Bins a pixel's target is spread over, as published."""

DEFAULT_LAMBDA = 0.5
"""Mix of the empirical distribution and the uniform one in the rebalancing, as published."""

_CHUNK_PIXELS = 1 << 17
"""Pixels per chunk in :func:`nearest_bins`: bounds the (pixels, 313) distance matrix (~160 MB)."""


def _work_dtype(*tensors: Tensor) -> torch.dtype:
    """At least float32, float64 if an input is: bin search in bf16/fp16 would misplace pixels."""
    dtype = torch.float32
    for tensor in tensors:
        if tensor.dtype == torch.float64:
            dtype = torch.float64
    return dtype


def _check_ab(ab: Tensor) -> None:
    if ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"ab must have shape (N, 2, H, W), got {tuple(ab.shape)}")


def _check_bins(bins: Tensor) -> None:
    if bins.dim() != 2 or bins.shape[1] != 2 or bins.shape[0] < 1:
        raise ValueError(f"bins must have shape (B, 2), got {tuple(bins.shape)}")


def nearest_bins(
    ab: Tensor, bins: Tensor, k: int = DEFAULT_K, chunk_pixels: int = _CHUNK_PIXELS
) -> tuple[Tensor, Tensor]:
    """The k nearest bin centres of every pixel, nearest first.

    ab: (N, 2, H, W) in LAB units; bins: (B, 2). Returns ``indices`` (N, k, H, W), long, and
    ``sq_distances`` (N, k, H, W), the exact squared distances to those centres (float32, or
    float64 if an input is). The search uses the expansion |x|^2 - 2 x.c + |c|^2 (one matmul)
    in chunks of ``chunk_pixels`` pixels, so memory stays bounded for any batch; the distances
    returned are then recomputed directly from the chosen centres, so they carry no
    cancellation error. Runs without autocast: a bf16 matmul would misplace pixels.
    """
    _check_ab(ab)
    _check_bins(bins)
    if not 1 <= k <= bins.shape[0]:
        raise ValueError(f"k must be in [1, {bins.shape[0]}], got {k}")
    if chunk_pixels < 1:
        raise ValueError(f"chunk_pixels must be >= 1, got {chunk_pixels}")
    n, _, h, w = ab.shape
    dtype = _work_dtype(ab, bins)
    with torch.autocast(device_type=ab.device.type, enabled=False):
        centres = bins.to(device=ab.device, dtype=dtype)
        centres_sq = (centres * centres).sum(dim=1)
        pixels = ab.to(dtype).permute(0, 2, 3, 1).reshape(-1, 2)
        index_chunks, dist_chunks = [], []
        for chunk in pixels.split(chunk_pixels):
            # |c|^2 - 2 x.c in one fused op; |x|^2 is constant per row, so topk needs no more.
            approx = torch.addmm(centres_sq, chunk, centres.t(), alpha=-2.0)
            index = approx.topk(k, dim=1, largest=False, sorted=True).indices
            diff = chunk.unsqueeze(1) - centres[index]
            index_chunks.append(index)
            dist_chunks.append((diff * diff).sum(dim=2))
        if index_chunks:
            indices, sq_distances = torch.cat(index_chunks), torch.cat(dist_chunks)
        else:  # no pixels at all
            indices = torch.empty(0, k, dtype=torch.long, device=ab.device)
            sq_distances = torch.empty(0, k, dtype=dtype, device=ab.device)
    indices = indices.reshape(n, h, w, k).permute(0, 3, 1, 2).contiguous()
    sq_distances = sq_distances.reshape(n, h, w, k).permute(0, 3, 1, 2).contiguous()
    return indices, sq_distances


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


def _gaussian_spread(p: Tensor, bins: Tensor, sigma: float) -> Tensor:
    """Spread each bin's mass over the bins with a Gaussian of std sigma between centres.

    Each source bin's kernel column is normalised to 1, so mass is moved, never created or
    lost: a bin at the gamut's edge (fewer neighbours) keeps as much of its mass as it spreads.
    """
    sq = torch.cdist(bins, bins).square()
    kernel = torch.exp(sq / (-2.0 * sigma * sigma))
    kernel = kernel / kernel.sum(dim=0, keepdim=True)
    return kernel @ p


@torch.no_grad()
def ab_histogram(
    ab_batches: Iterable[Tensor], bins: Tensor, sigma: float = DEFAULT_SIGMA
) -> Tensor:
    """The training set's smoothed ab distribution p over the bins, shape (B,), sum 1.

    Each pixel counts once in its nearest bin; the counts are then smoothed with a Gaussian of
    std ``sigma`` (ab units) between bin centres, as Zhang et al. do before rebalancing, so a
    bin that the training photos happen to miss is not treated as impossibly rare. ``sigma``
    0 skips the smoothing. Counts accumulate in float64 on the CPU, so any number of batches
    (an iterator over a data loader is fine) sums exactly. Returns float32 on ``bins``' device.
    """
    _check_bins(bins)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    counts = torch.zeros(bins.shape[0], dtype=torch.float64)
    for ab in ab_batches:
        nearest, _ = nearest_bins(ab, bins, k=1)
        counts += torch.bincount(nearest.flatten().cpu(), minlength=bins.shape[0]).double()
    total = counts.sum()
    if total <= 0:
        raise ValueError("ab_histogram needs at least one pixel")
    p = counts / total
    if sigma > 0:
        p = _gaussian_spread(p, bins.detach().cpu().double(), sigma)
        p = p / p.sum()
    return p.to(device=bins.device, dtype=torch.float32)


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

    Default weights: ``ce_weight`` 1.0 and ``ab_weight`` 0.02. At the start the CE is about
    ln(313) = 5.7 and the smooth-L1 of a near-uniform prediction against photo colours is some
    10-30 ab units, i.e. 0.2-0.6 after weighting: the CE leads, as it must for vivid colour.
    In gradient terms, the ab term's pull on a logit is ``ab_weight * p_j * |c_j - mean|``,
    small while the distribution is flat and up to ~0.02 * 50 = 1 (the CE's own scale) once
    it is peaked on a wrong colour, so both terms matter late in training. With a delta of 1
    the term is L1 (robust to the odd mislabelled pixel) beyond one ab unit, quadratic within.

    ``bins`` (B, 2) default to :func:`jkspnet.nn.model.ab_bins`; ``class_weights`` (B,) default to
    ones (no rebalancing; see :func:`ab_histogram` and :func:`rebalance_weights`). Both are
    buffers, so ``.to(device)`` moves them and they are saved in ``state_dict``.
    """

    bins: Tensor
    class_weights: Tensor

    def __init__(
        self,
        bins: Tensor | None = None,
        class_weights: Tensor | None = None,
        ce_weight: float = 1.0,
        ab_weight: float = 0.02,
        sigma: float = DEFAULT_SIGMA,
        k: int = DEFAULT_K,
        huber_delta: float = 1.0,
    ) -> None:
        super().__init__()
        bins = ab_bins() if bins is None else bins.detach().float().clone()
        _check_bins(bins)
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
        if ce_weight < 0 or ab_weight < 0:
            raise ValueError(f"loss weights must be >= 0, got {ce_weight} and {ab_weight}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if not 1 <= k <= num_bins:
            raise ValueError(f"k must be in [1, {num_bins}], got {k}")
        if not huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0, got {huber_delta}")
        self.register_buffer("bins", bins)
        self.register_buffer("class_weights", class_weights)
        self.ce_weight = float(ce_weight)
        self.ab_weight = float(ab_weight)
        self.sigma = float(sigma)
        self.k = int(k)
        self.huber_delta = float(huber_delta)

    def extra_repr(self) -> str:
        return (
            f"bins={self.bins.shape[0]}, ce_weight={self.ce_weight}, ab_weight={self.ab_weight}, "
            f"sigma={self.sigma}, k={self.k}, huber_delta={self.huber_delta}"
        )

    def forward(self, logits: Tensor, ab_pred: Tensor, ab_true: Tensor) -> dict[str, Tensor]:
        """``{"loss", "ce", "ab"}``: the weighted total and its two unweighted terms (float32).

        logits: (N, B, H, W); ab_pred and ab_true: (N, 2, H, W) in LAB units.
        """
        _check_ab(ab_true)
        _check_ab(ab_pred)
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
            loss = self.ce_weight * ce + self.ab_weight * ab
        return {"loss": loss, "ce": ce, "ab": ab}


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
    "ab_histogram",
    "dense_soft_encode",
    "nearest_bins",
    "rebalance_weights",
    "soft_encode",
    "target_entropy",
]
