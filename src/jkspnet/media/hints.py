"""Colour hints: a point of the photo and the colour it should have.

A user who knows that the tower is brick or the car was green says so with a hint; the
propagation (:mod:`jkspnet.pipeline.propagation`) spreads each hint's colour over the region it
belongs to. Hints come from the API (:class:`Hint`), from JSON (:func:`parse_hints`: a list of
``{"x": 120, "y": 340, "color": "#8a3b2a", "radius": 4}``, the form of a ``--hints`` file, a
sidecar ``NAME.hints.json`` and the web page's request) or from the CLI's ``--hint X,Y,#RRGGBB``.
A scribble (:class:`Stroke`, ``{"points": [[x, y], ...], "color": "#rrggbb", "width": 12}``) is
a hint too, in the same lists: a brush stroke says "this colour all along here", which a long
thin region (a river, a scarf) needs and single points give only by many clicks.

Coordinates are pixels of the photo as displayed (after its EXIF orientation), x to the right
and y down from the top-left corner; pixel (i, j) covers [i, i + 1) x [j, j + 1). Only a hint's
chroma is used: the photo keeps its own lightness, so a hint says "this hue and saturation", and
the colour picked need not match the photo's brightness there.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import JKSPNetError

if TYPE_CHECKING:  # torch only where hints become colours: parsing and checking need none
    import torch

SIDECAR_SUFFIX = ".hints.json"
"""A photo's hints file beside it: ``scan-012.hints.json`` for ``scan-012.tif``."""

MAX_HINTS = 10_000
"""More hints than anyone places by hand: refused, so a malicious request cannot make a huge
constraint set."""


class HintError(JKSPNetError):
    """Hints that cannot be used: malformed JSON, a bad colour, a point outside the photo."""


@dataclass(frozen=True)
class Hint:
    """A colour hint at pixel (x, y) of the photo as displayed.

    ``color`` is 8-bit sRGB; ``radius`` (pixels of the photo) is how big the spot is that the
    user vouches for; None lets the propagation pick a small spot (a few pixels of its grid).
    """

    x: float
    y: float
    color: tuple[int, int, int]
    radius: float | None = None

    def __post_init__(self) -> None:
        for name in ("x", "y"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HintError(f"hint {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise HintError(f"hint {name} must be a finite number, got {value!r}")
        color = tuple(self.color) if isinstance(self.color, Sequence) else None
        if (
            color is None
            or len(color) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in color)
            or not all(0 <= c <= 255 for c in color)
        ):
            raise HintError(f"hint color must be three whole numbers 0-255, got {self.color!r}")
        object.__setattr__(self, "color", color)
        if self.radius is not None and (
            isinstance(self.radius, bool)
            or not isinstance(self.radius, int | float)
            or not (math.isfinite(self.radius) and self.radius > 0)
        ):
            raise HintError(f"hint radius must be a number above 0, got {self.radius!r}")

    @property
    def hex(self) -> str:
        """The colour as ``#rrggbb`` (how JSON writes it)."""
        return "#{:02x}{:02x}{:02x}".format(*self.color)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"x": self.x, "y": self.y, "color": self.hex}
        if self.radius is not None:
            out["radius"] = self.radius
        return out


MAX_STROKE_POINTS = 10_000
"""Points in one stroke at most: a hand-drawn stroke has a few hundred."""


@dataclass(frozen=True)
class Stroke:
    """A scribble: a polyline through ``points`` (pixels of the photo as displayed) painted
    ``width`` pixels wide in ``color`` (8-bit sRGB). The propagation sees it as hints spaced half
    a width apart along the line (:meth:`spots`), each covering the brush's width."""

    points: tuple[tuple[float, float], ...]
    color: tuple[int, int, int]
    width: float

    def __post_init__(self) -> None:
        points = tuple(self.points) if isinstance(self.points, Sequence) else ()
        if len(points) < 2:
            raise HintError(f"a stroke needs at least 2 points, got {len(points)}")
        if len(points) > MAX_STROKE_POINTS:
            raise HintError(f"a stroke has {len(points)} points: at most {MAX_STROKE_POINTS}")
        checked = []
        for number, point in enumerate(points, start=1):
            if not (isinstance(point, Sequence) and len(point) == 2) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in point
            ):
                raise HintError(f"stroke point {number} must be [x, y] numbers, got {point!r}")
            checked.append((float(point[0]), float(point[1])))
        object.__setattr__(self, "points", tuple(checked))
        Hint(0, 0, self.color)  # the colour's check
        object.__setattr__(self, "color", tuple(self.color))
        width = self.width
        if isinstance(width, bool) or not isinstance(width, int | float):
            raise HintError(f"stroke width must be a number, got {width!r}")
        if not (math.isfinite(width) and width > 0):
            raise HintError(f"stroke width must be above 0, got {width!r}")

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.color)

    def to_json(self) -> dict[str, object]:
        return {"points": [list(p) for p in self.points], "color": self.hex, "width": self.width}

    def spots(self) -> list[Hint]:
        """The stroke as hints: its points and, between them, one every half width (at least
        one pixel apart), each of radius half the width."""
        radius = self.width / 2
        step = max(1.0, radius)
        spots = [Hint(*self.points[0], self.color, radius)]
        for (x0, y0), (x1, y1) in pairwise(self.points):
            count = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step))
            for i in range(1, count + 1):
                t = i / count
                spots.append(Hint(x0 + t * (x1 - x0), y0 + t * (y1 - y0), self.color, radius))
        return spots


