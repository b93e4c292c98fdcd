"""The evaluation's report: the summary's blocks, ``per_image.csv``, ``grid.png`` and the printed
table. :mod:`jkspnet.engines.evaluate` runs the evaluation and writes these."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from . import scores

GRID_CELL_HEIGHT = 160
"""Height in pixels of every cell of ``grid.png``; widths keep each photo's aspect ratio."""

GRID_GAP = 4
"""White gap in pixels between the cells and rows of ``grid.png``."""

GRAY = "gray"
REFERENCE_SELF = "reference=self"
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


def format_group_table(summary: dict) -> str:
    """Per group and temperature (``jkspnet eval --groups``): PSNR against grey's,
    colourfulness kept and cast."""
    header = ("group", "n", "T", "PSNR-grey", "CF kept", "cast")
    rows = []
    for name, group in summary.get("groups", {}).items():
        grey_psnr, truth_cf = group["gray"]["psnr"], group["truth"]["cf"]
        for key, block in group["model"].items():
            gain = None if grey_psnr is None else block["psnr"] - grey_psnr
            kept = None if not truth_cf else 100 * block["cf"] / truth_cf
            rows.append(
                (
                    name,
                    str(group["n"]),
                    key,
                    "-" if gain is None else f"{gain:+.2f}",
                    "-" if kept is None else f"{kept:.0f} %",
                    "-" if block["cast"] is None else f"{block['cast']:.2f}",
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
    if "reference_self" in summary:
        blocks.append((REFERENCE_SELF, summary["reference_self"]))

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
    return "\n".join(lines)


__all__ = [
    "GRID_CELL_HEIGHT",
    "GRID_GAP",
    "LEAK_FIELDS",
    "ONE_HINT",
    "align",
    "format_group_table",
    "format_table",
    "hints_variant",
    "per_image_csv",
    "per_image_fields",
    "summary_block",
    "temperature_key",
    "variant_name",
]
