"""Edge-aware propagation of colour hints over the photo's L (Levin, Lischinski & Weiss 2004).

A hint must colour the region it falls in and stop at that region's edges. Following "Colorization
using optimization", each pixel's colour should be the affinity-weighted mean of its 3x3
neighbours', the affinities falling with the difference of L (scaled by the local variance of L),
so colour flows freely along a smooth surface and hardly across an edge.

Two fields are propagated with the same sparse system, whose row for pixel r reads

    (1 + lambda_r + mu_r) X_r - sum_s w_rs X_s = mu_r y_r

with ``w`` the row-normalised affinities, ``mu_r`` large at a hinted pixel and 0 elsewhere, and
``lambda_r`` a data term that lets a hint's hold fade. With ``y = 1`` the solution is the
hints' *reach* R (1 at a hint, falling off with distance and at edges); with ``y`` = the hint's
ab it is their colour times their reach, S. The result is ``(1 - R) * prior + S``: the hint's
own colour where it reaches (whatever the network's guess varies there), the network's
prediction where it does not, and exactly the automatic result without hints.

``lambda_r`` grows steeply with the network's confidence (1 - normalised entropy): where the
network is sure (a clear sky) a hint fades within a few pixels; where it is guessing, the hint
carries across its region as plain Levin propagation would. The affinities also fall with the
difference of confidence between neighbours: in the README's example the sky and the brick tower
have the same L, and only the network's certainty about the sky tells them apart.

A texture such as brick or grass looks alike whichever region it belongs to, and with a single
hint and a prior this weak the system spreads the hint over the whole photo (issue 21: one hint
moved far, differently coloured pixels 11.5 ab units toward its colour). Two cues from what the
network sees keep a hint in its region. The affinities also fall with the difference of the
neighbours' 313-bin distributions (:data:`SIGMA_FEATURES`). And each hint's correction is
weighed by how near the hints are along the photo (:func:`hint_reach`): a geodesic distance whose
steps cost more across an edge of L or of the distributions, summed over the hints and set against
a floor, so one hint fades beyond its region while fifty cover the photo as before.
Within that reach the hints also lift the confidence's hold on ``lambda_r``: a hint says the
network is wrong where it falls, however sure it was there, so its own region follows it while a
region across an edge (where the reach has fallen) keeps the network's colour.

The system is solved with SciPy's sparse LU on a reduced grid (:func:`hint_grid`), where a
12 MP photo costs what a small one does. The correction ``result - prior`` is brought back to
full resolution by fast guided upsampling (He & Sun 2015): the guided filter's local linear
coefficients ``D = A L + B`` are fitted on the grid against the grid's L and
applied to the full-resolution L (:func:`correction_coefficients`), so the correction's edges follow
the photo's own edges at full resolution rather than the grid's blocky ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..colour.upsample import local_linear_fit, reduced_shape
from ..errors import require_extra
from ..media.hints import ABTarget

GRID_LONG_SIDE = 128
"""The reduced grid's long side. Measured on the held-out photos (25 of them, 10 and 50 hints),
128 scored as well as 256 (22.37 / 24.63 dB against 22.08 / 24.49, in an earlier form of this
propagation) at an eighth of the cost (the solve takes about 20 ms): at this size a texture
such as brick averages out and no longer stops a hint, while the guided upsampling puts the
edges back at full resolution. Photos no larger are solved at their own resolution."""

PRIOR_WEIGHT = 0.05
PRIOR_POWER = 6.0
"""``lambda = PRIOR_FLOOR + PRIOR_WEIGHT * confidence ** PRIOR_POWER``: about 0.01 where the
network is sure (confidence 0.75, a clear sky: a correction fades within a few pixels, so a hint
on a tower does not tint the sky) and about 1e-5 where it is guessing (confidence 0.3: the hint
carries across its region). On 25 held-out photos this scored 21.06 / 23.45 / 25.95 dB at 1 / 10
/ 50 hints; ``1e-4 * confidence ** 2`` scored 21.54 / 23.31 / 25.80 but let one hint on the
example's tower turn its sky purple."""

