"""The field's colorization metrics: PSNR, SSIM, colorfulness (CF, ΔCF) and Zhang et al.'s AuC.

Images are 8-bit sRGB arrays of shape (H, W, 3): numpy ``uint8`` arrays, or CPU/GPU ``torch.uint8``
tensors of the same layout (they are copied to numpy). A prediction and its ground truth must have
the same shape.

* :func:`psnr` and :func:`ssim` reproduce ``skimage.metrics.peak_signal_noise_ratio`` and
  ``skimage.metrics.structural_similarity(..., channel_axis=2, data_range=255)`` (7x7 uniform
  window, sample covariance, K1 = 0.01, K2 = 0.03), without depending on scikit-image.
* :func:`colorfulness` is Hasler & Süsstrunk (2003) as DDColor computes it (absolute opponent
  channels); :func:`delta_colorfulness` gives the set's ΔCF and the mean per-photo |ΔCF|.
* :func:`auc_ab` is the AuC of Zhang, Isola & Efros (2016): the share of pixels whose ab error
  (Euclidean distance in the a*b* plane of CIE LAB) is at most ``t``, for ``t`` = 0, 1, ..., 150,
  averaged over those 151 thresholds. With per-pixel weights (:func:`rebalanced_pixel_weights`,
  1 / p(bin of the truth colour)) it is the class-rebalanced AuC.
* :func:`cast` is the colour a colorization paints where the truth has none: the mean LAB
  chroma sqrt(a*^2 + b*^2) of the output over the pixels whose true chroma is below
  :data:`NEUTRAL_CHROMA` (white walls, grey stone, overcast skies). A warm or olive wash shows
  here even when the average colour looks right; grey scores 0.
* Films' flicker and smearing are in :mod:`jkspnet.engines.film_metrics`.
* :class:`PhotoPair` is what a metric sees of one photo; :class:`AbAccuracy` and
  :func:`pooled_auc` pool the AuC over a set's pixels. :mod:`jkspnet.engines.scores` holds the
  evaluation's table of metrics, which scores photos and sets with these.

No perceptual metric (LPIPS, FID) is provided.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..colour.spaces import rgb_to_lab
from ..nn.bins import ab_bins, nearest_bin

ImageLike = np.ndarray | torch.Tensor

DATA_RANGE = 255.0
"""Data range of 8-bit images, used by PSNR and SSIM."""

SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


NEUTRAL_CHROMA = 6.0
"""True LAB chroma below which a pixel counts as neutral, for :func:`cast` (issue 22)."""

AUC_THRESHOLDS: tuple[int, ...] = tuple(range(151))
"""Zhang et al.'s ab error thresholds: 0, 1, ..., 150 (inclusive)."""


# --------------------------------------------------------------------------------------------
# Input handling


