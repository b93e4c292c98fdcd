"""Bootstrap intervals of PSNR over grey, colourfulness kept and cast (engines/intervals.py):
checked against what the statistics are known to do, not against their own output."""

from __future__ import annotations

import numpy as np
import pytest

from jkspnet.engines.intervals import (
    FIGURES,
    bootstrap_against_grey,
    bootstrap_difference,
    difference,
)
from jkspnet.engines.scores import ImageScores


def photo(psnr: float, cf: float = 20.0, cf_truth: float = 40.0, cast: float | None = 5.0):
    return ImageScores({"psnr": psnr, "cf": cf, "cf_truth": cf_truth, "cast": cast}, ())


def greys(count: int, psnr: float = 20.0) -> list[ImageScores]:
    return [photo(psnr, cf=0.0, cast=0.0) for _ in range(count)]


def test_photos_that_all_score_alike_give_a_point():
    spread = bootstrap_against_grey([photo(21.5)] * 30, greys(30))
    assert spread["psnr_over_grey"] == pytest.approx([1.5, 1.5])
    assert spread["cf_share"] == pytest.approx([0.5, 0.5])
    assert spread["cast"] == pytest.approx([5.0, 5.0])


def test_a_mean_difference_has_the_normal_theory_width():
    """For the mean of n paired differences of spread s, a 90 % interval is about
    +-1.645 s / sqrt(n) around the mean; the photos' own PSNRs vary far more (sd 4 dB), and a
    draw that did not keep a photo's two scores together would be about 4x as wide."""
    rng = np.random.default_rng(1)
    count = 400
    base = rng.normal(25.0, 4.0, count)
    gain = rng.normal(0.5, 1.0, count)
    model = [photo(b + g) for b, g in zip(base, gain, strict=True)]
    grey = [photo(b, cf=0.0) for b in base]
    low, high = bootstrap_against_grey(model, grey)["psnr_over_grey"]
    half = 1.645 * gain.std(ddof=1) / np.sqrt(count)
    assert low < gain.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.12)


def test_colourfulness_kept_is_a_ratio_of_means():
    """Half the photos keep all of a small colourfulness, half keep a tenth of a large one: the
    mean of the ratios is 55 %, the ratio of the means (the figure eval reports) 18 %."""
    vivid = [photo(20.0, cf=10.0, cf_truth=100.0) for _ in range(50)]
    pale = [photo(20.0, cf=10.0, cf_truth=10.0) for _ in range(50)]
    low, high = bootstrap_against_grey(vivid + pale, greys(100))["cf_share"]
    assert low < 20 / 110 < high and high < 0.3


def test_photos_without_neutral_pixels_are_left_out_of_the_cast():
    scored = [photo(20.0, cast=4.0)] * 10 + [photo(20.0, cast=None)] * 10
    assert bootstrap_against_grey(scored, greys(20))["cast"] == pytest.approx([4.0, 4.0])
    none = bootstrap_against_grey([photo(20.0, cast=None)] * 5, greys(5))
    assert none["cast"] is None and none["psnr_over_grey"] == pytest.approx([0.0, 0.0])


def test_an_infinite_psnr_has_no_interval():
    scored = [photo(float("inf"))] + [photo(22.0)] * 9
    spread = bootstrap_against_grey(scored, greys(10))
    assert spread["psnr_over_grey"] is None and spread["cf_share"] is not None


def test_the_draws_are_seeded_and_the_level_widens_the_interval():
    rng = np.random.default_rng(2)
    gains, colours = rng.normal(0, 1, 60), rng.uniform(0, 40, 60)
    model = [photo(20.0 + g, cf=c) for g, c in zip(gains, colours, strict=True)]
    first = bootstrap_against_grey(model, greys(60))
    assert first == bootstrap_against_grey(model, greys(60))
    assert first != bootstrap_against_grey(model, greys(60), seed=1)
    wide = bootstrap_against_grey(model, greys(60), level=0.99)
    for figure in ("psnr_over_grey", "cf_share"):
        assert wide[figure][0] < first[figure][0] and first[figure][1] < wide[figure][1]
    assert set(first) == set(FIGURES)


@pytest.mark.parametrize(
    "kwargs",
    [{"level": 0.0}, {"level": 1.0}, {"resamples": 0}],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        bootstrap_against_grey([photo(21.0)], greys(1), **kwargs)


def test_mismatched_or_empty_scores_raise():
    with pytest.raises(ValueError, match="2 scores against 1"):
        bootstrap_against_grey([photo(21.0)] * 2, greys(1))
    with pytest.raises(ValueError, match="no scores"):
        bootstrap_against_grey([], [])


def test_a_paired_difference_is_told_from_noise_that_hides_each_figure():
    """Two settings whose PSNRs differ by 0.1 dB on every photo, over photos whose PSNRs
    spread by 4 dB: each figure's own interval is wide, the difference's is a point."""
    rng = np.random.default_rng(3)
    base = rng.normal(25.0, 4.0, 200)
    first = [photo(b + 0.1, cf=22.0, cast=5.0) for b in base]
    second = [photo(b, cf=20.0, cast=6.0) for b in base]
    own = bootstrap_against_grey(second, [photo(b - 1.0) for b in base])
    assert own["psnr_over_grey"] == pytest.approx([1.0, 1.0])  # paired with grey: a point too
    alone = bootstrap_against_grey(second, greys(200))  # grey unpaired: the photos' spread
    assert alone["psnr_over_grey"][1] - alone["psnr_over_grey"][0] > 0.5
    points = difference(first, second)
    assert points == pytest.approx({"psnr_over_grey": 0.1, "cf_share": 0.05, "cast": -1.0})
    spread = bootstrap_difference(first, second)
    assert spread["psnr_over_grey"] == pytest.approx([0.1, 0.1])
    assert spread["cf_share"] == pytest.approx([0.05, 0.05])
    assert spread["cast"] == pytest.approx([-1.0, -1.0])


def test_a_difference_that_varies_by_photo_has_an_interval_around_its_mean():
    rng = np.random.default_rng(4)
    gains = rng.normal(0.2, 0.5, 300)
    first = [photo(20.0 + g) for g in gains]
    second = [photo(20.0) for _ in gains]
    low, high = bootstrap_difference(first, second)["psnr_over_grey"]
    assert difference(first, second)["psnr_over_grey"] == pytest.approx(gains.mean())
    assert low < gains.mean() < high
    assert (high - low) / 2 == pytest.approx(1.645 * gains.std(ddof=1) / np.sqrt(300), rel=0.12)
    no_cast = [photo(20.0, cast=None)] * 3
    assert difference(no_cast, no_cast)["cast"] is None
    assert bootstrap_difference(no_cast, no_cast)["cast"] is None
