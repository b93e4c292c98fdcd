"""The evaluation's report: the summary's blocks, ``per_image.csv``, ``grid.png`` and the printed
table. :mod:`jkspnet.engines.evaluate` runs the evaluation and writes these."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import JKSPNetError
from ..media.sources import photo_group
from . import intervals, scores
from .references import REFERENCE_KINDS

GRID_CELL_HEIGHT = 160
"""Height in pixels of every cell of ``grid.png``; widths keep each photo's aspect ratio."""

GRID_GAP = 4
"""White gap in pixels between the cells and rows of ``grid.png``."""

GRAY = "gray"
ONE_HINT = "one hint"
"""The variant of ``per_image.csv``'s rows that give one colour hint's leak, harm and gain."""


LEAK_FIELDS = ("leak", "harm", "gain")
"""One colour hint's measures (:mod:`jkspnet.engines.leak`), on its own ``one hint`` rows."""


def per_image_fields() -> tuple[str, ...]:
    """``per_image.csv``'s columns: the file, the variant, each metric that scores a photo, then
    :data:`LEAK_FIELDS`."""
    return ("file", "variant", *(m.key for m in scores.METRICS if m.of_photo), *LEAK_FIELDS)


def temperature_key(temperature: float) -> str:
    """How a temperature names its ``model`` block and its variant: 0.38 -> "0.38", 1.0 -> "1"."""
    return f"{temperature:g}"


def variant_name(temperature: float) -> str:
    return f"T={temperature_key(temperature)}"


def hints_variant(count: int) -> str:
    return f"hints={count}"


def reference_variant(kind: str, strength: float, several: bool = False) -> str:
    """A reference palette's variant: ``reference=self``, or ``reference=self@2`` when the run
    scores several strengths."""
    return f"reference={kind}" + (f"@{temperature_key(strength)}" if several else "")


def reference_blocks(summary: dict) -> list[tuple[str, dict]]:
    """Each reference variant's block of a summary, named as :func:`reference_variant` names it:
    ``summary["reference_<kind>"]`` is one block, or one per strength (``--reference-strength``
    with several values)."""
    out = []
    for kind in REFERENCE_KINDS:
        found = summary.get(f"reference_{kind}")
        if found is not None and "psnr" in found:
            out.append((reference_variant(kind, 0.0), found))
        elif found is not None:
            out += [(reference_variant(kind, float(s), True), b) for s, b in found.items()]
    return out


def finite(value: float | None, digits: int) -> float | None:
    """A JSON-safe rounded number: infinities (a perfect PSNR) and NaN become null."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _text(value: float | None, digits: int) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def thumbnail(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert("RGB")
    width = max(1, round(image.width * GRID_CELL_HEIGHT / image.height))
    return image.resize((width, GRID_CELL_HEIGHT), Image.Resampling.LANCZOS)


def grid(rows: Sequence[Sequence[Image.Image]]) -> Image.Image:
    widths = [sum(cell.width for cell in row) + GRID_GAP * (len(row) - 1) for row in rows]
    height = len(rows) * GRID_CELL_HEIGHT + GRID_GAP * (len(rows) - 1)
    canvas = Image.new("RGB", (max(widths), height), "white")
    for index, row in enumerate(rows):
        left, top = 0, index * (GRID_CELL_HEIGHT + GRID_GAP)
        for cell in row:
            canvas.paste(cell, (left, top))
            left += cell.width + GRID_GAP
    return canvas


def summary_block(set_scores: scores.SetScores) -> dict[str, float | None]:
    """A set's scores as a block of ``summary.json``."""
    return {m.key: finite(set_scores[m.key], m.digits) for m in scores.METRICS if m.summary}