def to_uint8_rgb(image: ImageLike, name: str) -> np.ndarray:
    """``image`` as a numpy uint8 array of shape (H, W, 3), or a ValueError."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {image.shape}")
    return image


def _pair(pred: ImageLike, truth: ImageLike) -> tuple[np.ndarray, np.ndarray]:
    pred_np = to_uint8_rgb(pred, "pred")
    truth_np = to_uint8_rgb(truth, "truth")
    if pred_np.shape != truth_np.shape:
        raise ValueError(f"pred and truth differ in shape: {pred_np.shape} vs {truth_np.shape}")
    return pred_np, truth_np


# --------------------------------------------------------------------------------------------
# PSNR and SSIM


def psnr(pred: ImageLike, truth: ImageLike) -> float:
    """Peak signal-to-noise ratio in dB of two 8-bit sRGB images (data range 255).

    The mean squared error runs over every pixel and channel, as in
    ``skimage.metrics.peak_signal_noise_ratio``; identical images give ``float('inf')``.
    """
    pred_np, truth_np = _pair(pred, truth)
    diff = pred_np.astype(np.float64) - truth_np.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def _box_mean(maps: np.ndarray, size: int) -> np.ndarray:
    """Mean over every ``size`` x ``size`` window wholly inside the last two axes ("valid" mode).

    Two running sums; on integer-valued float64 maps (as here) they are exact until 2**53.
    """
    rows = np.cumsum(maps, axis=-2)
    band = rows[..., size - 1 :, :].copy()
    band[..., 1:, :] -= rows[..., :-size, :]
    cols = np.cumsum(band, axis=-1)
    window = cols[..., size - 1 :].copy()
    window[..., 1:] -= cols[..., :-size]
    return window / (size * size)


def ssim(pred: ImageLike, truth: ImageLike) -> float:
    """Mean structural similarity of two 8-bit sRGB images, as scikit-image computes it.

    Matches ``skimage.metrics.structural_similarity(pred, truth, channel_axis=2,
    data_range=255)``: per channel, local means, variances and covariance over a 7x7 uniform
    window (sample covariance, i.e. scaled by 49/48), K1 = 0.01, K2 = 0.03; the SSIM map is
    averaged over the windows that lie wholly inside the image (scikit-image crops the 3-pixel
    border, so its padding never counts), then over the three channels. Both images must be at
    least 7x7. Runs in float64 numpy with running-sum box filters (about a second for a
    megapixel on one core, like scikit-image).
    """
    pred_np, truth_np = _pair(pred, truth)
    height, width = pred_np.shape[:2]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least 7x7 pixels, got {height}x{width}")
    x = pred_np.astype(np.float64).transpose(2, 0, 1)
    y = truth_np.astype(np.float64).transpose(2, 0, 1)
    ux, uy, uxx, uyy, uxy = (_box_mean(m, SSIM_WINDOW) for m in (x, y, x * x, y * y, x * y))
    n = SSIM_WINDOW * SSIM_WINDOW
    cov_norm = n / (n - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean(axis=(1, 2)).mean())


# --------------------------------------------------------------------------------------------
# Colorfulness


def colorfulness(rgb: ImageLike) -> float:
    """Hasler & Süsstrunk's (2003) colorfulness of an 8-bit sRGB image, as DDColor computes it.

    On values in 0..255: ``rg = |R - G|``, ``yb = |(R + G) / 2 - B|`` per pixel, then
    ``CF = sqrt(std(rg)² + std(yb)²) + 0.3 * sqrt(mean(rg)² + mean(yb)²)`` with population
    standard deviations. A grey image (R = G = B everywhere) has CF 0.
    """
    image = to_uint8_rgb(rgb, "rgb").astype(np.float64)
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    rg = np.abs(red - green)
    yb = np.abs(0.5 * (red + green) - blue)
    std_root = math.hypot(float(rg.std()), float(yb.std()))
    mean_root = math.hypot(float(rg.mean()), float(yb.mean()))
    return std_root + 0.3 * mean_root


def delta_colorfulness(
    pred_cfs: Sequence[float], truth_cfs: Sequence[float]
) -> tuple[float, float]:
    """ΔCF of a set from its photos' colorfulness, predictions and truths in the same order.

    Returns ``(|mean(pred_cfs) - mean(truth_cfs)|, mean(|pred_cf - truth_cf|))``: the set's ΔCF
    as DDColor reports it, and the mean per-photo absolute difference.
    """
    pred = np.asarray(pred_cfs, dtype=np.float64)
    truth = np.asarray(truth_cfs, dtype=np.float64)
    if pred.ndim != 1 or pred.shape != truth.shape:
        raise ValueError(f"need two flat lists of equal length, got {pred.shape} and {truth.shape}")
    if pred.size == 0:
        raise ValueError("need at least one photo")
    return abs(float(pred.mean() - truth.mean())), float(np.abs(pred - truth).mean())


# --------------------------------------------------------------------------------------------
# ab error, AuC and class rebalancing


def ab_of(rgb: ImageLike, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The a*b* channels, shape (2, H, W), of an 8-bit sRGB image.

    Computed with :func:`jkspnet.colour.spaces.rgb_to_lab` in ``dtype`` (float32 by default).
    """
    image = torch.tensor(to_uint8_rgb(rgb, "rgb"), dtype=dtype).permute(2, 0, 1) / 255.0
    return rgb_to_lab(image)[1:]


def _check_ab(ab: torch.Tensor, name: str) -> None:
    if ab.dim() != 3 or ab.shape[0] != 2:
        raise ValueError(f"{name} must have shape (2, H, W), got {tuple(ab.shape)}")


def _cast_of_ab(
    pred_ab: torch.Tensor, truth_ab: torch.Tensor, neutral: float
) -> tuple[float | None, int]:
    """(cast, count of neutral pixels) from ab maps of shape (2, H, W); cast is None if none."""
    mask = torch.linalg.vector_norm(truth_ab, dim=0) < neutral
    count = int(mask.sum())
    if count == 0:
        return None, 0
    chroma = torch.linalg.vector_norm(pred_ab, dim=0)
    return float(chroma[mask].mean()), count


