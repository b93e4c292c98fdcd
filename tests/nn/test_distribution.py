"""The 313-bin distribution: entropy, annealed mean, palettes and re-weighting."""

from __future__ import annotations

import math

import pytest
import torch

from jkspnet import JKSPNet
from jkspnet.nn.bins import soft_histogram
from jkspnet.nn.distribution import (
    MAX_ENTROPY,
    entropy,
    expected_ab,
    log_probabilities,
    normalized_entropy,
    reweight,
)
from jkspnet.nn.model import NUM_BINS, ab_bins


def test_entropy_of_flat_and_peaked_distributions():
    logits = torch.zeros(1, NUM_BINS, 2, 2)
    logits[0, 7, 1, :] = 100.0  # bottom row: all mass on one bin
    assert math.log(NUM_BINS) == MAX_ENTROPY
    normalised = normalized_entropy(logits)
    assert torch.allclose(normalised[0, 0], torch.ones(2), atol=1e-5)
    assert torch.allclose(normalised[0, 1], torch.zeros(2), atol=1e-5)
    assert torch.allclose(entropy(log_probabilities(logits))[0, 0], torch.full((2,), MAX_ENTROPY))


def test_expected_ab_is_the_networks_own_decoding():
    torch.manual_seed(0)
    model = JKSPNet().eval()
    logits = torch.randn(2, NUM_BINS, 3, 4) * 3
    for temperature in (1.0, 0.38):
        ours = expected_ab(log_probabilities(logits), temperature)
        assert torch.allclose(ours, model.decode(logits, temperature), atol=1e-4)


def test_histogram_of_one_colour_peaks_at_its_bin():
    bins = ab_bins()
    ab = bins[100].view(2, 1, 1).expand(2, 8, 8)
    histogram = soft_histogram(ab)
    assert abs(float(histogram.sum()) - 1) < 1e-5
    assert int(histogram.argmax()) == 100


def test_reweighting_moves_the_mean_toward_the_palette():
    bins = ab_bins()
    red, blue = int(torch.argmax(bins[:, 0])), int(torch.argmin(bins[:, 1]))
    logits = torch.zeros(1, NUM_BINS, 1, 1)
    logits[0, [red, blue]] = 5.0  # torn between red and blue
    palette = soft_histogram(bins[red].view(2, 1, 1))
    before = expected_ab(log_probabilities(logits))
    after = expected_ab(reweight(log_probabilities(logits), palette, 1.0))
    distance = lambda ab: float((ab[0, :, 0, 0] - bins[red]).norm())  # noqa: E731
    assert distance(after) < 0.5 * distance(before)
    unchanged = reweight(log_probabilities(logits), palette, 0.0)
    assert torch.equal(unchanged, log_probabilities(logits))


def _two_colours(blue: float, red: float) -> tuple[torch.Tensor, int, int]:
    """One pixel's log-probabilities (1, 313, 1, 1) with ``blue`` on a sky blue bin, ``red`` on
    a red one (100 ab units apart) and 1 % over every bin; and the two bins."""
    bins = ab_bins()
    nearest = lambda a, b: int((bins - torch.tensor([a, b])).norm(dim=1).argmin())  # noqa: E731
    red_bin, blue_bin = nearest(55, 45), nearest(-5, -40)
    p = torch.full((NUM_BINS,), 0.01 / NUM_BINS)
    p[blue_bin] += blue
    p[red_bin] += red
    return (p / p.sum()).log().view(1, -1, 1, 1), blue_bin, red_bin


def _mass_near(log_p: torch.Tensor, index: int, radius: float = 30.0) -> float:
    bins = ab_bins()
    return float(log_p.exp()[0, :, 0, 0][(bins - bins[index]).norm(dim=1) <= radius].sum())


