"""Where a photo came from and what it shows, from a ``manifest.csv`` beside it (as
``scripts/build_photo_set.py`` writes one) or from its name: what a split by source holds out
whole, and the groups ``jkspnet eval --groups`` reports apart. Torch-free."""

from __future__ import annotations

import csv
import functools
from pathlib import Path


def photo_source(path: Path) -> str:
    """Where a photo came from (its package), for a split that holds out whole sources.

    The source is the ``package`` column of a ``manifest.csv`` beside the photo (as
    ``scripts/build_photo_set.py`` writes), else the part of the file name before ``__`` (that
    script's naming), else the name of the photo's folder.
    """
    manifest = _manifest_sources(path.parent)
    if path.name in manifest:
        return manifest[path.name]
    if "__" in path.name:
        return path.name.split("__", 1)[0]
    return path.parent.name


def photo_group(path: Path) -> str:
    """What a photo shows, for per-group figures (``jkspnet eval --groups``).

    The ``group`` column of a ``manifest.csv`` beside the photo (people, interiors, scenes or
    objects, as ``scripts/build_photo_set.py`` writes it), else the photo's source
    (:func:`photo_source`), so that a folder without groups is reported by package.
    """
    group = _manifest_column(path.parent, "group").get(path.name)
    return group or photo_source(path)


def _manifest_sources(folder: Path) -> dict[str, str]:
    return _manifest_column(folder, "package")


def _manifest_column(folder: Path, column: str) -> dict[str, str]:
    manifest = folder / "manifest.csv"
    try:
        stamp = manifest.stat().st_mtime_ns
    except OSError:
        return {}
    return _read_manifest_column(manifest, stamp, column)


@functools.lru_cache(maxsize=64)
def _read_manifest_column(manifest: Path, stamp: int, column: str) -> dict[str, str]:
    """One column of a manifest by file name; cached while the file is unchanged (``stamp``)."""
    try:
        with open(manifest, newline="", encoding="utf-8") as stream:
            return {row["file"]: row[column] for row in csv.DictReader(stream)}
    except (OSError, KeyError, UnicodeDecodeError, csv.Error):
        return {}


__all__ = ["photo_group", "photo_source"]
