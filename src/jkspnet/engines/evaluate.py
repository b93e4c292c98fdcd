"""``jkspnet eval``: score colorizations of a photo set against the photos' own colours.

Each photo is colorized from its L alone and compared with the original, beside two references:
the grey baseline (the photo's own L with ab = 0, what "no colour at all" scores) and the truth's
own colourfulness. Several temperatures share one network pass per batch: the 313 logits are
computed once and decoded at each temperature. Each temperature's PSNR over grey, colourfulness
kept and cast come with a bootstrap interval over the photos (:mod:`jkspnet.engines.intervals`).

Resolutions: PSNR, SSIM and colourfulness are measured at the photo's full resolution. The AuC
(raw and class-rebalanced) is measured at the network's resolution, ``size`` x ``size``, as Zhang
et al. (2016) evaluate it: output and truth are both resized to that square with the same
(antialiased bilinear) resize. The rebalancing prior is the ab distribution of the evaluated
set's own truths at that resolution, which takes a first, cheap pass over the photos.

Photos whose truth has no colour at all (greyscale files, or RGB files with R = G = B) have truth
colourfulness 0, so colour metrics mean nothing for them: they are counted and skipped.

Guided colour (issue 15), the field's way (Zhang, Zhu et al. 2017): with ``hint_counts``, each
photo is also colorized from N hints sampled from its truth (random positions, seeded by the
photo's file name, each hint the mean ab of a small patch; the first N of one sequence, so the
hints at 10 include those at 5), at the first temperature; ``references`` re-weight the
distribution by a reference palette at each of ``reference_strengths``: the photo's own
(``self``, an oracle upper bound) or another photo's of another palette (``shuffled``, what a
mismatched reference costs; :mod:`jkspnet.engines.references`).
With hints, each photo also gets one hint on a coloured pixel, whose leak, harm and gain
(:mod:`jkspnet.engines.leak`, issue 21) say whether a hint stays in its region.

The report folder receives ``summary.json``, ``per_image.csv`` and ``grid.png`` (grey | ours at
the first temperature | truth, one row per photo for the first few photos), each written
atomically.
"""

from __future__ import annotations

import io
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
from PIL import Image

from ..colour.spaces import NO_COLOUR, is_grey
from ..errors import JKSPNetError, PhotoError, check_choice
from ..media.files import write_atomic
from ..media.photos import Photo, load_photo
from ..nn.bins import hard_histogram
from . import intervals, metrics
from . import leak as leaks
from .references import REFERENCE_KINDS, reference_palettes
from .report import (
    GRAY,
    against_block,
    finite,
    grid,
    group_blocks,
    hints_variant,
    per_image_csv,
    read_per_image,
    reference_variant,
    summary_block,
    temperature_key,
    thumbnail,
    variant_name,
)
from .reporter import Reporter
from .scores import ImageScores, aggregate_scores, score_image

if TYPE_CHECKING:
    from ..media.hints import ABTarget
    from ..pipeline.colorizer import Colorizer


SUMMARY_NAME, PER_IMAGE_NAME, GRID_NAME = "summary.json", "per_image.csv", "grid.png"

HINT_PATCH_RADIUS = 2
"""Sampled hints reveal the mean ab of a 5 x 5 patch of the truth (Zhang et al. 2017 sample
patches of 1 to 9 pixels a side)."""

_MIN_SIDE = metrics.SSIM_WINDOW  # SSIM needs at least 7x7 pixels
_WORKERS = max(1, min(4, os.cpu_count() or 1))

T = TypeVar("T")
R = TypeVar("R")