def test_a_reference_leans_plausible_colours_and_never_forces_an_implausible_one():
    """Issue 21's spill: a red-only reference must not turn a pixel sure of blue (a sky) red;
    a pixel that finds red plausible (a tenth of its mass, the rest blue) leans red, further
    with each strength, and strength 1 leans rather than replaces (the former
    ``p * h ** strength`` turned both fully red at every strength, so 1 and 2 looked the same)."""
    sure, blue, red = _two_colours(blue=0.98, red=0.01)
    palette = soft_histogram(ab_bins()[red].view(2, 1, 1))
    for strength in (1.0, 2.0, 4.0):
        assert _mass_near(reweight(sure, palette, strength), blue) > 0.9
    torn, *_ = _two_colours(blue=0.9, red=0.1)
    leaned = [_mass_near(reweight(torn, palette, s), red) for s in (0.0, 1.0, 2.0, 4.0)]
    assert leaned[0] == pytest.approx(_mass_near(torn, red))
    assert 0.5 < leaned[1] < 0.95
    assert leaned[2] > leaned[1] + 0.1 and leaned[3] >= leaned[2]


def _flatness(probabilities: torch.Tensor) -> torch.Tensor:
    """normalized_entropy of distributions given as probabilities (313, H, W)."""
    return normalized_entropy(probabilities.clamp(min=1e-12).log()[None])[0]


def test_entropy_is_zero_for_one_bin_and_one_for_uniform():
    one_hot = torch.zeros(313, 2, 2)
    one_hot[5] = 1
    assert torch.allclose(_flatness(one_hot), torch.zeros(2, 2), atol=1e-6)
    uniform = torch.full((313, 2, 2), 1 / 313)
    assert torch.allclose(_flatness(uniform), torch.ones(2, 2), atol=1e-5)
    two = torch.zeros(313, 1, 1)
    two[:2] = 0.5
    assert _flatness(two).item() == pytest.approx(math.log(2) / math.log(313), rel=1e-5)


# ------------------------------------------------------------------ distinct modes (issue 21)
def _peaks(*peaks: tuple[float, float, float]) -> torch.Tensor:
    """A distribution over the bins with a small Gaussian hill (sigma 6) at each (a, b, mass)."""
    bins = ab_bins().double()
    p = torch.zeros(NUM_BINS, dtype=torch.float64)
    for a, b, mass in peaks:
        hill = torch.exp(-((bins - torch.tensor([a, b])).square().sum(1)) / (2 * 6.0**2))
        p += mass * hill / hill.sum()
    return p


def test_distinct_modes_find_the_hills_and_their_mass():
    from jkspnet.nn.distribution import MODE_SEPARATION, distinct_modes

    modes = distinct_modes(_peaks((50, 40, 0.7), (-30, -40, 0.3)))
    assert 3 <= len(modes) <= 6
    (a1, b1, p1), (a2, b2, p2) = modes[:2]
    assert math.hypot(a1 - 50, b1 - 40) < 5 and p1 == pytest.approx(0.7, abs=0.02)
    assert math.hypot(a2 + 30, b2 + 40) < 5 and p2 == pytest.approx(0.3, abs=0.02)
    assert 0.99 < sum(p for *_, p in modes) <= 1 + 1e-9  # modes under 2 % beyond three: left out
    assert [p for *_, p in modes] == sorted((p for *_, p in modes), reverse=True)
    for i, (a, b, _) in enumerate(modes):
        for c, d, _ in modes[i + 1 :]:
            assert math.hypot(a - c, b - d) >= MODE_SEPARATION / 2  # never the same colour


def test_distinct_modes_give_three_to_six():
    from jkspnet.nn.distribution import distinct_modes

    one_bin = torch.zeros(NUM_BINS)
    one_bin[100] = 1.0
    certain = distinct_modes(one_bin)
    assert len(certain) == 3 and certain[0][2] == pytest.approx(1.0)
    assert len(distinct_modes(torch.full((NUM_BINS,), 1.0 / NUM_BINS))) == 6
