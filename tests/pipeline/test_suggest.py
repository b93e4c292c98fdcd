"""Suggested colours at a point (issue 21): the network's distinct likely colours there."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from jkspnet.colour.spaces import rgb_to_lab
from jkspnet.media.hints import HintError
from jkspnet.nn.model import NUM_BINS, ab_bins


def _chroma_of(hex_colour: str) -> tuple[float, float]:
    rgb = torch.tensor([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=torch.float64)
    lab = rgb_to_lab((rgb / 255).reshape(3, 1, 1)).reshape(3)
    return float(lab[1]), float(lab[2])


def test_suggestions_follow_the_network_distribution_at_the_point(colorizer, monkeypatch):
    """Left half of the network's output says red (70 %) or blue (30 %), right half green:
    a point on the left gets red then blue, one on the right green first."""
    photo = Image.new("L", (120, 80), 128)
    prepared = colorizer.prepare(photo)
    height, width = prepared.network_input.shape[-2:]
    bins = ab_bins()

    def nearest(a: float, b: float) -> int:
        return int((bins - torch.tensor([a, b])).square().sum(1).argmin())

    red, blue, green = nearest(60, 40), nearest(10, -50), nearest(-50, 40)
    logits = torch.full((1, NUM_BINS, height, width), -30.0)
    logits[0, red, :, : width // 2] = math.log(0.7)
    logits[0, blue, :, : width // 2] = math.log(0.3)
    logits[0, green, :, width // 2 :] = 0.0
    monkeypatch.setattr(colorizer, "predict_logits", lambda x: logits)

    left = colorizer.suggest(prepared, 10, 40)
    assert 3 <= len(left) <= 6
    assert left[0].probability == pytest.approx(0.7, abs=0.01)
    assert left[1].probability == pytest.approx(0.3, abs=0.01)
    a, b = _chroma_of(left[0].hex)
    assert a > 30 and b > 15  # red
    a, b = _chroma_of(left[1].hex)
    assert b < -25  # blue
    right = colorizer.suggest(prepared, 110, 40)
    a, b = _chroma_of(right[0].hex)
    assert a < -25 and b > 15 and right[0].probability > 0.95  # green
    assert len({s.hex for s in left}) == len(left)
    assert right[0].to_json() == {"color": right[0].hex, "probability": 1.0}


def test_suggestions_from_the_network_itself(colorizer):
    suggestions = colorizer.suggest(Image.new("L", (50, 40), 90), 49.5, 0)
    assert 3 <= len(suggestions) <= 6
    shares = [s.probability for s in suggestions]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 1 + 1e-6


@pytest.mark.parametrize("point", [(50, 10), (-0.5, 3), (3, 40), (math.nan, 1)])
def test_a_point_outside_the_photo_is_one_line(colorizer, point):
    with pytest.raises(HintError, match=r"^suggest: .*(outside the photo|finite)") as error:
        colorizer.suggest(Image.new("L", (50, 40), 90), *point)
    assert "\n" not in str(error.value)
