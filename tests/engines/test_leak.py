"""One colour hint's leak, harm and gain (issue 21), on pictures whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jkspnet.engines import metrics
from jkspnet.engines.leak import MIN_HINT_CHROMA, hint_leak, sample_colour_hint, summarise
from jkspnet.media.hints import ABTarget

RED, BLUE, GREY = (200, 40, 40), (40, 60, 200), (120, 120, 120)


def _halves(left: tuple[int, int, int], right: tuple[int, int, int]) -> np.ndarray:
    image = np.empty((60, 120, 3), np.uint8)
    image[:, :60], image[:, 60:] = left, right
    return image


def _ab(rgb: tuple[int, int, int]) -> tuple[float, float]:
    a, b = metrics.ab_of(np.array([[rgb]], np.uint8), torch.float64)[:, 0, 0].tolist()
    return a, b


def test_the_colour_hint_is_a_seeded_patch_mean_on_a_coloured_pixel(astronaut):
    hint = sample_colour_hint(astronaut, seed="a.jpg")
    assert hint == sample_colour_hint(astronaut, seed="a.jpg")
    assert hint != sample_colour_hint(astronaut, seed="b.jpg")
    assert math.hypot(hint.a, hint.b) >= MIN_HINT_CHROMA
    x, y = int(hint.x), int(hint.y)
    patch = metrics.ab_of(astronaut, torch.float64)[:, max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
    assert hint.a == pytest.approx(float(patch[0].mean()), abs=1e-6)
    assert hint.radius == 2.5


def test_a_photo_without_colour_has_no_colour_hint():
    assert sample_colour_hint(np.full((20, 30, 3), 128, np.uint8)) is None


def test_a_hint_that_stays_in_its_region_does_not_leak():
    truth = _halves(RED, BLUE)
    automatic = _halves(GREY, GREY)
    kept = _halves(RED, GREY)  # the hint coloured its half and nothing else
    a, b = _ab(RED)
    result = hint_leak(truth, automatic, kept, ABTarget(10.5, 30.5, a, b))
    assert result.leak == pytest.approx(0.0, abs=1e-9)
    assert result.harm == pytest.approx(0.0, abs=1e-9)
    assert result.gain is None  # the near pixels of the hint's colour are now perfect


def test_a_hint_that_floods_the_photo_leaks_its_whole_chroma():
    truth = _halves(RED, BLUE)
    automatic = _halves(GREY, (45, 60, 195))  # right was nearly right
    flooded = _halves(RED, RED)
    a, b = _ab(RED)
    result = hint_leak(truth, automatic, flooded, ABTarget(10.5, 30.5, a, b))
    blue = np.array(_ab((45, 60, 195)))
    # the far blue pixels moved all the way from their blue to the hint's red
    assert result.leak == pytest.approx(float(np.hypot(*(np.array([a, b]) - blue))), rel=1e-6)
    assert result.harm > 15  # they were nearly right, now red


def test_gain_is_the_db_won_near_the_hint():
    truth = _halves(RED, BLUE)
    automatic = _halves(GREY, BLUE)
    halfway = truth.copy()
    halfway[:, :60] = (160, 80, 80)
    a, b = _ab(RED)
    result = hint_leak(truth, automatic, halfway, ABTarget(10.5, 30.5, a, b))
    rows, columns = np.mgrid[0:60, 0:120] + 0.5
    near = (np.hypot(rows - 30.5, columns - 10.5) <= math.hypot(60, 120) / 8) & (columns < 60)

    def psnr(image):
        diff = image[near].astype(float) - truth[near]
        return 10 * math.log10(255**2 / np.mean(diff * diff))

    assert result.gain == pytest.approx(psnr(halfway) - psnr(automatic), rel=1e-9)
    assert result.gain > 0 and result.leak == pytest.approx(0.0, abs=1e-9)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differ in shape"):
        hint_leak(
            _halves(RED, BLUE),
            _halves(RED, BLUE)[:, :100],
            _halves(RED, BLUE),
            ABTarget(1, 1, 0, 0),
        )


def test_the_summary_means_what_is_defined():
    from jkspnet.engines.leak import HintLeak

    block = summarise([HintLeak(10.0, 1.0, None), HintLeak(20.0, None, 4.0)], without_colour=1)
    assert block["leak"] == 15.0 and block["leak_photos"] == 2
    assert block["harm"] == 1.0 and block["harm_photos"] == 1
    assert block["gain"] == 4.0 and block["photos"] == 2 and block["without_colour"] == 1
    assert summarise([])["leak"] is None
