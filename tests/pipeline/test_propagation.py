"""Propagation: a hint colours its own region and stops at an L edge."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from jkspnet.media.hints import ABTarget, Hint
from jkspnet.pipeline.propagation import (
    affinity_matrix,
    correction_coefficients,
    hint_grid,
    hint_reach,
    propagate,
)


def _two_regions(height: int = 40, width: int = 60) -> np.ndarray:
    lightness = np.full((height, width), 30.0)
    lightness[:, width // 2 :] = 75.0
    return lightness


def test_affinities_are_row_normalised_and_small_across_an_edge():
    lightness = _two_regions(6, 8)
    weights = affinity_matrix(lightness).toarray()
    assert np.allclose(weights.sum(axis=1), 1.0)
    # pixel (2, 3) is the left region's last column: its right neighbour is across the edge
    r = 2 * 8 + 3
    assert weights[r, r + 1] < 1e-3 * weights[r, r - 1]


def test_a_hint_fills_its_region_and_stops_at_the_edge():
    lightness = _two_regions()
    prior = np.zeros((2, *lightness.shape))
    target = ABTarget(x=10, y=20, a=60.0, b=40.0)
    correction = propagate(lightness, prior, np.zeros(lightness.shape), [target])
    left, right = correction[:, :, :30], correction[:, :, 31:]
    assert np.abs(left[0] - 60).max() < 6 and np.abs(left[1] - 40).max() < 4
    assert np.abs(right).max() < 1.0


def test_no_hint_no_correction_and_a_confident_prior_holds():
    lightness = np.full((30, 30), 50.0)
    prior = np.zeros((2, 30, 30))
    assert not propagate(lightness, prior, np.ones((30, 30)), []).any()
    target = ABTarget(x=2, y=2, a=50.0, b=0.0)
    unsure = propagate(lightness, prior, np.zeros((30, 30)), [target])
    sure = propagate(lightness, prior, np.ones((30, 30)), [target])
    assert sure[0, 2, 2] > 45 and unsure[0, 2, 2] > 45  # the hint holds where it is given
    assert sure[0, -1, -1] < 0.5 * unsure[0, -1, -1]  # and spreads less where the net is sure


def test_a_hint_colours_its_own_region_where_the_network_is_sure_and_not_the_one_beyond():
    """A hint says the network is wrong where it falls, however sure it was (0.4's confidence
    on grain was 0.75): its region follows it, while the region across an edge keeps its hold."""
    lightness = _two_regions()
    prior = np.zeros((2, *lightness.shape))
    sure = np.full(lightness.shape, 0.75)
    target = [ABTarget(x=10, y=20, a=60.0, b=40.0)]
    held = propagate(lightness, prior, sure, target, regions=False)
    lifted = propagate(lightness, prior, sure, target)
    near = (0, slice(10, 30), slice(0, 25))
    assert held[near].mean() < 20  # the confidence alone: the hint fades within a few pixels
    assert lifted[near].mean() > 50  # within its reach, the hint overrules it
    assert np.abs(lifted[:, :, 31:]).max() < 1.0  # and stops at the edge


def _textured_regions(height: int = 48, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Issue 21's brick wall above a lawn, side by side: one texture of L over the whole photo
    (no edge of L between the halves), and what the network sees differing between them."""
    rng = np.random.default_rng(0)
    lightness = 50.0 + 12.0 * rng.standard_normal((height, width))
    seen = np.zeros((4, height, width))
    seen[0, :, : width // 2] = 1.0  # the left half's distribution
    seen[1, :, width // 2 :] = 1.0  # the right half's
    return lightness, seen


def test_the_network_s_features_keep_a_hint_in_its_textured_region():
    lightness, seen = _textured_regions()
    prior, unsure = np.zeros((2, *lightness.shape)), np.zeros(lightness.shape)
    target = [ABTarget(x=20, y=24, a=60.0, b=40.0)]
    plain = propagate(lightness, prior, unsure, target, regions=False)
    aware = propagate(lightness, prior, unsure, target, features=seen)
    far = (slice(None), slice(None), slice(60, None))
    assert np.abs(plain[far]).mean() > 20  # L alone: the hint floods the other half
    assert np.abs(aware[far]).mean() < 1  # the network's view stops it at the boundary
    own = (0, slice(None), slice(0, 40))
    assert aware[own].mean() > 50  # and it still fills its own half


def test_hint_reach_is_whole_near_a_hint_and_fades_with_distance_and_edges():
    flat = np.full((40, 200), 50.0)
    reach = hint_reach(flat, [ABTarget(x=5, y=20, a=0, b=0)])
    assert reach[20, 5] > 0.999 and reach[20, 30] > 0.99
    assert reach[20, 199] < 0.01  # 190 grid pixels away
    edged = flat.copy()
    edged[:, 40:] = 90.0
    across = hint_reach(edged, [ABTarget(x=5, y=20, a=0, b=0)])
    assert across[20, 60] < 0.7 * reach[20, 60]  # an edge of L costs distance
    assert across[20, 100] < 0.5 * reach[20, 100]


def test_many_hints_cover_the_photo():
    flat = np.full((60, 120), 50.0)
    rng = np.random.default_rng(1)
    targets = [ABTarget(x=x, y=y, a=0, b=0) for x, y in rng.uniform((0, 0), (120, 60), (50, 2))]
    assert hint_reach(flat, targets).min() > 0.99
    assert not hint_reach(flat, []).any()


def test_many_stroke_points_are_merged_yet_each_hint_pixel_takes_the_whole_correction():
    """Long brush strokes give hundreds of hint pixels: past REACH_SOURCES they start from one
    pixel per cell, counted as many, and each hint pixel still takes all of its correction."""
    rng = np.random.default_rng(2)
    lightness = 50.0 + 3.0 * rng.standard_normal((96, 128))
    points = rng.uniform((0, 0), (60, 96), (600, 2))
    targets = [ABTarget(x=x, y=y, a=0, b=0) for x, y in points]
    exact = hint_reach(lightness, targets, max_sources=10**6)
    merged = hint_reach(lightness, targets)
    assert np.abs(exact - merged).max() < 0.1
    rows, cols = points[:, 1].astype(int), points[:, 0].astype(int)
    assert merged[rows, cols].min() > 0.999


def test_guided_coefficients_reproduce_a_field_that_follows_the_guide():
    guide = torch.from_numpy(_two_regions()).float()
    values = torch.stack([(guide - 30) * 2, torch.zeros_like(guide)])  # 0 left, 90 right
    coefficients = correction_coefficients(guide, values)
    rebuilt = coefficients[:2] * guide + coefficients[2:]
    assert torch.allclose(rebuilt, values, atol=1.0)


def test_grid_shape():
    assert hint_grid(100, 80) == (100, 80)
    assert hint_grid(3000, 4000) == (96, 128)


def test_the_colorizer_keeps_the_far_region_across_an_edge(colorizer):
    """At full resolution through the reduced grid and guided upsampling: a 600 x 900 photo
    whose left part is dark, one hint there; the right part is exactly the automatic result."""
    grey = np.full((600, 900), 60, np.uint8)
    grey[:, 450:] = 200
    photo = Image.fromarray(grey)
    automatic = np.asarray(colorizer.colorize(photo)).astype(int)
    hinted = np.asarray(colorizer.colorize(photo, hints=[Hint(100, 300, (200, 30, 30))]))
    hinted = hinted.astype(int)
    # beyond the guided upsampling's window (2 grid pixels, 14 photo pixels here) of the edge
    far = np.abs(hinted[:, 470:] - automatic[:, 470:])
    assert far.max() <= 1
    near = hinted[:, :440]
    assert (near[..., 0] - near[..., 1]).mean() > 20  # the dark region turned red
    assert near[..., 0].mean() > automatic[:, :440, 0].mean() + 10


@pytest.mark.parametrize("size", [(1, 1), (1, 5), (7, 1)])
def test_tiny_photos(colorizer, size):
    photo = Image.new("L", size, 128)
    result = colorizer.colorize(photo, hints=[Hint(0, 0, (255, 0, 0))])
    assert result.size == size
