"""Which reference palette each photo of ``jkspnet eval --reference`` gets (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jkspnet.engines.references import (
    MAX_SHARED_PALETTE,
    reference_palettes,
    shared_palette,
    shuffled_partners,
)
from jkspnet.errors import JKSPNetError


def _palette(*bins: int) -> torch.Tensor:
    histogram = torch.zeros(313)
    histogram[list(bins)] = 1.0
    return histogram / histogram.sum()


def test_shared_palette_is_one_for_the_same_and_zero_for_disjoint_palettes():
    assert shared_palette(_palette(1, 2), _palette(1, 2)) == pytest.approx(1.0)
    assert shared_palette(_palette(1, 2), _palette(2, 3)) == pytest.approx(0.5)
    assert shared_palette(_palette(1), _palette(9)) == 0.0


def test_each_photo_gets_the_next_palette_that_differs_and_never_a_missing_one():
    a, b = _palette(1), _palette(9)
    mostly_a = 0.75 * a + 0.25 * b
    assert shared_palette(a, mostly_a) >= MAX_SHARED_PALETTE > shared_palette(b, mostly_a)
    palettes = [a, mostly_a, b, None, a]
    assert shuffled_partners(palettes) == [2, 2, 4, 4, 2]


def test_without_a_differing_palette_the_least_shared_one_is_taken():
    assert shuffled_partners([_palette(1), _palette(1), _palette(1, 2)]) == [2, 2, 0]


def test_a_shuffled_reference_needs_two_photos_with_colour():
    with pytest.raises(JKSPNetError, match="at least two photos"):
        shuffled_partners([_palette(1), None])


def test_reference_palettes_by_kind_and_a_grey_photo_for_self():
    photos = [Path("a.jpg"), Path("b.jpg")]
    a, b = _palette(1), _palette(9)
    palettes = reference_palettes(["self", "shuffled"], photos, [a, b])
    assert palettes["self", photos[0]] is a and palettes["shuffled", photos[0]] is b
    grey = JKSPNetError("b.jpg: has no colour (grey)")
    three = [*photos, Path("c.jpg")]
    assert reference_palettes(["shuffled"], three, [a, grey, b])["shuffled", photos[1]] is b
    with pytest.raises(JKSPNetError, match=r"--reference self: b\.jpg: has no colour"):
        reference_palettes(["self"], photos, [a, grey])