PRIOR_FLOOR = 1e-6
"""``lambda`` where the network is guessing outright: the correction then spreads about
1 / sqrt(this) = 1000 grid pixels, i.e. over its whole region, as plain Levin propagation."""

SIGMA_CONFIDENCE = 0.02
"""Scale of confidence differences in the affinities: a step of 0.1 between neighbours (the
edge of a region the network is sure of) passes e^-12 of the colour. 0.02 scored best of 0,
0.02, 0.03 and 0.05 on 25 held-out photos (+0.1 dB over none at 10 and 50 hints)."""

HINT_WEIGHT = 1000.0
"""``mu`` at a hinted pixel: the hint all but fixes the colour there."""

SIGMA_FEATURES = 0.05
"""Scale of the difference between neighbours' distributions (the distance of their square-root
probabilities, the Hellinger distance times sqrt 2) in the affinities. On the 144 held-out
photos, 0.05 against none: gain 5.66 against 5.42 dB, PSNR at 10 and 50 hints 26.03 / 28.73
against 25.84 / 28.47 dB; 0.1 changed nothing."""

REACH_LENGTH = 20.0
"""Grid pixels of geodesic distance over which a hint's weight in :func:`hint_reach` falls by e.
Chosen with :data:`REACH_FLOOR` on 48 of the held-out photos among lengths 16 to 256 and floors
0.03 to 0.1 (``benchmarks/results/issue21/propagation.md``): the least leak whose harm stays
under 0.5 dB with the gain and the PSNR at 10 and 50 hints kept."""

REACH_FLOOR = 0.05
"""A pixel takes ``1 - exp(-weight / REACH_FLOOR)`` of the hints' correction, ``weight`` being
the hints' summed ``exp(-distance / REACH_LENGTH)``: all of it up to about three lengths from a
hint (weight 0.05 gives 63 %), so a hint fills the part of its region around it."""

EDGE_LIGHTNESS = 5.0
"""A grid step across this many L units (L smoothed over 3x3, so fine texture counts less than
an edge) costs one grid pixel more of geodesic distance, growing with the square."""

EDGE_FEATURES = 0.05
"""The same for the difference of the neighbours' distributions (as in :data:`SIGMA_FEATURES`)."""

REACH_SOURCES = 64
"""Up to this many distinct hint pixels, :func:`hint_reach` runs one Dijkstra from each. Beyond
(a few long brush strokes give hundreds), hint pixels sharing a :data:`REACH_CELL` cell start
from one of them, counted as many, at most 192 runs on the 128-pixel grid; each hint pixel keeps
its own distance. ``python benchmarks/bench_reach.py``: 2,000 hint pixels 0.68 s merged against
10.4 s exactly (whose distances fill a 197 MB matrix); the merged reach differed from the exact
one by up to 0.25 at 500 random hint pixels (0 at 50 and 2,000)."""

REACH_CELL = 8
"""Grid pixels on a side of the cells in which :func:`hint_reach` merges many hint pixels: their
distances differ by less than the cell's diagonal, about half a :data:`REACH_LENGTH`."""

DEFAULT_HINT_RADIUS = 1.5
"""A hint without a radius covers the grid pixels within this many grid pixels of it."""

_VARIANCE_SCALE = 0.6  # Levin et al.'s code: sigma^2 = 0.6 x the local variance of L...
_MIN_SIGMA2 = 1.0  # ...but at least 1 L unit^2, so JPEG noise in a flat sky is not an edge...
_MAX_SIGMA2 = 50.0  # ...and at most 50: a window across a strong edge has a large variance
# (the edge's own), which would let colour through the very edge; capped, a step of 45 L units
# passes 2e-9 of a neighbour's colour instead of 2 %.
_MIN_AFFINITY = 1e-10  # keeps every row's weights summing above zero

GUIDED_RADIUS = 2
"""Box radius (grid pixels) of the guided upsampling's local linear model."""

GUIDED_EPS = 10.0
"""The guided filter's regulariser (L units^2): below this local variance of L the correction
is smoothed, above it the correction follows L's edges."""


