"""Which reference palette each photo of ``jkspnet eval --reference`` gets (issue 21).

- ``self``: the photo's own palette, an oracle: the most a reference can give.
- ``shuffled``: another photo's of the set, one whose colours differ: what a mismatched reference
  costs. A re-weighting that forces a reference's colours where the network is sure of others
  (a red-flower palette on a blue sky) loses much here; one that only leans each pixel among
  the colours it finds plausible loses little, while keeping most of the ``self`` gain.

The partner is deterministic: the next photo in the set's order (wrapping round) whose palette
shares less than :data:`MAX_SHARED_PALETTE` of its mass with the photo's own, so two runs on the
same list pair the same photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import JKSPNetError

if TYPE_CHECKING:  # torch-free, so that ``jkspnet eval --help`` reads REFERENCE_KINDS fast
    import torch

REFERENCE_KINDS = ("self", "shuffled")
"""The palettes ``jkspnet eval --reference`` can score each photo with."""

MAX_SHARED_PALETTE = 0.5
"""A ``shuffled`` partner's palette shares less than this of its mass with the photo's
(the sum over the bins of the smaller of the two histograms): half its colours are others."""


def shared_palette(one: torch.Tensor, other: torch.Tensor) -> float:
    """How much of two palettes (313-bin histograms summing to 1) is the same: the sum over the
    bins of the smaller share, 1 for the same palette and 0 for palettes without a common bin."""
    return float(one.minimum(other).sum())


def shuffled_partners(palettes: Sequence[torch.Tensor | None]) -> list[int]:
    """For each photo, the index of the photo whose palette it gets as a mismatched reference:
    the next one after it (wrapping round) whose palette shares less than
    :data:`MAX_SHARED_PALETTE` with its own, or, if none does, the one that shares least.
    A photo without a palette (None: too grey to be a reference) is never a partner, but gets one
    if its own palette is known. Raises :class:`JKSPNetError` if fewer than two photos have one."""
    count = len(palettes)
    if sum(palette is not None for palette in palettes) < 2:
        raise JKSPNetError("--reference shuffled needs at least two photos with colour")
    partners = []
    for index, own in enumerate(palettes):
        others = [(index + step) % count for step in range(1, count)]
        others = [other for other in others if palettes[other] is not None]
        if own is None:
            partners.append(others[0])
            continue
        shares = [shared_palette(own, palettes[other]) for other in others]  # type: ignore[arg-type]
        pairs = zip(others, shares, strict=True)
        differing = [other for other, share in pairs if share < MAX_SHARED_PALETTE]
        partners.append(differing[0] if differing else others[shares.index(min(shares))])
    return partners


def reference_palettes(
    kinds: Sequence[str],
    photos: Sequence[Path],
    palettes: Sequence[torch.Tensor | JKSPNetError],
) -> dict[tuple[str, Path], torch.Tensor]:
    """The palette each photo is scored with for each kind of ``kinds``, keyed by (kind, photo),
    from each photo's own palette (or the error that says why it has none: too grey).
    ``self`` needs every photo's own; ``shuffled`` gives each the palette of its
    :func:`shuffled_partners` partner."""
    known = [None if isinstance(palette, JKSPNetError) else palette for palette in palettes]
    out: dict[tuple[str, Path], torch.Tensor] = {}
    if "self" in kinds:
        for photo, palette in zip(photos, palettes, strict=True):
            if isinstance(palette, JKSPNetError):
                raise JKSPNetError(f"--reference self: {palette}")
            out["self", photo] = palette
    if "shuffled" in kinds:
        for photo, partner in zip(photos, shuffled_partners(known), strict=True):
            out["shuffled", photo] = known[partner]  # type: ignore[assignment]
    return out


__all__ = [
    "MAX_SHARED_PALETTE",
    "REFERENCE_KINDS",
    "reference_palettes",
    "shared_palette",
    "shuffled_partners",
]
