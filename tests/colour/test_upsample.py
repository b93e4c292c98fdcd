"""Edge-aware upsampling: colour edges follow the photo's L edges; flat regions keep their ab."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from jkspnet.colour.upsample import box_mean, grid_shape, guided_coefficients, guided_upsample
from jkspnet.errors import JKSPNetError
from jkspnet.nn.model import JKSPNet
from jkspnet.pipeline.colorizer import Colorizer


def _two_regions(height: int = 96, width: int = 128, edge: int = 53) -> torch.Tensor:
    """L: a dark left part and a bright right part, split at column ``edge`` (not on the grid)."""
    lightness = torch.full((height, width), 30.0)
    lightness[:, edge:] = 80.0
    return lightness


def _small_ab(size: int, edge_fraction: float) -> torch.Tensor:
    """The network's view: blue on the left, red on the right, the switch at the edge."""
    ab = torch.zeros(2, size, size)
    split = round(size * edge_fraction)
    ab[:, :, :split] = torch.tensor([10.0, -40.0])[:, None, None]
    ab[:, :, split:] = torch.tensor([50.0, 30.0])[:, None, None]
    return ab


def test_grid_shape_keeps_aspect_and_never_enlarges():
    assert grid_shape(3000, 4000, 64) == (192, 256)
    assert grid_shape(100, 50, 64) == (100, 50)


def test_box_mean_is_the_window_mean_inside_the_image():
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    out = box_mean(x, 1)
    assert out[0, 0, 2, 2] == pytest.approx(x[0, 0, 1:4, 1:4].mean().item())
    assert out[0, 0, 0, 0] == pytest.approx(x[0, 0, :2, :2].mean().item())


@pytest.mark.parametrize("radius", [1, 3, 8])
def test_box_mean_matches_a_brute_force_window_mean(radius):
    x = torch.rand(2, 3, 19, 31, generator=torch.Generator().manual_seed(radius))
    out = box_mean(x, radius)
    assert out.dtype == x.dtype and out.shape == x.shape
    for i, j in [(0, 0), (4, 30), (9, 15), (18, 7), (radius, radius + 1)]:
        window = x[..., max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1]
        assert torch.allclose(out[..., i, j], window.mean(dim=(-2, -1)), atol=1e-6)


def test_constant_colour_stays_constant():
    lightness = _two_regions()
    ab = torch.tensor([12.0, -7.0])[:, None, None].expand(2, 8, 8).clone()
    out = guided_upsample(ab, lightness, size=8)
    assert torch.allclose(out, ab[:, :1, :1].expand_as(out), atol=1e-3)


def test_colour_edges_follow_the_lightness_edge_where_bilinear_bleeds():
    lightness = _two_regions(384, 512, edge=212)
    height, width = lightness.shape
    ab = _small_ab(32, 12 / 32)  # the network's colour edge lands 20 pixels left of L's
    guided = guided_upsample(ab, lightness, size=32)
    bilinear = F.interpolate(ab[None], size=(height, width), mode="bilinear")[0]
    left, right = torch.tensor([10.0, -40.0]), torch.tensor([50.0, 30.0])

    def error(out: torch.Tensor) -> float:  # mean |ab error| in the 48 columns around the edge
        band = out[:, :, 188:236]
        truth = torch.where(torch.arange(188, 236) < 212, 0, 1)
        expected = torch.stack([left, right])[truth].t()[:, None, :]
        return float((band - expected).abs().mean())

    assert error(guided) < 0.7 * error(bilinear)
    # The colour jumps where L does, not smeared over the network's pixel.
    assert float((guided[0, :, 212] - guided[0, :, 211]).min()) > 10
    assert float((bilinear[0, :, 212] - bilinear[0, :, 211]).max()) < 3
    # Far from the edge both agree with the prediction.
    assert torch.allclose(guided[:, :, :100], left[:, None, None].expand(2, height, 100), atol=1.0)


def test_coefficients_validate_their_inputs():
    with pytest.raises(ValueError, match="ab must have shape"):
        guided_coefficients(torch.zeros(3, 4, 4), torch.zeros(8, 8))
    with pytest.raises(ValueError, match="eps"):
        guided_coefficients(torch.zeros(2, 4, 4), torch.zeros(8, 8), eps=0)


def test_the_pipelines_banded_finish_matches_the_whole_image_upsampling(monkeypatch):
    torch.manual_seed(0)
    colorizer = Colorizer.from_model(JKSPNet(), device="cpu", precision="fp32")
    monkeypatch.setattr("jkspnet.colour.pixels.BAND_PIXELS", 128 * 7)  # many bands of 7 rows
    grey = (_two_regions(90, 128).numpy() * 2.55).astype(np.uint8)
    prepared = colorizer.prepare(Image.fromarray(grey, "L"), 16)
    ab = torch.randn(2, 16, 16) * 20
    out = np.asarray(colorizer.finish(prepared, ab)).astype(int)
    colorizer.upsample = "bilinear"
    plain = np.asarray(colorizer.finish(prepared, ab)).astype(int)
    reference = guided_upsample(ab, prepared.lightness, size=16)
    from jkspnet.colour.spaces import lab_to_srgb8

    expected = lab_to_srgb8(torch.cat([prepared.lightness[None], reference])).permute(1, 2, 0)
    assert np.abs(out - expected.numpy().astype(int)).max() <= 1
    assert np.abs(out - plain).max() > 0  # the two upsamplings do differ


def test_an_unknown_upsampler_is_refused():
    with pytest.raises(JKSPNetError, match="upsample must be one of"):
        Colorizer.from_model(JKSPNet(), device="cpu", upsample="bicubic")
    with pytest.raises(JKSPNetError, match="shape must be one of"):
        Colorizer.from_model(JKSPNet(), device="cpu", shape="round")


def test_aspect_shaped_inputs_of_several_shapes_share_one_call(astronaut):
    torch.manual_seed(0)
    colorizer = Colorizer.from_model(JKSPNet(), device="cpu", precision="fp32", shape="aspect")
    wide = Image.fromarray(astronaut).resize((200, 100))
    tall = Image.fromarray(astronaut).resize((100, 150))
    prepared = [colorizer.prepare(photo, 16) for photo in (wide, tall, wide)]
    assert [tuple(p.network_input.shape) for p in prepared] == [
        (1, 16, 32),
        (1, 24, 16),
        (1, 16, 32),
    ]
    together = colorizer.predict_ab_list([p.network_input for p in prepared])
    alone = [colorizer.predict_ab(p.network_input[None])[0] for p in prepared]
    for one, other in zip(together, alone, strict=True):
        assert torch.allclose(one, other, atol=1e-4)
    outputs = colorizer.colorize_batch([wide, tall])
    assert [o.size for o in outputs] == [(200, 100), (100, 150)]
