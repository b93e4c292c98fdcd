"""Colour conversions must agree with scikit-image and be differentiable."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.color
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jkspnet.colour.spaces import (
    L_OFFSET,
    denormalize_l,
    lab_to_rgb,
    lab_to_srgb8,
    normalize_l,
    rgb_to_l,
    rgb_to_lab,
)


@pytest.fixture(scope="module")
def random_rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    colours = rng.random((64, 64, 3))
    colours[0, :8] = [
        [0, 0, 0],
        [1, 1, 1],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0.5] * 3,
        [1, 1, 0],
        [0.01, 0.02, 0.03],
    ]
    return colours


def _to_torch(image: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_agrees_with_skimage(random_rgb, dtype):
    expected = skimage.color.rgb2lab(random_rgb)
    actual = rgb_to_lab(_to_torch(random_rgb, dtype)).permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(actual, expected, atol=0.01)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lab_to_rgb_agrees_with_skimage(dtype):
    rng = np.random.default_rng(1)
    lab = np.stack(
        [
            rng.uniform(0, 100, (32, 32)),
            rng.uniform(-90, 100, (32, 32)),
            rng.uniform(-110, 100, (32, 32)),
        ],
        axis=-1,
    )
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = skimage.color.lab2rgb(lab)
    actual = lab_to_rgb(_to_torch(lab, dtype)).permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    assert actual.min() >= 0 and actual.max() <= 1


def test_round_trip_and_batching(random_rgb):
    batch = torch.stack([_to_torch(random_rgb), _to_torch(random_rgb[::-1].copy())])
    lab = rgb_to_lab(batch)
    assert lab.shape == (2, 3, 64, 64)
    torch.testing.assert_close(lab[1], rgb_to_lab(batch[1]))
    torch.testing.assert_close(lab_to_rgb(lab), batch, atol=1e-4, rtol=0)
    torch.testing.assert_close(rgb_to_l(batch), lab[:, :1])


def test_grey_has_no_colour():
    grey = torch.linspace(0, 1, 11).view(1, 11, 1).expand(3, 11, 1)
    lab = rgb_to_lab(grey)
    assert lab[1:].abs().max() < 0.01  # skimage's constants leave grey within 0.005 of a=b=0
    assert lab[0, 0, 0].abs() < 1e-4 and (lab[0, -1, 0] - 100).abs() < 1e-3


def test_conversions_are_differentiable(random_rgb):
    rgb = _to_torch(random_rgb).requires_grad_()
    lab = rgb_to_lab(rgb)
    lab.sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab = lab.detach().requires_grad_()
    lab_to_rgb(lab, clip=False).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_the_seed_normalisation():
    lightness = torch.tensor([0.0, 50.0, 100.0])
    assert L_OFFSET == 50
    torch.testing.assert_close(normalize_l(lightness), torch.tensor([-50.0, 0.0, 50.0]))
    torch.testing.assert_close(denormalize_l(normalize_l(lightness)), lightness)


def test_wrong_channel_count_is_an_error():
    with pytest.raises(ValueError, match="3 channels"):
        rgb_to_lab(torch.zeros(4, 8, 8))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=3, max_size=3))
def test_round_trip_of_any_8bit_colour(rgb):
    colour = torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1) / 255
    back = lab_to_rgb(rgb_to_lab(colour))
    assert torch.equal((back * 255).round(), colour * 255)


def test_lab_to_srgb8_is_the_rounded_conversion():
    rng = np.random.default_rng(2)
    lab = np.stack(  # all of L, chroma well beyond sRGB's gamut, and a batch dimension
        [rng.uniform(0, 100, (2, 96, 96)), *rng.uniform(-120, 120, (2, 2, 96, 96))], axis=1
    )
    lab = torch.from_numpy(lab).float()
    exact = (lab_to_rgb(lab.double()) * 255).round()
    codes = lab_to_srgb8(lab)
    assert codes.dtype == torch.uint8 and codes.shape == lab.shape
    difference = (codes.double() - exact).abs()
    assert difference.max() <= 1 and (difference > 0).double().mean() < 1e-4  # float32 ties
    every_8bit = torch.arange(256, dtype=torch.float64).view(1, 1, -1) / 255
    grey_and_primaries = torch.cat([every_8bit.expand(3, 1, 256), torch.eye(3).view(3, 1, 3)], 2)
    round_trip = lab_to_srgb8(rgb_to_lab(grey_and_primaries).float())
    assert torch.equal(round_trip.double(), (grey_and_primaries * 255).round())
    with pytest.raises(ValueError, match="3 channels"):
        lab_to_srgb8(torch.zeros(2, 8, 8))
