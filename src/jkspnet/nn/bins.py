"""The 313 in-gamut ab bins (Zhang, Isola & Efros, ECCV 2016) and everything that maps colours to
them: the nearest bins of each pixel, hard and soft histograms over the bins, and the smoothed
prior that training rebalances by. One home, so that a metric, the loss and a reference palette
count colours the same way.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import torch
from torch import Tensor

NUM_BINS = 313
"""Number of in-gamut ab bins: the network's output classes."""


@lru_cache(maxsize=1)
def _ab_bins_rows() -> tuple[tuple[float, float], ...]:
    text = resources.files("jkspnet").joinpath("assets/ab_bins_313.csv").read_text("utf-8")
    rows = [(float(r["a"]), float(r["b"])) for r in csv.DictReader(text.splitlines())]
    if len(rows) != NUM_BINS:
        raise RuntimeError(f"ab bin table holds {len(rows)} rows, expected {NUM_BINS}")
    return tuple(rows)


def ab_bins() -> torch.Tensor:
    """The 313 ab bin centres (Zhang, Isola & Efros 2016), a float32 tensor of shape (313, 2)."""
    return torch.tensor(_ab_bins_rows(), dtype=torch.float32)


HISTOGRAM_SIGMA = 5.0
"""Gaussian smoothing (ab units) of a reference's histogram over the bins, as Zhang, Isola &
Efros (2016) soft-encode truths: a palette is a region of the ab plane, not exact bins."""

_CHUNK_PIXELS = 1 << 17
"""Pixels per chunk in :func:`nearest_bins`: bounds the (pixels, 313) distance matrix (~160 MB)."""


def _work_dtype(*tensors: Tensor) -> torch.dtype:
    """At least float32, float64 if an input is: bin search in bf16/fp16 would misplace pixels."""
    dtype = torch.float32
    for tensor in tensors:
        if tensor.dtype == torch.float64:
            dtype = torch.float64
    return dtype


def check_ab_batch(ab: Tensor) -> None:
    if ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"ab must have shape (N, 2, H, W), got {tuple(ab.shape)}")


def check_bins(bins: Tensor) -> None:
    if bins.dim() != 2 or bins.shape[1] != 2 or bins.shape[0] < 1:
        raise ValueError(f"bins must have shape (B, 2), got {tuple(bins.shape)}")


def nearest_bins(
    ab: Tensor, bins: Tensor, k: int = 5, chunk_pixels: int = _CHUNK_PIXELS
) -> tuple[Tensor, Tensor]:
    """The k nearest bin centres of every pixel, nearest first.

    ab: (N, 2, H, W) in LAB units; bins: (B, 2). Returns ``indices`` (N, k, H, W), long, and
    ``sq_distances`` (N, k, H, W), the exact squared distances to those centres (float32, or
    float64 if an input is). The search uses the expansion |x|^2 - 2 x.c + |c|^2 (one matmul)
    in chunks of ``chunk_pixels`` pixels, so memory stays bounded for any batch; the distances
    returned are then recomputed directly from the chosen centres, so they carry no
    cancellation error. Runs without autocast: a bf16 matmul would misplace pixels.
    """
    check_ab_batch(ab)
    check_bins(bins)
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


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """Index (int64, shape (H, W)) of the ab bin nearest to each pixel of ``ab`` (2, H, W),
    searched in float64 on the CPU.

    ``bins`` defaults to Zhang's 313 in-gamut bin centres (:func:`ab_bins`).
    """
    if ab.dim() != 3 or ab.shape[0] != 2:
        raise ValueError(f"ab must have shape (2, H, W), got {tuple(ab.shape)}")
    centres = (ab_bins() if bins is None else bins).detach().to("cpu", torch.float64)
    if centres.dim() != 2 or centres.shape[1] != 2:
        raise ValueError(f"bins must have shape (Q, 2), got {tuple(centres.shape)}")
    points = ab.detach().to("cpu", torch.float64)[None]
    index, _ = nearest_bins(points, centres, k=1)
    return index.reshape(ab.shape[1:])