def parse_color(text: object) -> tuple[int, int, int]:
    """``#rrggbb`` (or ``#rgb``) to 8-bit sRGB; anything else is a :class:`HintError`."""
    if isinstance(text, str):
        digits = text.strip().removeprefix("#")
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 6 and all(c in "0123456789abcdefABCDEF" for c in digits):
            return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    raise HintError(f"cannot read colour {text!r} (use #rrggbb, e.g. #8a3b2a)")


def _number(item: dict, key: str, where: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HintError(f"{where}: {key!r} must be a number, got {value!r}")
    return float(value)


def _stroke(item: dict, where: str) -> Stroke:
    unknown = set(item) - {"points", "color", "width"}
    if unknown:
        raise HintError(f"{where}: unknown key(s) {', '.join(sorted(map(repr, unknown)))}")
    for key in ("color", "width"):
        if key not in item:
            raise HintError(f"{where}: no {key!r}")
    if not isinstance(item["points"], list):
        raise HintError(f"{where}: 'points' must be a list of [x, y], got {item['points']!r}")
    try:
        return Stroke(
            tuple(tuple(p) if isinstance(p, list) else p for p in item["points"]),
            parse_color(item["color"]),
            item["width"],
        )
    except HintError as error:
        raise HintError(f"{where}: {error}") from None


def parse_hints(obj_or_text: object) -> list[Hint | Stroke]:
    """Hints from JSON text (str or bytes) or the parsed object: a list of objects with
    ``x``, ``y``, ``color`` (``#rrggbb``) and an optional ``radius``, or strokes with
    ``points`` (a list of ``[x, y]``), ``color`` and ``width``.

    Raises :class:`HintError` with a one-line message naming the faulty hint, since this is
    what the CLI prints and the HTTP API returns."""
    if isinstance(obj_or_text, bytes | bytearray):
        try:
            obj_or_text = obj_or_text.decode("utf-8")
        except UnicodeDecodeError:
            raise HintError("hints are not UTF-8 text") from None
    if isinstance(obj_or_text, str):
        try:
            data = json.loads(obj_or_text)
        except json.JSONDecodeError as error:
            where = f"line {error.lineno} column {error.colno}"
            raise HintError(f"hints are not valid JSON ({error.msg} at {where})") from None
    else:
        data = obj_or_text
    if isinstance(data, dict) and isinstance(data.get("hints"), list):
        data = data["hints"]  # {"hints": [...]} is accepted too
    if not isinstance(data, list):
        raise HintError(
            'hints must be a JSON list of {"x": ..., "y": ..., "color": "#rrggbb"} objects'
        )
    if len(data) > MAX_HINTS:
        raise HintError(f"{len(data)} hints: at most {MAX_HINTS} are accepted")
    hints = []
    for index, item in enumerate(data, start=1):
        where = f"hint {index}"
        if isinstance(item, Hint | Stroke):
            hints.append(item)
            continue
        if not isinstance(item, dict):
            raise HintError(f"{where}: must be an object with x, y and color, got {item!r}")
        if "points" in item:
            hints.append(_stroke(item, f"stroke (hint {index})"))
            continue
        unknown = set(item) - {"x", "y", "color", "radius"}
        if unknown:
            raise HintError(f"{where}: unknown key(s) {', '.join(sorted(map(repr, unknown)))}")
        if "color" not in item:
            raise HintError(f"{where}: no 'color'")
        x, y = _number(item, "x", where), _number(item, "y", where)
        try:
            color = parse_color(item["color"])
        except HintError as error:
            raise HintError(f"{where}: {error}") from None
        radius = item.get("radius")
        if radius is not None:
            radius = _number(item, "radius", where)
            if radius <= 0:
                raise HintError(f"{where}: 'radius' must be above 0, got {radius:g}")
        hints.append(Hint(x, y, color, radius))
    return hints


def parse_hint_argument(text: str) -> Hint:
    """The CLI's ``--hint X,Y,#RRGGBB[,RADIUS]``."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (3, 4):
        raise HintError(f"cannot read hint {text!r} (use X,Y,#RRGGBB, e.g. 120,340,#8a3b2a)")
    item: dict[str, object] = {"color": parts[2]}
    for key, part in zip(("x", "y", "radius"), parts[:2] + parts[3:], strict=False):
        try:
            item[key] = float(part)
        except ValueError:
            raise HintError(f"hint {text!r}: {key} {part!r} is not a number") from None
    return parse_hints([item])[0]


def read_hints_file(path: str | os.PathLike[str]) -> list[Hint]:
    """Hints from a JSON file; a missing or unreadable file is a :class:`HintError`."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise HintError(f"{path}: no such hints file") from None
    except OSError as error:
        raise HintError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        return parse_hints(text)
    except HintError as error:
        raise HintError(f"{path}: {error}") from None


def sidecar_of(photo: str | os.PathLike[str]) -> Path:
    """Where a photo's hints sidecar lives: its name with ``.hints.json`` for its suffix."""
    path = Path(photo)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def is_sidecar(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named as a hints sidecar (never an input photo)."""
    return Path(path).name.lower().endswith(SIDECAR_SUFFIX)


def check_hints(hints: Sequence[Hint | Stroke], width: int, height: int) -> None:
    """Every hint, and every point of every stroke, lies in the photo (``0 <= x < width``,
    ``0 <= y < height``), or HintError."""
    for index, hint in enumerate(hints, start=1):
        if isinstance(hint, Stroke):
            for number, (x, y) in enumerate(hint.points, start=1):
                if not (0 <= x < width and 0 <= y < height):
                    raise HintError(
                        f"stroke (hint {index}): point {number} at ({x:g}, {y:g}) is outside the "
                        f"photo ({width}x{height}; x from 0 to {width - 1}, y from 0 to "
                        f"{height - 1})"
                    )
        elif not (0 <= hint.x < width and 0 <= hint.y < height):
            raise HintError(
                f"hint {index} at ({hint.x:g}, {hint.y:g}) is outside the photo "
                f"({width}x{height}; x from 0 to {width - 1}, y from 0 to {height - 1})"
            )


@dataclass
class HintSource:
    """Where each photo of a run takes its hints: the command line's (``given``, for a single
    photo), else its sidecar when ``sidecars`` is on and one exists, else none."""

    given: list[Hint] | None = None
    sidecars: bool = True

    def hints_for(self, photo: str | os.PathLike[str]) -> list[Hint]:
        if self.given is not None:
            return self.given
        sidecar = sidecar_of(photo)
        if self.sidecars and sidecar.is_file():
            return read_hints_file(sidecar)
        return []

    def check(self, photos: Sequence[str | os.PathLike[str] | None]) -> None:
        """Refuse, before any work, hints given for several photos and unreadable sidecars
        (None: a photo that counts but is not checked, e.g. one whose output exists)."""
        if self.given is not None and len(photos) > 1:
            raise HintError(
                f"--hints/--hint apply to one photo, but {len(photos)} were given; "
                f"for a folder, put each photo's hints in a sidecar NAME{SIDECAR_SUFFIX}"
            )
        for photo in photos:
            if photo is not None:
                self.hints_for(photo)


@dataclass
class Guidance:
    """What a batch of photos is guided by (:class:`jkspnet.engines.batch.BatchOptions`): each
    photo's hints (:class:`HintSource`), a reference photo's palette and its strength, and where to
    write the one input photo's uncertainty map."""

    hints: HintSource = field(default_factory=HintSource)
    reference: object | None = None  # a decoded photo (jkspnet.media.photos.Photo)
    strength: float = 1.0
    uncertainty_map: Path | None = None
    histogram: torch.Tensor | None = None  # the reference's palette, once a colorizer is loaded

    def palette(self, colorizer) -> torch.Tensor | None:
        """The reference's ab histogram over the 313 bins, computed once."""
        if self.reference is not None and self.histogram is None:
            self.histogram = colorizer.reference_histogram(self.reference)
        return self.histogram


@dataclass(frozen=True)
class ABTarget:
    """A hint as the propagation uses it: a point, its chroma (LAB a and b) and a radius in
    photo pixels (None: the solver's default). The evaluation makes these from the truth."""

    x: float
    y: float
    a: float
    b: float
    radius: float | None = None


def hint_targets(hints: Sequence[Hint | Stroke]) -> list[ABTarget]:
    """Each hint's colour converted to its LAB chroma; a stroke gives its spots'."""
    hints = [spot for h in hints for spot in (h.spots() if isinstance(h, Stroke) else [h])]
    if not hints:
        return []
    import torch

    from ..colour.spaces import rgb_to_lab

    rgb = torch.tensor([h.color for h in hints], dtype=torch.float64).t() / 255.0
    lab = rgb_to_lab(rgb.reshape(3, 1, -1)).reshape(3, -1)
    return [
        ABTarget(h.x, h.y, float(a), float(b), h.radius)
        for h, a, b in zip(hints, lab[1].tolist(), lab[2].tolist(), strict=True)
    ]


__all__ = [
    "MAX_HINTS",
    "MAX_STROKE_POINTS",
    "SIDECAR_SUFFIX",
    "ABTarget",
    "Hint",
    "HintError",
    "HintSource",
    "Stroke",
    "check_hints",
    "hint_targets",
    "is_sidecar",
    "parse_color",
    "parse_hint_argument",
    "parse_hints",
    "read_hints_file",
    "sidecar_of",
]