def sample_hints(
    truth: np.ndarray, count: int, seed: int | str = 0, patch_radius: int = HINT_PATCH_RADIUS
) -> list[ABTarget]:
    """``count`` hints from a colour photo's truth (H, W, 3) uint8: uniformly random patch
    centres (seeded by ``seed``, e.g. the file name, so every run samples the same), each hint
    the mean ab of the (2r + 1)^2 patch around it, with that patch's radius. The first N hints
    of a seed are the same whatever ``count`` >= N, so larger counts add to smaller ones."""
    from ..media.hints import ABTarget

    height, width = truth.shape[:2]
    key = seed if isinstance(seed, int) else zlib.crc32(str(seed).encode("utf-8"))
    rng = np.random.default_rng([key, 15])
    points = rng.integers(0, (height, width), size=(count, 2))  # drawn row by row: nested
    ab = metrics.ab_of(truth).numpy()
    targets = []
    for y, x in points.tolist():
        top, left = max(0, y - patch_radius), max(0, x - patch_radius)
        patch = ab[:, top : y + patch_radius + 1, left : x + patch_radius + 1]
        a, b = patch.reshape(2, -1).mean(axis=1).tolist()
        targets.append(ABTarget(x + 0.5, y + 0.5, a, b, patch_radius + 0.5))
    return targets


# --------------------------------------------------------------------------------------------
# Small helpers


def _small(rgb: np.ndarray, size: int) -> np.ndarray:
    """The image resized to ``size`` x ``size`` (antialiased bilinear), where AuC is measured."""
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))


def _rgb(image: Image.Image) -> np.ndarray:
    """An 8-bit (H, W, 3) array of a finished photo, alpha dropped."""
    return np.asarray(image.convert("RGB") if image.mode != "RGB" else image)


def _in_order(
    pool: ThreadPoolExecutor, function: Callable[[T], R], items: Iterable[T], ahead: int
) -> Iterator[R]:
    """``map(function, items)`` run in ``pool``, in order, with at most ``ahead`` in flight."""
    pending: list[Future[R]] = []
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) > ahead:
            yield pending.pop(0).result()
    while pending:
        yield pending.pop(0).result()


# --------------------------------------------------------------------------------------------
# Pass 1: which photos can be scored, and the ab prior of their truths


@dataclass
class _Checked:
    path: Path
    prior: torch.Tensor | None = None  # this photo's small truth's ab distribution
    grey: bool = False
    error: PhotoError | None = None
    note: str | None = None
    palette: torch.Tensor | JKSPNetError | None = None  # as a reference (with --reference)


def _check(
    path: Path, size: int, max_pixels: int, palette: Callable[[Photo], torch.Tensor] | None = None
) -> _Checked:
    try:
        photo = load_photo(path, max_pixels=max_pixels)
    except PhotoError as error:
        return _Checked(path, error=error)
    if is_grey(photo.pixels, NO_COLOUR):
        return _Checked(path, grey=True)
    height, width = photo.pixels.shape[:2]
    if min(height, width) < _MIN_SIDE:
        reason = f"{width}x{height} is too small to score (SSIM needs at least 7x7 pixels)"
        return _Checked(path, error=PhotoError(path, reason))
    # float64, exactly as scores.score_image computes the truth's ab, so that every truth
    # pixel scored later falls in a bin this prior has seen.
    truth_ab = metrics.ab_of(_small(photo.pixels, size), torch.float64)
    checked = _Checked(path, prior=hard_histogram([truth_ab]), note=photo.note)
    if palette is not None:
        try:
            checked.palette = palette(photo)
        except JKSPNetError as error:  # too grey to be a reference
            checked.palette = error
    return checked


# --------------------------------------------------------------------------------------------
# Pass 2: colorize, score


@dataclass
class _Scored:
    """One photo's scores, one entry per variant (gray first, then each temperature)."""

    path: Path
    scores: list[ImageScores]
    leak: leaks.HintLeak | None = None  # one colour hint's (with hint counts)


@dataclass
class _Run:
    variants: list[str]
    prior: torch.Tensor
    size: int
    hint_counts: list[int] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)
    palettes: dict[tuple[str, Path], torch.Tensor] = field(default_factory=dict)  # kind, photo
    guided_temperature: float | None = None
    scored: list[_Scored] = field(default_factory=list)
    grid_rows: list[list[Image.Image]] = field(default_factory=list)
    failed: int = 0
    without_colour_hint: int = 0  # photos with no pixel colourful enough for the leak's hint


def _score(
    output: Image.Image, truth: np.ndarray, small_truth: np.ndarray, run: _Run
) -> ImageScores:
    """Full-resolution PSNR, SSIM, CF and cast; AuC (raw and rebalanced) at size x size."""
    pred = _rgb(output)
    at_size = (_small(pred, run.size), small_truth)
    return score_image(metrics.PhotoPair(pred, truth, prior=run.prior, at_size=at_size))