def per_image_csv(run) -> bytes:
    """The rows of ``per_image.csv``: one per photo and variant of ``run`` (its ``variants`` and
    ``scored``), then, for a photo with a leak measure, a ``one hint`` row with only its leak,
    harm and gain."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(per_image_fields())
    columns = [m for m in scores.METRICS if m.of_photo]
    for photo in run.scored:
        for variant, s in zip(run.variants, photo.scores, strict=True):
            writer.writerow(
                [
                    str(photo.path),
                    variant,
                    *(_text(s[m.key], m.digits) for m in columns),
                    *[""] * len(LEAK_FIELDS),
                ]
            )
        leak = getattr(photo, "leak", None)
        if leak is not None:
            measures = [_text(leak.leak, 4), _text(leak.harm, 4), _text(leak.gain, 4)]
            writer.writerow([str(photo.path), ONE_HINT, *[""] * len(columns), *measures])
    return stream.getvalue().encode("utf-8")


_COMPARED = ("psnr", "cf", "cf_truth", "cast")  # what a comparison reads back per photo


def read_per_image(path: Path) -> tuple[list[str], dict[tuple[str, str], scores.ImageScores]]:
    """Another evaluation's ``per_image.csv``: its variants in order, and per (file, variant) the
    scores a comparison needs. One :class:`JKSPNetError` line for a missing or foreign file."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        reason = getattr(error, "strerror", None) or "not a per_image.csv"
        raise JKSPNetError(f"{path}: cannot read ({reason})") from None
    needed = {"file", "variant", *_COMPARED}
    if not rows or not needed <= set(rows[0]):
        raise JKSPNetError(f"{path}: not an eval report's per_image.csv (no scored photos)")
    variants: list[str] = []
    table: dict[tuple[str, str], scores.ImageScores] = {}
    for row in rows:
        if row["variant"] == ONE_HINT:
            continue
        try:
            raw = {key: float(row[key]) if row[key] else None for key in _COMPARED}
        except ValueError:
            raise JKSPNetError(f"{path}: not an eval report's per_image.csv (bad number)") from None
        if row["variant"] not in variants:
            variants.append(row["variant"])
        table[(row["file"], row["variant"])] = scores.ImageScores(raw, ())
    return variants, table


def against_block(run, other: Path, theirs: tuple[list, dict]) -> dict:
    """``summary.json``'s ``against``: this evaluation's first temperature minus the first
    model variant of another's (``theirs``, from :func:`read_per_image`), over the photos both
    scored (matched by the path as given), with intervals (:mod:`jkspnet.engines.intervals`)."""
    variants, table = theirs
    variant = next((v for v in variants if v != GRAY), None)
    pairs = [
        (photo.scores[1], table[(str(photo.path), variant)])
        for photo in run.scored
        if (str(photo.path), variant) in table
    ]
    block: dict = {"report": str(other), "variant": variant, "photos": len(pairs)}
    if pairs:
        ours, others = zip(*pairs, strict=True)
        points = intervals.difference(ours, others)
        block["difference"] = {k: finite(v, intervals.DIGITS) for k, v in points.items()}
        block["intervals"] = intervals.rounded(intervals.bootstrap_difference(ours, others))
    return block


def _against_lines(summary: dict) -> list[str]:
    block = summary.get("against")
    if block is None:
        return []
    head = f"against {block['report']} ({block['variant']})"
    if not block["photos"]:
        return [f"{head}: no photo in common"]
    level = f"{100 * summary['interval']['level']:.0f} %"
    point, spread = block["difference"], block["intervals"]
    shown = {  # (label, scale, format, unit)
        "psnr_over_grey": ("PSNR", 1, "{:+.2f}", " dB"),
        "cf_share": ("CF kept", 100, "{:+.1f}", " points"),
        "cast": ("cast", 1, "{:+.2f}", ""),
    }
    parts = []
    for key, (label, scale, form, unit) in shown.items():
        if point[key] is None:
            parts.append(f"{label} -")
            continue
        text = f"{label} {form.format(scale * point[key])}{unit}"
        if spread[key] is not None:
            text += f" ({_span(spread[key], scale, form)})"
        parts.append(text)
    return [f"{head}, {block['photos']} photos, this minus that ({level}): {', '.join(parts)}"]


def group_blocks(run, temperatures: Sequence[float]) -> dict[str, dict]:
    """``summary.json``'s ``groups``: per group of photos of an evaluation ``run`` (its
    ``scored``), its count, the grey baseline's and each temperature's block, and each
    temperature's intervals (:mod:`jkspnet.engines.intervals`)."""
    members: dict[str, list] = {}
    for photo in run.scored:
        members.setdefault(photo_group(photo.path), []).append(photo)
    out: dict[str, dict] = {}
    for name in sorted(members):
        photos = members[name]
        sets = [
            scores.aggregate_scores([photo.scores[i] for photo in photos])
            for i in range(1 + len(temperatures))
        ]
        keys = [temperature_key(t) for t in temperatures]
        out[name] = {
            "n": len(photos),
            "gray": summary_block(sets[0]),
            "model": {key: summary_block(s) for key, s in zip(keys, sets[1:], strict=True)},
            "intervals": dict(zip(keys, intervals.interval_blocks(photos, len(keys)), strict=True)),
            "truth": {"cf": finite(sets[0]["cf_truth"], 4)},
        }
    return out


def align(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            text.ljust(width) if i == 0 else text.rjust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    )


_INTERVAL_FORMATS = {  # (scale, format, unit) as the figures themselves are shown
    "psnr_over_grey": (1, "{:+.2f}", ""),
    "cf_share": (100, "{:.0f}", " %"),
    "cast": (1, "{:.2f}", ""),
}