def cast(pred: ImageLike, truth: ImageLike, neutral: float = NEUTRAL_CHROMA) -> float | None:
    """The colour cast of ``pred`` on the truth's neutral pixels.

    The mean LAB chroma of ``pred`` over the pixels whose chroma in ``truth`` is below
    ``neutral`` (default 6), or None when the truth has no such pixel. Grey output scores 0; an
    output that leaves neutrals neutral scores about the truth's own figure (a few units).
    """
    pred_np, truth_np = _pair(pred, truth)
    value, _ = _cast_of_ab(ab_of(pred_np, torch.float64), ab_of(truth_np, torch.float64), neutral)
    return value


def ab_error(pred_ab: torch.Tensor, truth_ab: torch.Tensor) -> torch.Tensor:
    """Per-pixel Euclidean distance in the ab plane, float64 of shape (H, W)."""
    _check_ab(pred_ab, "pred_ab")
    _check_ab(truth_ab, "truth_ab")
    if pred_ab.shape != truth_ab.shape:
        raise ValueError(
            f"pred_ab and truth_ab differ in shape: {tuple(pred_ab.shape)} "
            f"vs {tuple(truth_ab.shape)}"
        )
    diff = pred_ab.detach().to(torch.float64) - truth_ab.detach().to(torch.float64)
    return diff.pow(2).sum(dim=0).sqrt()