def hard_histogram(
    truth_abs: Iterable[torch.Tensor], bins: torch.Tensor | None = None
) -> torch.Tensor:
    """The distribution (float64, shape (Q,), sums to 1) of nearest ab bins over a set's pixels."""
    centres = ab_bins() if bins is None else bins
    counts = torch.zeros(centres.shape[0], dtype=torch.float64)
    for ab in truth_abs:
        index = nearest_bin(ab, centres).reshape(-1)
        counts += torch.bincount(index, minlength=centres.shape[0]).to(torch.float64)
    if counts.sum() == 0:
        raise ValueError("no pixels")
    return counts / counts.sum()


def soft_histogram(ab: torch.Tensor, sigma: float = HISTOGRAM_SIGMA) -> torch.Tensor:
    """The distribution (313,) of ab values (2, ...) over the bins, Gaussian-smoothed by
    ``sigma`` ab units and normalised to sum to 1. Each value counts for its 5 nearest bins with
    Gaussian weights (Zhang et al. 2016's soft encoding), so nearby bins share the mass."""
    values = ab.reshape(2, -1).t().float()
    bins = ab_bins().to(values.device)
    histogram = torch.zeros(NUM_BINS, device=values.device)
    for start in range(0, values.shape[0], 1 << 15):
        chunk = values[start : start + (1 << 15)]
        distances = torch.cdist(chunk, bins)
        near, index = distances.topk(5, dim=1, largest=False)
        weights = torch.softmax(-near.square() / (2 * sigma * sigma), dim=1)
        histogram.index_add_(0, index.reshape(-1), weights.reshape(-1))
    return histogram / histogram.sum().clamp(min=1e-12)


def gaussian_spread(p: Tensor, bins: Tensor, sigma: float) -> Tensor:
    """Spread each bin's mass over the bins with a Gaussian of std sigma between centres: the
    training prior's smoothing, and a reference palette's before it re-weights (a palette is a
    region of the ab plane, so a colour near the reference's counts as in it).

    Each source bin's kernel column is normalised to 1, so mass is moved, never created or
    lost: a bin at the gamut's edge (fewer neighbours) keeps as much of its mass as it spreads.
    """
    sq = torch.cdist(bins, bins).square()
    kernel = torch.exp(sq / (-2.0 * sigma * sigma))
    kernel = kernel / kernel.sum(dim=0, keepdim=True)
    return kernel @ p


@torch.no_grad()
def smoothed_prior(
    ab_batches: Iterable[Tensor], bins: Tensor, sigma: float = HISTOGRAM_SIGMA
) -> Tensor:
    """The training set's smoothed ab distribution p over the bins, shape (B,), sum 1.

    Each pixel counts once in its nearest bin; the counts are then smoothed with a Gaussian of
    std ``sigma`` (ab units) between bin centres, as Zhang et al. do before rebalancing, so a
    bin that the training photos happen to miss is not treated as impossibly rare. ``sigma``
    0 skips the smoothing. Counts accumulate in float64 on the CPU, so any number of batches
    (an iterator over a data loader is fine) sums exactly. Returns float32 on ``bins``' device.
    """
    check_bins(bins)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    counts = torch.zeros(bins.shape[0], dtype=torch.float64)
    for ab in ab_batches:
        nearest, _ = nearest_bins(ab, bins, k=1)
        counts += torch.bincount(nearest.flatten().cpu(), minlength=bins.shape[0]).double()
    total = counts.sum()
    if total <= 0:
        raise ValueError("smoothed_prior needs at least one pixel")
    p = counts / total
    if sigma > 0:
        p = gaussian_spread(p, bins.detach().cpu().double(), sigma)
        p = p / p.sum()
    return p.to(device=bins.device, dtype=torch.float32)


__all__ = [
    "HISTOGRAM_SIGMA",
    "NUM_BINS",
    "ab_bins",
    "check_ab_batch",
    "check_bins",
    "gaussian_spread",
    "hard_histogram",
    "nearest_bin",
    "nearest_bins",
    "smoothed_prior",
    "soft_histogram",
]