def _span(ends: Sequence[float], scale: float, form: str) -> str:
    """An interval's ends as ``low..high``, each scaled and formatted as its figure is."""
    return "..".join(form.format(scale * end) for end in ends)


def interval_text(spread: dict, figure: str) -> str:
    """One figure's interval as ``low..high`` (``-`` if it has none)."""
    ends = spread.get(figure)
    if ends is None:
        return "-"
    scale, form, unit = _INTERVAL_FORMATS[figure]
    return _span(ends, scale, form) + unit


def _interval_lines(summary: dict) -> list[str]:
    spreads = summary.get("intervals")
    if not spreads:
        return []
    if "temperature" in summary:
        spreads = {temperature_key(summary["temperature"]): spreads}
    setting = summary["interval"]
    level = f"{100 * setting['level']:.0f} %"
    lines = [f"{level} intervals ({setting['resamples']} draws of the photos):"]
    for key, spread in spreads.items():
        figures = (
            f"PSNR-grey {interval_text(spread, 'psnr_over_grey')} dB",
            f"CF kept {interval_text(spread, 'cf_share')}",
            f"cast {interval_text(spread, 'cast')}",
        )
        lines.append(f"  T={key}: {', '.join(figures)}")
    return lines


def format_group_table(summary: dict) -> str:
    """Per group and temperature (``jkspnet eval --groups``): PSNR against grey's,
    colourfulness kept and cast, each beside its interval (``low..high``)."""
    level = summary.get("interval", {}).get("level")
    shown = "interval" if level is None else f"{100 * level:.0f}%-interval"
    header = ("group", "n", "T", "PSNR-grey", shown, "CF kept", shown, "cast", shown)
    rows = []
    for name, group in summary.get("groups", {}).items():
        grey_psnr, truth_cf = group["gray"]["psnr"], group["truth"]["cf"]
        for key, block in group["model"].items():
            gain = None if grey_psnr is None else block["psnr"] - grey_psnr
            kept = None if not truth_cf else 100 * block["cf"] / truth_cf
            spread = group.get("intervals", {}).get(key, {})
            rows.append(
                (
                    name,
                    str(group["n"]),
                    key,
                    "-" if gain is None else f"{gain:+.2f}",
                    interval_text(spread, "psnr_over_grey"),
                    "-" if kept is None else f"{kept:.0f} %",
                    interval_text(spread, "cf_share"),
                    "-" if block["cast"] is None else f"{block['cast']:.2f}",
                    interval_text(spread, "cast"),
                )
            )
    return align(header, rows)


def format_table(summary: dict) -> str:
    """The summary as a small text table: one row per variant (gray, each T) and the truth."""
    model = summary["model"]
    blocks = [(GRAY, summary["gray"])]
    if "temperature" in summary:
        blocks.append((variant_name(summary["temperature"]), model))
    else:
        blocks += [(f"T={key}", block) for key, block in model.items()]
    blocks += [(hints_variant(int(n)), block) for n, block in summary.get("hints", {}).items()]
    blocks += reference_blocks(summary)

    def cell(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    columns = [m for m in scores.METRICS if m.label]
    header = ("variant", *(m.label for m in columns))
    rows = [(name, *(cell(b[m.key], m.shown) for m in columns)) for name, b in blocks]
    rows.append(("truth", *(cell(summary["truth"].get(m.key), m.shown) for m in columns)))
    lines = align(header, rows).split("\n")
    one_hint = summary.get("one_hint")
    if one_hint:
        lines.append(
            f"one hint (on chroma >= {one_hint['min_chroma']:g}, {one_hint['photos']} photos): "
            f"leak {cell(one_hint['leak'], 2)} ab, harm {cell(one_hint['harm'], 2)} dB, "
            f"gain {cell(one_hint['gain'], 2)} dB"
        )
    lines += _interval_lines(summary)
    lines += _against_lines(summary)
    automatic, base = blocks[1]  # the first temperature's, which guidance decodes at
    references = reference_blocks(summary)
    if references and None not in (base["psnr"], *(b["psnr"] for _, b in references)):
        gains = [f"{name} {b['psnr'] - base['psnr']:+.2f}" for name, b in references]
        lines.append(f"PSNR against {automatic} (dB): {', '.join(gains)}")
    return "\n".join(lines)


__all__ = [
    "GRID_CELL_HEIGHT",
    "GRID_GAP",
    "LEAK_FIELDS",
    "ONE_HINT",
    "against_block",
    "align",
    "format_group_table",
    "format_table",
    "group_blocks",
    "hints_variant",
    "interval_text",
    "per_image_csv",
    "per_image_fields",
    "read_per_image",
    "reference_blocks",
    "reference_variant",
    "summary_block",
    "temperature_key",
    "variant_name",
]