# --------------------------------------------------------------------------------------------
# The evaluation


def evaluate(
    colorizer: Colorizer,
    photos: list[Path],
    temperatures: list[float],
    out_dir: Path,
    grid_count: int = 8,
    progress: bool = True,
    *,
    batch_size: int = 16,
    weights: str | None = None,
    report: Callable[[str], None] | None = None,
    hint_counts: Sequence[int] = (),
    references: Sequence[str] = (),
    reference_strengths: Sequence[float] = (1.0,),
    groups: bool = False,
    against: Path | None = None,
) -> dict:
    """Score ``colorizer`` on ``photos`` and write the report into ``out_dir``; return the summary.

    Every photo is colorized from its L alone at each of ``temperatures`` (one network pass per
    batch of ``batch_size``; an empty list means the colorizer's own temperature) and scored
    against its original, beside the grey baseline (its L with ab = 0). Photos that cannot be
    read are reported as ``error: path: reason`` and counted in ``failed``; photos whose truth
    has no colour are counted in ``skipped_grey_truth``. ``weights`` is only recorded in the
    summary. Raises :class:`JKSPNetError` when no photo could be scored (nothing is written).

    ``hint_counts``: also score each photo guided by that many hints sampled from its truth
    (:func:`sample_hints`; 0 is the automatic result, already scored), at the first temperature;
    ``references``: also score it with a reference palette (``self``: its own, an oracle;
    ``shuffled``: another photo's whose colours differ), at each of ``reference_strengths``.
    With hint counts, the ``one_hint`` block gives one colour hint's leak, harm and gain
    (:mod:`jkspnet.engines.leak`).
    ``groups``: also score each group of photos apart (:func:`jkspnet.media.sources.photo_group`:
    the manifest's ``group`` column, else the photo's source), in ``summary["groups"]``.
    ``against``: another report's folder; the first temperature minus its first model variant,
    photo by photo, with intervals, in ``summary["against"]`` (read before any scoring).
    """
    from tqdm import tqdm

    from ..pipeline.spec import check_reference_strength, check_temperature

    temperatures = list(temperatures) or [colorizer.config.temperature]
    unique: dict[str, float] = {}
    for t in temperatures:
        unique.setdefault(temperature_key(check_temperature(t)), float(t))
    temperatures = list(unique.values())
    hint_counts = sorted({int(n) for n in hint_counts if int(n) > 0})
    references = [check_choice("reference", k, REFERENCE_KINDS) for k in dict.fromkeys(references)]
    strengths = list(dict.fromkeys(map(check_reference_strength, reference_strengths)))
    if references and not strengths:
        raise JKSPNetError("no reference strength given")
    theirs = None if against is None else read_per_image(Path(against) / PER_IMAGE_NAME)
    size = colorizer.config.size
    out_dir = Path(out_dir)
    reporter = Reporter(report)
    say = reporter.say

    checked: list[_Checked] = []
    prior_sum: torch.Tensor | None = None
    grey = failed = 0
    show = progress and len(photos) > 1
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        # Pass 1: readable? coloured? and the truths' ab prior at size x size.
        bar = reporter.bar = tqdm(total=len(photos), desc="reading", unit="photo", disable=not show)
        with bar:
            palette = colorizer.reference_histogram if references else None
            check = lambda path: _check(path, size, colorizer.max_pixels, palette)  # noqa: E731
            for item in _in_order(pool, check, photos, ahead=2 * _WORKERS):
                bar.update()
                if item.error is not None:
                    say(f"error: {item.error}")
                    failed += 1
                elif item.grey:
                    grey += 1
                else:
                    if item.note:
                        say(f"note: {item.path}: {item.note}")
                    prior_sum = item.prior if prior_sum is None else prior_sum + item.prior
                    item.prior = None  # summed; don't hold one per photo
                    checked.append(item)
        bar = None
        if grey:
            say(
                f"warning: {grey} photo(s) have no colour (grey truth, colourfulness 0); "
                "skipped, since colour metrics mean nothing for them"
            )
        if prior_sum is None:
            raise JKSPNetError(
                f"no photo could be scored ({failed} failed, {grey} with grey truth skipped)"
            )
        # Every small truth has size * size pixels, so the set's prior is the mean of the photos'.
        variants = [GRAY, *map(variant_name, temperatures), *map(hints_variant, hint_counts)]
        several = len(strengths) > 1
        variants += [reference_variant(k, s, several) for k in references for s in strengths]
        run = _Run(variants, prior_sum / len(checked), size, hint_counts, references, strengths)
        run.guided_temperature = temperatures[0]
        palettes = [item.palette for item in checked]
        run.palettes = reference_palettes(references, [item.path for item in checked], palettes)

        # Pass 2: colorize each batch once per temperature, score every variant.
        bar = reporter.bar = tqdm(
            total=len(checked), desc="scoring", unit="photo", disable=not show
        )
        with bar:
            paths = [item.path for item in checked]
            batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
            loads = _in_order(pool, _load_batch(colorizer.max_pixels), batches, ahead=1)
            for batch, loaded in zip(batches, loads, strict=True):
                _run_batch(colorizer, temperatures, batch, loaded, run, grid_count, pool, say)
                bar.update(len(batch))
        bar = None
    failed += run.failed
    if not run.scored:
        raise JKSPNetError(
            f"no photo could be scored ({failed} failed, {grey} with grey truth skipped)"
        )

    sets = [
        aggregate_scores([photo.scores[i] for photo in run.scored])
        for i in range(len(run.variants))
    ]
    automatic = sets[1 : 1 + len(temperatures)]
    blocks = {
        temperature_key(t): summary_block(s) for t, s in zip(temperatures, automatic, strict=True)
    }
    guided = sets[1 + len(temperatures) :]
    spread_list = intervals.interval_blocks(run.scored, len(temperatures))
    spreads = dict(zip(blocks, spread_list, strict=True))
    summary: dict = {"n": len(run.scored)}
    if len(temperatures) == 1:
        summary["temperature"] = temperatures[0]
        summary["model"] = next(iter(blocks.values()))
        summary["intervals"] = next(iter(spreads.values()))
    else:
        summary["model"] = blocks
        summary["intervals"] = spreads
    summary["interval"] = intervals.settings()
    summary["gray"] = summary_block(sets[0])
    if hint_counts:
        summary["hints"] = {
            str(n): summary_block(s) for n, s in zip(hint_counts, guided, strict=False)
        }
        summary["hint_patch"] = f"{2 * HINT_PATCH_RADIUS + 1}x{2 * HINT_PATCH_RADIUS + 1}"
        measured = [photo.leak for photo in run.scored if photo.leak is not None]
        summary["one_hint"] = leaks.summarise(measured, run.without_colour_hint)
    if references:
        summary["reference_strength"] = strengths if several else strengths[0]
        by_reference = iter(guided[len(hint_counts) :])
        for kind in references:
            blocks = [summary_block(next(by_reference)) for _ in strengths]
            keyed = dict(zip(map(temperature_key, strengths), blocks, strict=True))
            summary[f"reference_{kind}"] = keyed if several else blocks[0]
    summary["truth"] = {"cf": finite(sets[0]["cf_truth"], 4)}
    if groups:
        summary["groups"] = group_blocks(run, temperatures)
    if theirs is not None:
        summary["against"] = against_block(run, Path(against), theirs)
    summary.update(
        weights=weights,
        size=size,
        auc_size=f"{size}x{size}",
        device=str(colorizer.device),
        precision=colorizer.precision,
        failed=failed,
        skipped_grey_truth=grey,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / SUMMARY_NAME, (json.dumps(summary, indent=2) + "\n").encode())
    write_atomic(out_dir / PER_IMAGE_NAME, per_image_csv(run))
    if run.grid_rows:
        png = io.BytesIO()
        grid(run.grid_rows).save(png, format="PNG")
        write_atomic(out_dir / GRID_NAME, png.getvalue())
    return summary


