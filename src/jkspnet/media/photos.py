"""Reading photos of any mode into a form the colour pipeline takes, and writing results safely.

Reading never changes the input file. Writing goes to a temporary file beside the target, is
flushed to disk and then renamed into place, so an interrupted run never leaves half a photo, and
an existing file is never replaced unless asked.
"""

from __future__ import annotations

import errno
import math
import numbers
import os
import stat
import struct
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import PhotoError, PhotoTooLargeError
from .files import not_regular, write_atomic

DEFAULT_MAX_PIXELS = 150_000_000
"""Photos declaring more pixels than this are refused before decoding (decompression bombs)."""

PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}
)
"""Suffixes picked up when a folder is given; a file named directly may have any suffix."""

OUTPUT_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
"""Formats the CLI's ``--format`` offers, by suffix."""

WRITABLE_SUFFIXES = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_NO_ALPHA_FORMATS = {"JPEG", "BMP"}
_KEPT_METADATA = {  # Photo.metadata keys each output format can hold
    "JPEG": ("exif", "dpi"),
    "PNG": ("exif", "dpi"),
    "WEBP": ("exif",),
    "TIFF": ("exif", "dpi"),
    "BMP": ("dpi",),
}
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"quality": 95},
    "PNG": {"compress_level": 6},
}
_SYSTEM_REASONS = {
    errno.ENOENT: "no such file",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "symbolic link loop",
    errno.ENAMETOOLONG: "path too long for the system",
}
"""Reasons for the operating system's errors while opening a photo; others give its strerror."""
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
_CONVERT_TO_RGB = {"CMYK", "YCbCr", "LAB", "HSV", "RGBX"}


@dataclass
class Photo:
    """A decoded photo: its tones, optional alpha, and where it came from.

    ``pixels`` is uint8 (H, W, 3) for colour, uint8 (H, W) for 8-bit grey, or float32 (H, W) in
    [0, 1] for 16-bit grey. ``alpha`` is uint8 (H, W) or None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    source: str | None = None
    note: str | None = None
    metadata: dict[str, object] = field(default_factory=dict)
    """What the colour copy keeps: ``exif`` (bytes; its orientation already applied to the
    pixels) and ``dpi``, where the photo had them."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL counts it."""
        return self.pixels.shape[1], self.pixels.shape[0]


# TIFF layout tags (sizes, strips, compression, sample format...) that a TIFF writer would take
# from the EXIF over its own, corrupting the file, and the orientation, applied to the pixels.
_NOT_KEPT_TAGS = {
    *range(254, 260), 262, 266, 273, 274, *range(277, 280), 284, 317,
    *range(322, 326), 330, 338, 339, *range(530, 533),
}  # fmt: skip


def _metadata(image: Image.Image) -> dict[str, object]:
    """EXIF (capture date, camera, captions, location...) and resolution, which a scan's owner
    wants kept on its colour copy; EXIF that cannot be read back is left out rather than
    failing the photo. Read before the orientation is applied: TIFF photos lose it after."""
    kept: dict[str, object] = {}
    try:
        exif = Image.Exif()  # a copy: the photo's own EXIF must keep its orientation
        exif.load(image.getexif().tobytes())
        for tag in _NOT_KEPT_TAGS & set(exif):
            del exif[tag]
        if exif:
            kept["exif"] = exif.tobytes()
    except Exception:  # damaged EXIF: the pixels are what matter
        pass
    dpi = image.info.get("dpi")
    if (
        isinstance(dpi, tuple)
        and len(dpi) == 2
        and all(isinstance(v, numbers.Real) and math.isfinite(v) and 0 < v < 1e6 for v in dpi)
    ):
        kept["dpi"] = (float(dpi[0]), float(dpi[1]))
    return kept


def _decode(image: Image.Image, source: str | None) -> Photo:
    note = None
    if getattr(image, "n_frames", 1) > 1:
        note = f"has {image.n_frames} frames; colorized the first"
        image.seek(0)
    metadata = _metadata(image)
    photo = _pixels_of(ImageOps.exif_transpose(image), source, note)
    photo.metadata = metadata
    return photo


