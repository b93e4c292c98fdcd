"""The evaluation's report: the summary's blocks, ``per_image.csv``, ``grid.png`` and the printed
table. :mod:`jkspnet.engines.evaluate` runs the evaluation and writes these."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

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


def interval_text(spread: dict, figure: str) -> str:
    """One figure's interval as ``low..high`` (``-`` if it has none)."""
    ends = spread.get(figure)
    if ends is None:
        return "-"
    scale, form, unit = _INTERVAL_FORMATS[figure]
    return "..".join(form.format(scale * end) for end in ends) + unit


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
    "align",
    "format_group_table",
    "format_table",
    "group_blocks",
    "hints_variant",
    "interval_text",
    "per_image_csv",
    "per_image_fields",
    "reference_blocks",
    "reference_variant",
    "summary_block",
    "temperature_key",
    "variant_name",
]
