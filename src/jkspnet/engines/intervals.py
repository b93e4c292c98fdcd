"""Bootstrap intervals for the three figures the decoding defaults are chosen by: PSNR over the
grey baseline, the share of the truth's colourfulness kept, and the cast (issue 22's rule).

Why: a held-out set has a few hundred photos at most, and one photo can move a mean by a tenth
of a dB (on the 144 held-out photos of issue 22, one grey table painted as orange wood costs the
set's mean 0.13 dB). A figure without its spread invites reading noise as progress, or a bar
passed by 0.02 dB as a pass. So ``jkspnet eval`` gives each of the three figures an interval.

The method is the percentile bootstrap (Efron & Tibshirani 1993, ch. 13): draw the photos with
replacement ``resamples`` times and take the ``level`` central range of each statistic over the
draws. A draw keeps each photo's model and grey scores together, so PSNR over grey is a paired
difference (its interval is far narrower than the two PSNRs' own), and the colourfulness kept is
a ratio of means, as the point figure is. The draws are seeded: the same scores give the same
interval. Written with numpy rather than ``scipy.stats.bootstrap``: scipy is an optional extra
(``guided``) and ``jkspnet eval`` is not, and the three statistics are a few lines each.

The interval is of the photos' sampling only: it says how far the same setting might score on
another draw of photos from the same sources, not on other sources.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .scores import ImageScores

RESAMPLES = 2000
"""Draws of the photos per interval; the ends move by well under their shown digits between
seeds at this count."""

LEVEL = 0.9
"""The central share of the draws an interval covers."""

FIGURES = ("psnr_over_grey", "cf_share", "cast")
"""The interval block's keys: PSNR minus the grey baseline's (dB), the colourfulness kept (the
model's mean over the truth's mean, a share), the cast (ab units)."""

DIGITS = 4
"""Decimals an interval's ends keep in a report, as the figures' own."""

_CHUNK = 250_000  # photo draws held at once: the memory stays small for any set size


def _values(scores: Sequence[ImageScores], key: str) -> np.ndarray:
    """A metric over the photos; NaN where a photo has no value (a cast without neutrals)."""
    return np.array([np.nan if s[key] is None else s[key] for s in scores], dtype=np.float64)


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Row means over the values that are not NaN; NaN for a row with none."""
    present = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present, values, 0.0).sum(axis=1) / present.sum(axis=1)


def _check_pairs(count: int, other: int) -> None:
    if count != other:
        raise ValueError(f"{count} scores against {other}: one pair per photo is needed")
    if not count:
        raise ValueError("no scores to draw from")