def _pixels_of(image: Image.Image, source: str | None, note: str | None) -> Photo:
    mode = image.mode
    if mode in _16BIT_MODES:
        values = np.asarray(image).astype(np.float32)
        peak = 255.0 if mode == "I" and values.max(initial=0) <= 255 else 65535.0
        return Photo(np.clip(values / peak, 0.0, 1.0), None, source, note)
    if mode in {"1", "L"}:
        return Photo(np.asarray(image.convert("L")), None, source, note)
    if mode in {"LA", "La"}:
        grey, alpha = image.convert("LA").split()
        return Photo(np.asarray(grey), np.asarray(alpha), source, note)
    if mode in {"P", "PA"}:
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    if mode in {"RGBA", "RGBa"}:
        image = image.convert("RGBA")
        return Photo(np.asarray(image)[..., :3], np.asarray(image)[..., 3], source, note)
    if mode in _CONVERT_TO_RGB:
        image = image.convert("RGB")
        mode = "RGB"
    if mode == "RGB":
        return Photo(np.asarray(image), None, source, note)
    raise PhotoError(source, f"unsupported image mode {mode}")


_PIL_LIMIT_LOCK = threading.Lock()


def _open_without_pil_limit(path: Path | BinaryIO) -> Image.Image:
    """Open (read the header of) a photo with PIL's own pixel limit lifted: we apply ours.

    PIL's limit is a module global, so it is swapped under a lock (photos open in threads).
    """
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = previous_limit


def photo_pixels(path: str | os.PathLike[str]) -> int:
    """A photo's pixel count from its header, without decoding it; 0 if it cannot be read
    (loading it will then say why). Only regular files are opened: a named pipe would block."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return 0
        with _open_without_pil_limit(Path(path)) as image:
            width, height = image.size
    except Exception:  # any failure is load_photo's to report
        return 0
    return width * height


def spooled_pixels(stream: BinaryIO) -> int:
    """The pixel count an open photo file's header declares, without decoding; 0 if it has
    none that PIL reads. Leaves ``stream`` at its start."""
    try:
        stream.seek(0)
        with _open_without_pil_limit(stream) as image:  # type: ignore[arg-type]
            width, height = image.size
    except Exception:  # any failure is load_photo's to report
        return 0
    finally:
        stream.seek(0)
    return width * height


def load_photo(
    source: str | os.PathLike[str] | Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Photo:
    """Decode a photo from a path or a PIL image, with its EXIF orientation applied.

    Raises :class:`PhotoError` for anything that is not a usable photo, naming the reason.
    """
    if isinstance(source, Image.Image):
        return _decode(source, None)
    path = Path(source)
    name = str(path)
    try:
        info = path.stat()  # before any open: opening a named pipe blocks
        if stat.S_ISDIR(info.st_mode):
            raise PhotoError(name, "is a folder, not a photo")
        special = not_regular(info.st_mode)
        if special is not None:
            raise PhotoError(name, f"not a regular file ({special})")
        if info.st_size == 0:
            raise PhotoError(name, "empty file (0 bytes)")
        with _open_without_pil_limit(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise PhotoTooLargeError(
                    name,
                    f"{width}x{height} is {width * height:,} pixels, over the limit of "
                    f"{max_pixels:,}",
                )
            image.load()
            return _decode(image, name)
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError(name, "not an image, or a format this program cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise PhotoError(name, _failure_reason(error)) from None
    except Exception as error:  # a hostile file can break a decoder in any way: still bad input
        raise PhotoError(name, f"cannot decode ({type(error).__name__}: {error})") from None


def _failure_reason(error: Exception) -> str:
    """The system's reason (no such file, a link loop...) or, from a decoder, a corrupt image.

    Decoders raise OSError without an errno for bad data; the system always sets one.
    """
    if isinstance(error, OSError) and error.errno is not None:
        return _SYSTEM_REASONS.get(error.errno, f"cannot read ({error.strerror})")
    return f"truncated or corrupt image ({str(error) or type(error).__name__})"


def output_format(path: Path, requested: str | None = None) -> tuple[str, str]:
    """(PIL format, suffix) for an output: ``requested`` if given, else the input's own format.

    Formats that cannot hold a colour photo well (GIF, unknown) fall back to PNG.
    """
    if requested is not None:
        key = requested.lower().lstrip(".")
        if key not in OUTPUT_FORMATS:
            choices = ", ".join(sorted(OUTPUT_FORMATS))
            raise ValueError(f"unknown output format {requested!r} (choose from {choices})")
        return OUTPUT_FORMATS[key], "." + key
    suffix = path.suffix
    fmt = WRITABLE_SUFFIXES.get(suffix.lower())
    return (fmt, suffix) if fmt else ("PNG", ".png")


def save_photo(image: Image.Image, path: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Write ``image`` atomically, in the format its suffix names (PNG for an unknown one).

    Without ``overwrite`` an existing file is left alone and :class:`FileExistsError` is raised.
    """
    path = Path(path)
    fmt = WRITABLE_SUFFIXES.get(path.suffix.lower(), "PNG")
    if fmt in _NO_ALPHA_FORMATS and image.mode == "RGBA":
        image = image.convert("RGB")
    options = dict(_SAVE_OPTIONS.get(fmt, {}))
    kept = {key: image.info[key] for key in _KEPT_METADATA.get(fmt, ()) if key in image.info}

    def write(stream: BinaryIO) -> None:
        try:
            image.save(stream, format=fmt, **options, **kept)
        except (ValueError, TypeError, KeyError, struct.error):
            if not kept:
                raise
            stream.seek(0)  # metadata this format cannot take: the photo without it
            stream.truncate()
            image.save(stream, format=fmt, **options)

    write_atomic(path, write, overwrite)


