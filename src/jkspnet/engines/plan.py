"""Planning a batch: which output each input photo or film gets. No torch, no pixels."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import JKSPNetError, PhotoError
from ..media.codecs import DEFAULT_CODEC, VIDEO_SUFFIXES, is_video, output_suffix
from ..media.photos import PHOTO_SUFFIXES, WRITABLE_SUFFIXES, find_photos, output_format


class PlanError(JKSPNetError):
    """Inputs and an output that make no plan (a usage error): several inputs into one file, an
    output suffix that cannot be written, inputs that cannot be found."""


def plan_outputs(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    recursive: bool = False,
    format: str | None = None,
    codec: str = DEFAULT_CODEC,
    problems: list[PhotoError] | None = None,
) -> list[tuple[Path, Path]]:
    """``(input, output)`` for each photo and film that ``inputs`` name.

    ``out`` is a folder (created when written to; outputs keep the inputs' names and, under
    folders, relative paths), or a file for one input photo or film. A photo's output takes the
    suffix of ``format`` (png, jpg, webp), else keeps its own (PNG for formats such as GIF); a
    film's keeps its container where ``codec`` fits it. Inputs that cannot be used (a missing
    file, an empty folder, a pattern matching nothing) are appended to ``problems`` where it is
    given and the plan goes on; otherwise they raise :class:`PlanError`, as do an output file for
    several inputs and an output suffix that cannot be written.
    """
    items = [os.fspath(item) for item in inputs]
    if format is not None:
        try:
            output_format(Path(), format)
        except ValueError as error:
            raise PlanError(str(error)) from None
    found = find_photos(
        items, recursive=recursive, suffixes=PHOTO_SUFFIXES | VIDEO_SUFFIXES, what="photos or films"
    )
    from ..media.hints import is_sidecar

    found.photos = [item for item in found.photos if not is_sidecar(item[0])]  # hints, not photos
    if found.problems and problems is None:
        raise PlanError("; ".join(str(problem) for problem in found.problems))
    if problems is not None:
        problems.extend(found.problems)
    out = Path(out)
    single = (
        len(items) == 1
        and len(found.photos) == 1
        and Path(items[0]).is_file()
        and not out.is_dir()
        and out.suffix != ""
    )
    if single:
        film = is_video(found.photos[0][0])
        suffixes = VIDEO_SUFFIXES if film else WRITABLE_SUFFIXES
        if out.suffix.lower() not in suffixes:
            writable = ", ".join(sorted(suffixes))
            what = f"a film as {out.suffix}" if film else f"{out.suffix} files"
            raise PlanError(f"{out}: cannot write {what} (use one of {writable})")
        return [(found.photos[0][0], out)]
    if out.exists() and not out.is_dir():
        raise PlanError(f"{out}: exists and is not a folder (several outputs need a folder)")
    pairs = []
    for source, relative in found.photos:
        if is_video(source):
            suffix = output_suffix(source, codec)
        else:
            _, suffix = output_format(source, format)
        pairs.append((source, out / relative.with_suffix(suffix)))
    return pairs


__all__ = ["PlanError", "plan_outputs"]