def _load_batch(max_pixels: int) -> Callable[[list[Path]], list[Photo | PhotoError]]:
    def load(batch: list[Path]) -> list[Photo | PhotoError]:
        out: list[Photo | PhotoError] = []
        for path in batch:
            try:
                out.append(load_photo(path, max_pixels=max_pixels))
            except PhotoError as error:
                out.append(error)
        return out

    return load


def _run_batch(
    colorizer: Colorizer,
    temperatures: list[float],
    batch: list[Path],
    loaded: list[Photo | PhotoError],
    run: _Run,
    grid_count: int,
    pool: ThreadPoolExecutor,
    say: Callable[[str], None],
) -> None:
    items = []
    for path, photo in zip(batch, loaded, strict=True):
        if isinstance(photo, PhotoError):  # it read in pass 1: changed on disk meanwhile
            say(f"error: {photo}")
            run.failed += 1
        elif is_grey(photo.pixels, NO_COLOUR):
            say(f"error: {path}: changed during the evaluation (now without colour)")
            run.failed += 1
        else:
            items.append((path, photo.pixels, colorizer.prepare(photo)))
    if not items:
        return
    abs_by_t = colorizer.predict_ab_list_at([p.network_input for *_, p in items], temperatures)
    logits = None
    if run.hint_counts or run.references:  # per photo: aspect-shaped inputs differ
        logits = [colorizer.predict_logits(p.network_input[None])[0] for *_, p in items]
    zeros = torch.zeros((2, run.size, run.size), device=colorizer.device)
    jobs = []
    for index, (path, truth, prepared) in enumerate(items):
        outputs = [colorizer.finish(prepared, zeros)]
        outputs += [colorizer.finish(prepared, ab[index]) for ab in abs_by_t]
        if logits is not None:
            outputs += _guided_outputs(colorizer, prepared, logits[index], truth, path, run)
        small_truth = _small(truth, run.size)
        futures = [pool.submit(_score, out, truth, small_truth, run) for out in outputs]
        leak = None
        if run.hint_counts:
            leak = _leak_job(colorizer, prepared, logits[index], truth, path, run, pool)
        jobs.append((path, futures, leak))
        if len(run.grid_rows) < grid_count:
            run.grid_rows.append([thumbnail(outputs[0]), thumbnail(outputs[1]), thumbnail(truth)])
    for path, futures, leak in jobs:
        try:
            scores = [future.result() for future in futures]
            run.scored.append(_Scored(path, scores, None if leak is None else leak.result()))
        except ValueError as error:  # e.g. a truth colour outside the prior: changed on disk
            say(f"error: {path}: cannot score ({error})")
            run.failed += 1