def _threshold_hits(
    errors: np.ndarray, thresholds: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """For each threshold t, the count (or weight) of pixels with error <= t; and the total."""
    order = np.argsort(errors, kind="stable")
    sorted_errors = errors[order]
    within = np.searchsorted(sorted_errors, thresholds, side="right")
    if weights is None:
        return within.astype(np.float64), float(errors.size)
    cumulative = np.concatenate(([0.0], np.cumsum(weights[order], dtype=np.float64)))
    return cumulative[within], float(cumulative[-1])


def _thresholds_array(thresholds: Iterable[float]) -> np.ndarray:
    values = np.asarray(list(thresholds), dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("thresholds must be a non-empty flat sequence")
    return values


def ab_accuracies(
    pred_ab: torch.Tensor,
    truth_ab: torch.Tensor,
    thresholds: Iterable[float] = AUC_THRESHOLDS,
    weights: torch.Tensor | np.ndarray | None = None,
) -> np.ndarray:
    """Share of pixels whose ab error is at most each threshold (inclusive), shape (T,).

    With ``weights`` (shape (H, W), non-negative) each pixel counts with its weight: the share
    is ``sum(w * [err <= t]) / sum(w)``.
    """
    errors = ab_error(pred_ab, truth_ab).reshape(-1).numpy()
    flat_weights = None
    if weights is not None:
        flat_weights = _weights_array(weights, tuple(truth_ab.shape[1:]))
    hits, total = _threshold_hits(errors, _thresholds_array(thresholds), flat_weights)
    if total <= 0.0:
        raise ValueError("no pixels, or pixel weights that sum to zero")
    return hits / total


def _weights_array(weights: torch.Tensor | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().numpy()
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"weights must have shape {shape}, got {array.shape}")
    if np.any(array < 0) or not np.all(np.isfinite(array)):
        raise ValueError("weights must be finite and non-negative")
    return array.reshape(-1)


def auc_from_accuracies(accuracies: Sequence[float] | np.ndarray) -> float:
    """AuC from per-threshold accuracies: their mean over the thresholds.

    Over the 151 integer thresholds 0..150 this is the area under the cumulative curve
    normalised to [0, 1] by a rectangle rule (each threshold counts 1/151). The trapezoid rule
    would give ``(sum - (a[0] + a[-1]) / 2) / 150`` instead; the two differ by at most 1/151.
    """
    values = np.asarray(accuracies, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no accuracies")
    return float(values.mean())


def auc_ab(
    pred_ab: torch.Tensor,
    truth_ab: torch.Tensor,
    thresholds: Iterable[float] = AUC_THRESHOLDS,
    weights: torch.Tensor | np.ndarray | None = None,
) -> float:
    """Zhang et al.'s AuC of the ab error, in [0, 1]; pass ``weights`` for the rebalanced one.

    For each threshold t (default 0, 1, ..., 150) the accuracy is the share of pixels whose
    ab error (Euclidean distance between ``pred_ab`` and ``truth_ab``, both (2, H, W)) is
    ``<= t``; the AuC is the mean of those accuracies over the thresholds (see
    :func:`auc_from_accuracies`). A constant error of 10 thus gives 141/151. With per-pixel
    ``weights`` of shape (H, W), e.g. :func:`rebalanced_pixel_weights`, each pixel counts with
    its weight: the class-rebalanced AuC.
    """
    return auc_from_accuracies(ab_accuracies(pred_ab, truth_ab, thresholds, weights))


def rebalanced_pixel_weights(
    truth_ab: torch.Tensor, bins: torch.Tensor | None, prior: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """Per-pixel weights (float64, shape (H, W)) for Zhang's class-rebalanced AuC.

    Each pixel gets ``w(q) = 1 / p(q)`` for the bin ``q`` nearest its truth colour, where ``p`` is
    ``prior`` (shape (Q,), a distribution of the truth set's colours over ``bins``, which default
    to the 313 bins). The weights are normalised once for the whole prior, so that their expected
    value under it is 1 (``sum_q p(q) w(q) = 1``, i.e. ``w(q) = 1 / (p(q) * #{q: p(q) > 0})``),
    never per image, so weights from different photos can be pooled. A truth pixel whose bin has
    prior 0 raises ValueError: pass a prior computed from the same set
    (:func:`jkspnet.nn.bins.hard_histogram`) or a smoothed one.
    """
    centres = ab_bins() if bins is None else bins
    p = torch.as_tensor(prior, dtype=torch.float64).detach().cpu()
    if p.shape != (centres.shape[0],):
        raise ValueError(f"prior must have shape ({centres.shape[0]},), got {tuple(p.shape)}")
    if torch.any(p < 0) or not torch.all(torch.isfinite(p)) or p.sum() <= 0:
        raise ValueError("prior must be finite, non-negative and not all zero")
    p = p / p.sum()
    seen = p > 0
    bin_weights = torch.zeros_like(p)
    bin_weights[seen] = 1.0 / (p[seen] * int(seen.sum()))
    index = nearest_bin(truth_ab, centres)
    if not torch.all(seen[index]):
        raise ValueError("a truth pixel falls in an ab bin whose prior is 0")
    return bin_weights[index]


# --------------------------------------------------------------------------------------------
# What the metric table (:mod:`jkspnet.engines.scores`) scores a photo from


class PhotoPair:
    """What a metric sees of one photo: ``pred`` and ``truth`` (8-bit sRGB, full resolution),
    and for the ab metrics the two at the size they are scored at (``at_size``: the pair
    reduced, or the full pair), the AuC thresholds and the truth set's ``prior`` (for the
    rebalanced AuC; None: not scored). The ab error is computed once, on first use."""

    def __init__(
        self,
        pred: ImageLike,
        truth: ImageLike,
        prior: torch.Tensor | np.ndarray | None = None,
        bins: torch.Tensor | None = None,
        thresholds: Iterable[float] = AUC_THRESHOLDS,
        at_size: tuple[ImageLike, ImageLike] | None = None,
    ) -> None:
        self.pred, self.truth = _pair(pred, truth)
        self.small = (self.pred, self.truth) if at_size is None else _pair(*at_size)
        self.prior, self.bins = prior, bins
        self.thresholds = _thresholds_array(thresholds)

    @functools.cached_property
    def truth_ab(self) -> torch.Tensor:
        return ab_of(self.small[1], torch.float64)

    @functools.cached_property
    def ab_errors(self) -> np.ndarray:
        """Each pixel's ab error at the ab metrics' size, flat."""
        return ab_error(ab_of(self.small[0], torch.float64), self.truth_ab).reshape(-1).numpy()

    def ab_accuracy(self, rebalanced: bool = False) -> AbAccuracy | None:
        """The share of pixels within each threshold, each pixel counting 1 (or, ``rebalanced``,
        its :func:`rebalanced_pixel_weights`; None without a prior)."""
        weights = None
        if rebalanced:
            if self.prior is None:
                return None
            weights = rebalanced_pixel_weights(self.truth_ab, self.bins, self.prior)
            weights = weights.reshape(-1).numpy()
        hits, total = _threshold_hits(self.ab_errors, self.thresholds, weights)
        return AbAccuracy(hits / total, total)


@dataclass(frozen=True, eq=False)
class AbAccuracy:
    """One photo's share of pixels within each AuC threshold, and its weight in a set (its pixel
    count, or its total pixel weight), so that a set's AuC pools pixels (:func:`pooled_auc`)."""

    accuracy: np.ndarray
    weight: float

    @property
    def auc(self) -> float:
        return auc_from_accuracies(self.accuracy)


def pooled_auc(parts: Sequence[AbAccuracy | None]) -> float | None:
    """A set's AuC from its photos': the accuracy at each threshold is the weighted mean of the
    photos' (the share of all the set's pixels within it), so it is not the mean of per-photo
    AuCs, which would favour small photos. None unless every photo has one."""
    if any(part is None for part in parts):
        return None
    weight = np.array([part.weight for part in parts], dtype=np.float64)
    accuracy = np.stack([part.accuracy for part in parts])
    return auc_from_accuracies((accuracy * weight[:, None]).sum(axis=0) / weight.sum())