def _statistics(
    first: Sequence[ImageScores], second: Sequence[ImageScores], *, colour_too: bool
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The three figures as functions of a (draws, count) array of photo indices, one value per
    draw: PSNR is ``first``'s minus ``second``'s; colourfulness kept and cast are ``first``'s
    own, or, with ``colour_too``, ``first``'s minus ``second``'s."""
    _check_pairs(len(first), len(second))
    gain = _values(first, "psnr") - _values(second, "psnr")
    cf, cf_truth, cast = (_values(first, key) for key in ("cf", "cf_truth", "cast"))
    cast_second = _values(second, "cast") if colour_too else None
    if colour_too:
        cf = cf - _values(second, "cf")

    def cast_of(picks: np.ndarray) -> np.ndarray:
        own = _nanmean(cast[picks])
        return own if cast_second is None else own - _nanmean(cast_second[picks])

    return {
        "psnr_over_grey": lambda picks: gain[picks].mean(axis=1),
        "cf_share": lambda picks: cf[picks].mean(axis=1) / cf_truth[picks].mean(axis=1),
        "cast": cast_of,
    }


def _percentile_intervals(
    statistics: dict[str, Callable[[np.ndarray], np.ndarray]],
    count: int,
    resamples: int,
    level: float,
    seed: int,
) -> dict[str, list[float] | None]:
    """Each statistic (of a (draws, count) array of photo indices, one value per draw) over
    ``resamples`` seeded draws, as its ``level`` central range; None where a draw gives an
    infinite value or every draw NaN. NaN draws (no photo with the value) are left out."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    rows = max(1, _CHUNK // count)
    for start in range(0, resamples, rows):
        picks = rng.integers(0, count, size=(min(rows, resamples - start), count))
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, statistic in statistics.items():
                draws[name].append(statistic(picks))
    tails = 100 * (1 - level) / 2
    out: dict[str, list[float] | None] = {}
    for name, parts in draws.items():
        values = np.concatenate(parts)
        values = values[~np.isnan(values)]
        if values.size == 0 or not np.all(np.isfinite(values)):
            out[name] = None
        else:
            low, high = np.percentile(values, [tails, 100 - tails])
            out[name] = [float(low), float(high)]
    return out


def bootstrap_against_grey(
    model: Sequence[ImageScores],
    grey: Sequence[ImageScores],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """The ``level`` percentile-bootstrap interval ``[low, high]`` of each of :data:`FIGURES`
    over the photos, ``model[i]`` and ``grey[i]`` being one photo's scores.

    A figure is None where it has no interval: PSNR if some photo's is infinite (identical to
    its truth), the colourfulness kept if the truths have none, the cast if no photo has
    neutral pixels. Draws in which no photo has a cast are left out of the cast's interval.
    """
    statistics = _statistics(model, grey, colour_too=False)
    return _percentile_intervals(statistics, len(model), resamples, level, seed)


def difference(
    first: Sequence[ImageScores], second: Sequence[ImageScores]
) -> dict[str, float | None]:
    """``first``'s figures minus ``second``'s over the same photos, keyed as :data:`FIGURES`:
    PSNR (dB; the same as the difference of their PSNRs over grey), colourfulness kept (in
    shares of the truth's) and cast; None where a figure has no value."""
    every = np.arange(len(first))[None]  # one "draw": every photo once
    statistics = _statistics(first, second, colour_too=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        points = {name: float(statistic(every)[0]) for name, statistic in statistics.items()}
    return {name: v if math.isfinite(v) else None for name, v in points.items()}


def bootstrap_difference(
    first: Sequence[ImageScores],
    second: Sequence[ImageScores],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """The intervals of :func:`difference` (``first[i]`` and ``second[i]`` one photo's scores,
    e.g. two weights or two decodings). Paired, so a difference far smaller than either
    figure's own interval can still be told from noise."""
    statistics = _statistics(first, second, colour_too=True)
    return _percentile_intervals(statistics, len(first), resamples, level, seed)


def rounded(spread: dict[str, list[float] | None]) -> dict[str, list[float] | None]:
    """Intervals with their ends to :data:`DIGITS`, as a report keeps them."""
    return {
        name: None if ends is None else [round(end, DIGITS) for end in ends]
        for name, ends in spread.items()
    }


def interval_blocks(photos: Sequence, variants: int) -> list[dict[str, list[float] | None]]:
    """For scored photos (each with ``scores``: the grey baseline's, then each variant's), the
    intervals of the first ``variants`` variants against grey, in order, :func:`rounded`."""
    grey = [photo.scores[0] for photo in photos]
    return [
        rounded(bootstrap_against_grey([photo.scores[i] for photo in photos], grey))
        for i in range(1, 1 + variants)
    ]


def settings() -> dict[str, object]:
    """How the intervals were drawn, for a report beside them."""
    return {"method": "percentile bootstrap over photos", "level": LEVEL, "resamples": RESAMPLES}


__all__ = [
    "DIGITS",
    "FIGURES",
    "LEVEL",
    "RESAMPLES",
    "bootstrap_against_grey",
    "bootstrap_difference",
    "difference",
    "interval_blocks",
    "rounded",
    "settings",
]
