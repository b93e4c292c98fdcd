"""The evaluation's table of metrics, :data:`METRICS`: for each number of ``jkspnet eval``'s
report, how one photo is scored, how a set's photos combine and where it shows (``summary.json``,
``per_image.csv``, the printed table). A new metric is one entry. :func:`score_image` scores one
photo by the table into an :class:`ImageScores`; :func:`aggregate_scores` combines a set's into a
:class:`SetScores`. The metric functions themselves are in :mod:`jkspnet.engines.metrics`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np

from .metrics import (
    PhotoPair,
    cast,
    colorfulness,
    delta_colorfulness,
    pooled_auc,
    psnr,
    ssim,
)


@dataclass(frozen=True)
class Metric:
    """One number of ``jkspnet eval``'s report, in one place: how a photo is scored
    (``of_photo``: a number, None where it does not apply, or a record that ``photo_value``
    reads), how a set's photos combine (``of_set``; default: the mean over the photos that have
    a value, None if none has) and where it shows: a column of ``per_image.csv`` (if it has
    ``of_photo``), a key of ``summary.json``'s blocks (if ``summary``), a column of the printed
    table (if it has a ``label``). ``digits`` are kept in the files, ``shown`` in the table."""

    key: str
    digits: int
    of_photo: Callable[[PhotoPair], Any] | None = None
    of_set: Callable[[Sequence[ImageScores]], float | None] | None = None
    photo_value: Callable[[Any], float] | None = None
    summary: bool = True
    label: str | None = None
    shown: int = 2


def _delta_cf(scores: Sequence[ImageScores], per_photo: bool) -> float:
    delta = delta_colorfulness([s["cf"] for s in scores], [s["cf_truth"] for s in scores])
    return delta[per_photo]


METRICS: tuple[Metric, ...] = (
    Metric("psnr", 4, lambda p: psnr(p.pred, p.truth), label="PSNR"),
    Metric("ssim", 6, lambda p: ssim(p.pred, p.truth), label="SSIM", shown=4),
    Metric("cf", 4, lambda p: colorfulness(p.pred), label="CF"),
    Metric("cf_truth", 4, lambda p: colorfulness(p.truth), summary=False),
    Metric("delta_cf", 4, of_set=lambda scores: _delta_cf(scores, False), label="ΔCF"),
    Metric("delta_cf_per_image", 4, of_set=lambda scores: _delta_cf(scores, True)),
    Metric("cast", 4, lambda p: cast(p.pred, p.truth), label="cast"),
    Metric(
        "auc",
        6,
        of_photo=lambda p: p.ab_accuracy(),
        of_set=lambda scores: pooled_auc([s.raw["auc"] for s in scores]),
        photo_value=attrgetter("auc"),
        label="AuC",
        shown=4,
    ),
    Metric(
        "auc_rebalanced",
        6,
        of_photo=lambda p: p.ab_accuracy(rebalanced=True),
        of_set=lambda scores: pooled_auc([s.raw["auc_rebalanced"] for s in scores]),
        photo_value=attrgetter("auc"),
        label="AuC(rebal)",
        shown=4,
    ),
)
"""The evaluation's metrics, in the report's order. A new metric is one entry here: its score
of a photo (a function of :class:`PhotoPair`), how a set combines them, and where it shows."""


@dataclass(frozen=True, eq=False)
class ImageScores:
    """One photo's scores: ``scores[key]`` is a metric's value for the photo (None where it
    does not apply: a cast without neutral pixels, a rebalanced AuC without a prior); ``raw``
    keeps what :attr:`Metric.of_photo` gave, from which a set's scores pool."""

    raw: dict[str, Any]
    thresholds: tuple[float, ...]

    def __getitem__(self, key: str) -> float | None:
        value = self.raw[key]  # a KeyError for a key no metric scored
        read = next(m.photo_value for m in METRICS if m.key == key)
        return value if value is None or read is None else read(value)


def score_image(pair: PhotoPair) -> ImageScores:
    """Every metric of :data:`METRICS` that scores a photo, for one photo (the rebalanced AuC
    only if ``pair`` has a prior)."""
    return ImageScores(
        {m.key: m.of_photo(pair) for m in METRICS if m.of_photo},
        tuple(float(t) for t in pair.thresholds),
    )


@dataclass(frozen=True)
class SetScores:
    """A set's scores; see :func:`aggregate_scores`. ``set_scores[key]`` is a metric's value;
    ``counts[key]`` how many photos have a value of a per-photo metric (those a mean is over)."""

    count: int
    values: dict[str, float | None]
    counts: dict[str, int]

    def __getitem__(self, key: str) -> float | None:
        return self.values[key]


def aggregate_scores(scores: Sequence[ImageScores]) -> SetScores:
    """Combine per-photo scores into a set's, each metric by its :attr:`Metric.of_set`.

    PSNR, SSIM, the colorfulness values and the cast are means over the photos that have them
    (a photo identical to its truth makes the mean PSNR infinite; the cast counts only photos
    with neutral pixels, each once). ΔCF comes from :func:`delta_colorfulness`. The AuCs pool
    pixels (:func:`pooled_auc`); the rebalanced one is None unless every photo has it.
    """
    if not scores:
        raise ValueError("no scores to aggregate")
    if any(s.thresholds != scores[0].thresholds for s in scores):
        raise ValueError("photos were scored with different thresholds")
    values: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for metric in METRICS:
        present = []
        if metric.of_photo:
            present = [s[metric.key] for s in scores if s[metric.key] is not None]
            counts[metric.key] = len(present)
        if metric.of_set:
            values[metric.key] = metric.of_set(scores)
        else:
            values[metric.key] = float(np.mean(present)) if present else None
    return SetScores(len(scores), values, counts)


__all__ = [
    "METRICS",
    "ImageScores",
    "Metric",
    "SetScores",
    "aggregate_scores",
    "score_image",
]