def walk_photos(
    folder: Path,
    recursive: bool,
    suffixes: frozenset[str] = PHOTO_SUFFIXES,
    problems: list[PhotoError] | None = None,
) -> Iterator[Path]:
    """Photo files in a folder, sorted, hidden ones skipped, depth first as ``os.walk`` goes.

    Without recursion (Python 3.11's ``os.walk`` recurses, and 1,500 nested folders end in a
    RecursionError), and into no linked folder, so never round a loop. A folder that cannot be
    listed, or an entry that cannot be examined, is appended to ``problems`` (where given) as a
    :class:`PhotoError` naming it: never skipped in silence.
    """
    stack = [Path(folder)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            if problems is not None:
                reason = f"cannot list this folder ({_reason(error)})"
                problems.append(PhotoError(str(current), reason))
            continue
        below = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        below.append(Path(entry.path))
                    continue
                if entry.is_symlink() and entry.is_dir():
                    continue  # a linked folder: not followed
            except OSError as error:
                if error.errno != errno.ELOOP:  # a file link that loops: its load says so
                    if problems is not None:
                        reason = f"cannot examine ({_reason(error)})"
                        problems.append(PhotoError(entry.path, reason))
                    continue
            if Path(entry.name).suffix.lower() in suffixes:
                yield Path(entry.path)
        stack.extend(reversed(below))


def _reason(error: OSError) -> str:
    return _SYSTEM_REASONS.get(error.errno or 0, error.strerror or str(error))


@dataclass
class FoundPhotos:
    """Photos found for a set of inputs: each with the relative name its output should get."""

    photos: list[tuple[Path, Path]]
    problems: list[PhotoError]


def find_photos(
    inputs: Iterable[str],
    recursive: bool = False,
    suffixes: frozenset[str] = PHOTO_SUFFIXES,
    what: str = "photos",
) -> FoundPhotos:
    """Expand files, folders and glob patterns into photos (path, relative output name).

    In folders, files with one of ``suffixes`` are taken (``what`` names them in the message
    for a folder without any); files named directly are taken whatever their suffix.
    """
    import glob

    photos: list[tuple[Path, Path]] = []
    problems: list[PhotoError] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = Path(os.path.realpath(path))  # unlike Path.resolve, never raises on a link loop
        if key not in seen:
            seen.add(key)
            photos.append((path, relative))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            walk_problems: list[PhotoError] = []
            found = list(walk_photos(path, recursive, suffixes, walk_problems))
            problems.extend(walk_problems)
            if not found and not walk_problems:
                problems.append(PhotoError(item, f"no {what} found in this folder"))
            for photo in found:
                add(photo, photo.relative_to(path))
        elif path.exists() or path.is_symlink():  # a broken link or a loop: its load says so
            add(path, Path(path.name))
        elif glob.has_magic(item):
            matches = [Path(m) for m in sorted(glob.glob(item, recursive=recursive))]
            files = [m for m in matches if m.is_file()]
            if not files:
                problems.append(PhotoError(item, "no files match this pattern"))
            for match in files:
                add(match, Path(match.name))
        else:
            problems.append(PhotoError(item, "no such file or folder"))
    return FoundPhotos(photos, problems)
