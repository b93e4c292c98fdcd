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

from collections.abc import Sequence

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
    if len(model) != len(grey):
        raise ValueError(f"{len(model)} model scores but {len(grey)} grey ones")
    if not model:
        raise ValueError("no scores to draw from")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    gain = _values(model, "psnr") - _values(grey, "psnr")
    cf, cf_truth, cast = (_values(model, key) for key in ("cf", "cf_truth", "cast"))
    count = len(model)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in FIGURES}
    rows = max(1, _CHUNK // count)
    for start in range(0, resamples, rows):
        picks = rng.integers(0, count, size=(min(rows, resamples - start), count))
        draws["psnr_over_grey"].append(gain[picks].mean(axis=1))
        truth_means = cf_truth[picks].mean(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            draws["cf_share"].append(cf[picks].mean(axis=1) / truth_means)
            present = ~np.isnan(cast[picks])
            totals = np.where(present, cast[picks], 0.0).sum(axis=1)
            draws["cast"].append(totals / present.sum(axis=1))
    tails = 100 * (1 - level) / 2
    out: dict[str, list[float] | None] = {}
    for name in FIGURES:
        values = np.concatenate(draws[name])
        values = values[~np.isnan(values)]
        if values.size == 0 or not np.all(np.isfinite(values)):
            out[name] = None
        else:
            low, high = np.percentile(values, [tails, 100 - tails])
            out[name] = [float(low), float(high)]
    return out


def interval_blocks(photos: Sequence, variants: int) -> list[dict[str, list[float] | None]]:
    """For scored photos (each with ``scores``: the grey baseline's, then each variant's), the
    intervals of the first ``variants`` variants against grey, in order, to :data:`DIGITS`."""
    grey = [photo.scores[0] for photo in photos]
    blocks = []
    for i in range(1, 1 + variants):
        spread = bootstrap_against_grey([photo.scores[i] for photo in photos], grey)
        blocks.append(
            {
                name: None if ends is None else [round(end, DIGITS) for end in ends]
                for name, ends in spread.items()
            }
        )
    return blocks


def settings() -> dict[str, object]:
    """How the intervals were drawn, for a report beside them."""
    return {"method": "percentile bootstrap over photos", "level": LEVEL, "resamples": RESAMPLES}


__all__ = [
    "DIGITS",
    "FIGURES",
    "LEVEL",
    "RESAMPLES",
    "bootstrap_against_grey",
    "interval_blocks",
    "settings",
]