def hint_grid(height: int, width: int, long_side: int = GRID_LONG_SIDE) -> tuple[int, int]:
    """The reduced grid for a photo: its own size when small, else ``long_side`` on the long
    side with the aspect ratio kept."""
    return reduced_shape(height, width, long_side)


def _neighbour_pairs(height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Index pairs (r, s) for the four forward directions of the 8-neighbourhood."""
    index = np.arange(height * width).reshape(height, width)
    return [
        (index[:, :-1].ravel(), index[:, 1:].ravel()),  # right
        (index[:-1, :].ravel(), index[1:, :].ravel()),  # down
        (index[:-1, :-1].ravel(), index[1:, 1:].ravel()),  # down-right
        (index[:-1, 1:].ravel(), index[1:, :-1].ravel()),  # down-left
    ]


def _local_sigma2(lightness: np.ndarray) -> np.ndarray:
    """Levin's per-pixel scale of L differences: 0.6 x the 3x3 variance of L, bounded."""
    t = torch.from_numpy(lightness.astype(np.float64))[None, None]
    mean = F.avg_pool2d(t, 3, 1, 1, count_include_pad=False)
    square = F.avg_pool2d(t * t, 3, 1, 1, count_include_pad=False)
    variance = (square - mean * mean).clamp(min=0)[0, 0].numpy()
    return np.clip(_VARIANCE_SCALE * variance, _MIN_SIGMA2, _MAX_SIGMA2).ravel()


def _neighbour_distances(features: np.ndarray) -> list[np.ndarray]:
    """Squared distances between neighbours' feature vectors (C, H, W), in the order and
    directions of :func:`_neighbour_pairs` (slices, not gathers: C is 313)."""
    f = features
    return [
        np.square(f[:, :, 1:] - f[:, :, :-1]).sum(axis=0).ravel(),  # right
        np.square(f[:, 1:, :] - f[:, :-1, :]).sum(axis=0).ravel(),  # down
        np.square(f[:, 1:, 1:] - f[:, :-1, :-1]).sum(axis=0).ravel(),  # down-right
        np.square(f[:, 1:, :-1] - f[:, :-1, 1:]).sum(axis=0).ravel(),  # down-left
    ]


def affinity_matrix(
    lightness: np.ndarray,
    confidence: np.ndarray | None = None,
    sigma_confidence: float = 0.0,
    features: np.ndarray | None = None,
    sigma_features: float = 0.0,
):
    """Row-normalised 3x3 affinities ``W`` (scipy CSR, rows sum to 1) of an L image (H, W):
    ``w_rs`` proportional to ``exp(-(L_r - L_s)^2 / (2 sigma_r^2))``, times
    ``exp(-(c_r - c_s)^2 / (2 sigma_c^2))`` for a ``confidence`` map c when ``sigma_c`` > 0, times
    ``exp(-|f_r - f_s|^2 / (2 sigma_f^2))`` for ``features`` f (C, H, W) when ``sigma_f`` > 0."""
    use_features = features is not None and sigma_features > 0
    distances = _neighbour_distances(features) if use_features else None
    return _affinities(lightness, confidence, sigma_confidence, distances, sigma_features)


def _affinities(
    lightness: np.ndarray,
    confidence: np.ndarray | None,
    sigma_confidence: float,
    feature_distances: list[np.ndarray] | None,
    sigma_features: float,
):
    """:func:`affinity_matrix` from the features' neighbour distances (no feature term when None
    or ``sigma_features`` is 0), which :func:`propagate` computes once for it and the reach."""
    sparse, _ = _scipy()
    height, width = lightness.shape
    flat = lightness.astype(np.float64).ravel()
    sigma2 = _local_sigma2(lightness)
    use_confidence = confidence is not None and sigma_confidence > 0
    flat_confidence = confidence.astype(np.float64).ravel() if use_confidence else None
    rows, cols, values = [], [], []
    for direction, (r, s) in enumerate(_neighbour_pairs(height, width)):
        difference = np.square(flat[r] - flat[s])
        other = 0.0
        if flat_confidence is not None:
            other = np.square(flat_confidence[r] - flat_confidence[s]) / (2 * sigma_confidence**2)
        if feature_distances is not None and sigma_features > 0:
            other = other + feature_distances[direction] / (2 * sigma_features**2)
        for a, b in ((r, s), (s, r)):  # both directions, each with its own row's sigma
            rows.append(a)
            cols.append(b)
            values.append(np.exp(-difference / (2 * sigma2[a]) - other) + _MIN_AFFINITY)
    n = height * width
    weights = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    sums = np.asarray(weights.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0  # a 1x1 photo has no neighbours
    return sparse.diags(1.0 / sums) @ weights


def hint_reach(
    lightness: np.ndarray,
    targets: Sequence[ABTarget],
    scale: tuple[float, float] = (1.0, 1.0),
    features: np.ndarray | None = None,
    length: float = REACH_LENGTH,
    floor: float = REACH_FLOOR,
    edge_lightness: float = EDGE_LIGHTNESS,
    edge_features: float = EDGE_FEATURES,
    max_sources: int = REACH_SOURCES,
) -> np.ndarray:
    """How much of the hints' correction each grid pixel takes (H, W), in [0, 1].

    The geodesic distance ``d_h`` from each hint's grid pixel (Dijkstra over the 8-neighbour grid,
    :mod:`scipy.sparse.csgraph`) costs each step its length times ``1 + (dL / edge_lightness)^2
    + (|df| / edge_features)^2``, with L smoothed over 3x3 and ``features`` f (C, H, W) the
    distributions as in :func:`affinity_matrix`; the hints' weight ``sum_h exp(-d_h / length)``
    gives ``1 - exp(-weight / floor)``. So a pixel near a hint of its own region takes the whole
    correction, and one far from every hint, or across an edge from them, keeps the network's
    colour; and since the weights add up, many hints cover the photo as one never does.

    Why: the linear system alone spreads a lone hint over every region the network is unsure of,
    and affinities cannot stop it, as a soft edge of the 128-pixel grid has no single weak step.
    On the 144 held-out photos (weights 0.3, ``jkspnet eval --hints 1,10,50``), one hint's leak
    fell from 11.52 to 1.99 ab units and its harm from 1.91 to 0.31 dB, its gain rose from 5.42
    to 5.54 dB, and the PSNR at 10 and 50 hints from 25.84 / 28.47 to 25.86 / 28.73 dB; at one
    hint the PSNR fell from 23.12 to 22.49 dB: a lone hint no longer shifts the whole photo's
    colour, which on these photos was right more often than wrong."""
    distances = _neighbour_distances(features) if features is not None else None
    return _reach(
        lightness,
        targets,
        scale,
        distances,
        length=length,
        floor=floor,
        edge_lightness=edge_lightness,
        edge_features=edge_features,
        max_sources=max_sources,
    )


def _reach(
    lightness: np.ndarray,
    targets: Sequence[ABTarget],
    scale: tuple[float, float],
    distances: list[np.ndarray] | None,
    length: float = REACH_LENGTH,
    floor: float = REACH_FLOOR,
    edge_lightness: float = EDGE_LIGHTNESS,
    edge_features: float = EDGE_FEATURES,
    max_sources: int = REACH_SOURCES,
) -> np.ndarray:
    """:func:`hint_reach` from the features' neighbour distances (None: L alone), with the same
    defaults, so :func:`propagate` can pass the distances it already has."""
    from scipy.sparse.csgraph import dijkstra

    sparse, _ = _scipy()
    height, width = lightness.shape
    smooth = torch.from_numpy(lightness.astype(np.float64))[None, None]
    smooth = F.avg_pool2d(smooth, 3, 1, 1, count_include_pad=False)[0, 0].numpy().ravel()
    rows, cols, costs = [], [], []
    for direction, (r, s) in enumerate(_neighbour_pairs(height, width)):
        cost = 1.0 + np.square((smooth[r] - smooth[s]) / edge_lightness)
        if distances is not None:
            cost = cost + distances[direction] / edge_features**2
        rows.append(r)
        cols.append(s)
        costs.append(cost * (1.0 if direction < 2 else math.sqrt(2.0)))
    n = height * width
    graph = sparse.csr_matrix(
        (np.concatenate(costs), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    sources: dict[int, int] = {}  # a hint's grid pixel -> how many hints start there
    for target in targets:
        y = min(max(int(target.y * scale[0]), 0), height - 1)
        x = min(max(int(target.x * scale[1]), 0), width - 1)
        sources[y * width + x] = sources.get(y * width + x, 0) + 1
    if not sources:
        return np.zeros((height, width))
    nearest = None
    if len(sources) > max_sources:  # every hint pixel's own distance, in one run...
        starts = np.fromiter(sources, int)
        nearest = dijkstra(graph, directed=False, indices=starts, min_only=True)
        sources = _merged_sources(sources, width)  # ...and the sum from the cells' pixels
    distance = dijkstra(graph, directed=False, indices=np.fromiter(sources, int))
    counts = np.fromiter(sources.values(), float)[:, None]
    weight = (counts * np.exp(-np.atleast_2d(distance) / length)).sum(axis=0)
    if nearest is not None:  # the sum is at least the nearest hint's weight: whole at each hint
        weight = np.maximum(weight, np.exp(-nearest / length))
    return (1.0 - np.exp(-weight / floor)).reshape(height, width)


def _merged_sources(sources: dict[int, int], width: int) -> dict[int, int]:
    """Hint pixels (flat index -> count) merged by :data:`REACH_CELL` cells: each cell's first
    pixel stands for all of the cell's, with their summed count."""
    merged: dict[tuple[int, int], tuple[int, int]] = {}
    for index, count in sources.items():
        y, x = divmod(index, width)
        key = (y // REACH_CELL, x // REACH_CELL)
        first, total = merged.get(key, (index, 0))
        merged[key] = (first, total + count)
    return dict(merged.values())


def hint_mask(
    targets: Sequence[ABTarget], height: int, width: int, scale: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Hinted grid pixels: ``mu`` (H*W,) and the hints' ab there (2, H*W).

    ``scale`` is (grid rows per photo row, grid columns per photo column). A hint covers the
    grid pixels whose centres are within its radius (at least the one it falls in); where hints
    overlap their colours are averaged."""
    weight = np.zeros((height, width))
    colours = np.zeros((2, height, width))
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    for target in targets:
        y, x = target.y * scale[0], target.x * scale[1]
        if target.radius is None:
            radius = DEFAULT_HINT_RADIUS
        else:
            radius = max(0.5, target.radius * min(scale))
        inside = np.square(ys - y) + np.square(xs - x) <= radius * radius
        inside[min(int(y), height - 1), min(int(x), width - 1)] = True
        weight[inside] += 1.0
        colours[0][inside] += target.a
        colours[1][inside] += target.b
    hinted = weight > 0
    colours[:, hinted] /= weight[hinted]
    return np.where(hinted, HINT_WEIGHT, 0.0).ravel(), colours.reshape(2, -1)


def _scipy():
    """scipy.sparse and its solvers, or a JKSPNetError saying how to install them."""
    sparse = require_extra(
        "guided", "colour hints need SciPy", "scipy.sparse", "scipy.sparse.linalg"
    )
    return sparse, sparse.linalg


def propagate(
    lightness: np.ndarray,
    prior_ab: np.ndarray,
    confidence: np.ndarray,
    targets: Sequence[ABTarget],
    scale: tuple[float, float] = (1.0, 1.0),
    prior_weight: float = PRIOR_WEIGHT,
    prior_floor: float = PRIOR_FLOOR,
    prior_power: float = PRIOR_POWER,
    sigma_confidence: float = SIGMA_CONFIDENCE,
    features: np.ndarray | None = None,
    sigma_features: float = SIGMA_FEATURES,
    regions: bool = True,
) -> np.ndarray:
    """The correction (2, H, W) to add to ``prior_ab`` (the network's ab on the grid) so that
    the hints ``targets`` (photo coordinates; ``scale`` maps them to the grid) hold and spread
    over their regions of ``lightness`` (L on the grid, H x W). ``confidence`` (H, W) in [0, 1]
    sets how strongly each pixel keeps the network's colour; ``features`` (C, H, W), what the
    network sees at each pixel (the square roots of its distributions), tell regions apart where
    L does not; ``regions`` weighs the correction by :func:`hint_reach` and, as far as that reach
    goes, lifts the confidence's hold (off: plain propagation, a lone hint spreading over every
    region the network is unsure of and fading fast where it is sure). No hints: zeros.

    Why the reach lifts the hold: a hint says the network is wrong where it falls, however sure
    it was. Weights trained longer are sure over more of a photo (0.4's confidence on a grainy
    texture was 0.75 against 0.3's 0.23), and the hold ``prior_weight * confidence **
    prior_power``, meant to keep a hint on a tower out of a clear sky, then also kept a hint
    from colouring its own region (a red point on grain moved its neighbourhood 6 levels). The
    reach falls at the region's edge, so the sky keeps its hold; on 48 held-out photos (``jkspnet
    eval --hints 1,10,50``) 0.4's gain of one hint rose from 3.90 to 4.31 dB and its PSNR at 10
    hints from 24.71 to 25.11 dB, leak 0.95 to 1.17 ab units, harm 0.16 to 0.20 dB; 0.3's from
    4.93 to 5.03 dB, leak 2.22 to 2.38, harm 0.42 to 0.47 dB."""
    height, width = lightness.shape
    if not targets:
        return np.zeros((2, height, width))
    sparse, linalg = _scipy()
    prior = prior_ab.astype(np.float64).reshape(2, -1)
    mu, colours = hint_mask(targets, height, width, scale)
    lam = prior_floor + prior_weight * np.clip(confidence, 0, 1).ravel() ** prior_power
    distances = _neighbour_distances(features) if features is not None else None  # for both
    gate = _reach(lightness, targets, scale, distances) if regions else None
    if gate is not None:  # within the hints' reach they, not the network's confidence, hold
        lam = prior_floor + (lam - prior_floor) * (1.0 - gate.ravel())
    weights = _affinities(lightness, confidence, sigma_confidence, distances, sigma_features)
    system = sparse.diags(1.0 + lam + mu) - weights
    # The minimum-degree ordering of A + A^T fills in half what the default does here (the
    # affinities are nearly symmetric).
    solve = linalg.splu(system.tocsc(), permc_spec="MMD_AT_PLUS_A").solve
    reach = solve(mu)  # how much the hints hold each pixel, 1 at a hint, fading with distance
    spread = np.stack([solve(mu * colours[0]), solve(mu * colours[1])])  # their colours, x reach
    correction = spread - reach * prior  # so that the result is (1 - reach) prior + spread
    correction = correction.reshape(2, height, width)
    if gate is not None:
        correction = correction * gate[None]
    return correction


def correction_coefficients(
    guide: torch.Tensor,
    values: torch.Tensor,
    radius: int = GUIDED_RADIUS,
    eps: float = GUIDED_EPS,
) -> torch.Tensor:
    """The guided filter's smoothed local linear model of ``values`` (C, H, W) in terms of
    ``guide`` (H, W): coefficients (2C, H, W), ``A`` then ``B``, with ``values ~ A * guide + B``.

    Upsample them (bilinearly) and apply them to a finer guide to upsample ``values`` along the
    fine guide's edges (fast guided upsampling, He & Sun 2015)."""
    return local_linear_fit(guide.double(), values.double(), radius, eps).float()


__all__ = [
    "DEFAULT_HINT_RADIUS",
    "GRID_LONG_SIDE",
    "SIGMA_FEATURES",
    "affinity_matrix",
    "correction_coefficients",
    "hint_grid",
    "hint_mask",
    "hint_reach",
    "propagate",
]