def _guided_outputs(colorizer, prepared, logits, truth, path: Path, run: _Run) -> list[Image.Image]:
    """The photo guided by each count of sampled hints, then by each reference palette at each
    strength."""
    temperature = run.guided_temperature
    outputs = []
    hints = sample_hints(truth, max(run.hint_counts), seed=path.name) if run.hint_counts else []
    for count in run.hint_counts:
        ab, correction = colorizer.guide(prepared, logits, hints[:count], temperature=temperature)
        outputs.append(colorizer.finish(prepared, ab, correction))
    for kind in run.references:
        histogram = run.palettes[kind, path]
        for strength in run.strengths:
            ab, _ = colorizer.guide(prepared, logits, (), histogram, strength, temperature)
            outputs.append(colorizer.finish(prepared, ab))
    return outputs


def _leak_job(colorizer, prepared, logits, truth, path: Path, run: _Run, pool):
    """One colour hint's leak, harm and gain, measured in ``pool``; None (counted) where the
    photo has no pixel colourful enough to hint."""
    hint = leaks.sample_colour_hint(truth, seed=path.name)
    if hint is None:
        run.without_colour_hint += 1
        return None
    ab, correction = colorizer.guide(prepared, logits, [hint], temperature=run.guided_temperature)
    automatic = _rgb(colorizer.finish(prepared, ab))
    guided = _rgb(colorizer.finish(prepared, ab, correction))
    return pool.submit(leaks.hint_leak, truth, automatic, guided, hint)


__all__ = ["evaluate", "sample_hints"]
