"""Hostile and awkward photo files, as bytes, for the CLI, API, server and fuzz tests.

``BAD`` holds files that must be refused with a one-line reason; ``AWKWARD`` holds files that
are odd but valid and must come out colorized. ``seed_photos`` and ``mutate`` feed the fuzzers
(``tests/media/test_photos.py`` through hypothesis, ``benchmarks/fuzz_photos.py`` for longer runs).
"""

from __future__ import annotations

import errno
import io
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height grey pixels; its data is one tiny chunk."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _float_tiff(_: Image.Image) -> bytes:
    """A TIFF of 32-bit float samples: PIL reads it, JKSPNet does not colorize mode F."""
    return encode(Image.fromarray(np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)), "TIFF")


def _sixteen_bit(_: Image.Image) -> bytes:
    ramp = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    return encode(Image.fromarray(ramp), "PNG")


def _exif_rotated(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise: width and height swap
    return encode(image, "JPEG", exif=exif)


def _animated_gif(image: Image.Image) -> bytes:
    frames = [image.convert("P"), image.rotate(90).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


@dataclass(frozen=True)
class Case:
    """One file: its name, how to make its bytes from a real photo, and what must happen."""

    name: str
    make: Callable[[Image.Image], bytes]
    reason: str = ""  # for a bad file: the words its error must contain
    status: int = 200  # the HTTP status the server answers
    size: Callable[[Image.Image], tuple[int, int]] | None = None  # an awkward file's output size
    mode: str = "RGB"  # an awkward file's output mode
    note: str = ""  # an awkward file's note on stderr


BAD = {
    "zero-byte": Case("zero.jpg", lambda _: b"", "empty file (0 bytes)", 400),
    "truncated JPEG": Case(
        "cut.jpg", lambda im: _half(encode(im, "JPEG")), "truncated or corrupt image", 400
    ),
    "truncated PNG": Case(
        "cut.png", lambda im: _half(encode(im, "PNG")), "truncated or corrupt image", 400
    ),
    "text named .jpg": Case("notes.jpg", lambda _: b"hello, I am text\n" * 20, "not an image", 400),
    "unsupported format (SVG)": Case(
        "drawing.png",
        lambda _: b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
        "not an image, or a format this program cannot read",
        400,
    ),
    "unsupported mode (float TIFF)": Case(
        "float.tif", _float_tiff, "unsupported image mode F", 400
    ),
    "decompression bomb": Case(
        "bomb.png",
        lambda _: bomb_png(40_000, 40_000),
        "40000x40000 is 1,600,000,000 pixels, over the limit",
        413,
    ),
}

AWKWARD = {
    "1x1": Case(
        "dot.png", lambda _: encode(Image.new("L", (1, 1), 90), "PNG"), size=lambda _: (1, 1)
    ),
    "1x10000": Case(
        "thread.png",
        lambda _: encode(Image.new("L", (1, 10_000), 90), "PNG"),
        size=lambda _: (1, 10_000),
    ),
    "16-bit grey": Case("deep.png", _sixteen_bit, size=lambda _: (64, 48)),
    "CMYK JPEG": Case(
        "cmyk.jpg", lambda im: encode(im.convert("CMYK"), "JPEG"), size=lambda im: im.size
    ),
    "palette with transparency": Case(
        "palette.png",
        lambda im: encode(im.convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0),
        size=lambda im: im.size,
        mode="RGBA",
    ),
    "EXIF-rotated JPEG": Case("rotated.jpg", _exif_rotated, size=lambda im: (im.height, im.width)),
    "animated GIF": Case(
        "anim.gif",
        _animated_gif,
        size=lambda im: im.size,
        note="has 2 frames; colorized the first",
    ),
}


# ------------------------------------------------------------------------------ permissions
def deny_reading(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` unreadable: chmod 000, and where that binds no one (root), refuse its open."""
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: the kernel's refusal is simulated
        real_open = Image.open

        def refusing_open(fp, *args, **kwargs):
            if Path(fp) == path:
                raise PermissionError(errno.EACCES, "Permission denied", str(fp))
            return real_open(fp, *args, **kwargs)

        monkeypatch.setattr(Image, "open", refusing_open)


def deny_writing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``folder`` read-only: chmod 555, and for root, refuse new files in it."""
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real_mkstemp = tempfile.mkstemp

        def refusing_mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == folder:
                raise PermissionError(errno.EACCES, "Permission denied", str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refusing_mkstemp)


# ----------------------------------------------------------------------------------- fuzzing
def seed_photos(image: Image.Image) -> dict[str, bytes]:
    """Valid files of every format JKSPNet reads, small so that a decode takes milliseconds."""
    small = image.resize((48, 40))
    return {
        "png": encode(small, "PNG"),
        "png-grey16": encode(
            Image.fromarray(np.asarray(small.convert("L"), np.uint16) * 257), "PNG"
        ),
        "png-rgba": encode(small.convert("RGBA"), "PNG"),
        "jpeg": encode(small, "JPEG", quality=80),
        "jpeg-progressive": encode(small, "JPEG", progressive=True),
        "gif": _animated_gif(small),
        "webp": encode(small, "WEBP"),
        "tiff": encode(small, "TIFF", compression="tiff_lzw"),
        "bmp": encode(small.convert("P"), "BMP"),
    }


EDITS = ("set", "insert", "delete", "cut", "declare-size")
"""Mutations: set a byte, insert one, delete one, cut the file short, or rewrite the size that a
PNG (IHDR, with a valid CRC) or a JPEG (SOF) header declares."""


def _declare_size(data: bytes, width: int, height: int) -> bytes:
    if data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
        header = struct.pack(">II", width, height) + data[24:29]
        return data[:8] + png_chunk(b"IHDR", header) + data[33:]
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):  # baseline, extended, progressive
        at = data.find(marker)
        if at >= 0 and at + 9 <= len(data):
            return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]
    return data


def mutate(data: bytes, edits: Sequence[tuple[str, int, int]]) -> bytes:
    """Apply edits (kind, position, value) in turn; positions wrap around the current length."""
    out = bytearray(data)
    for kind, position, value in edits:
        at = position % max(len(out), 1)
        if kind == "set" and out:
            out[at] = value & 0xFF
        elif kind == "insert":
            out.insert(at, value & 0xFF)
        elif kind == "delete" and out:
            del out[at]
        elif kind == "cut":
            del out[at:]
        elif kind == "declare-size":
            out = bytearray(_declare_size(bytes(out), position & 0xFFFF, value & 0xFFFF))
    return bytes(out)


def check_photo(photo, max_pixels: int) -> None:
    """A decoded photo is what the colour pipeline takes: sane types, shapes and values."""
    height, width = photo.pixels.shape[:2]
    assert 0 < width * height <= max_pixels
    assert photo.pixels.dtype in (np.uint8, np.float32)
    assert photo.pixels.ndim == 2 or photo.pixels.shape[2] == 3
    if photo.pixels.dtype == np.float32:
        assert np.isfinite(photo.pixels).all()
        assert 0 <= photo.pixels.min() <= photo.pixels.max() <= 1
    assert photo.alpha is None or photo.alpha.shape == (height, width)


def make_deep_tree(top: Path, depth: int, name: str = "d") -> int:
    """Make ``depth`` nested folders ``name`` under ``top`` through directory descriptors (so
    the path may pass PATH_MAX); return a descriptor of the deepest (the caller closes it)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        deeper = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    return fd


def remove_deep_tree(top: Path) -> None:
    """Remove a tree of any depth without recursion: ``shutil.rmtree`` (and so pytest's own
    clean-up of old temporary folders) recurses once a level and fails past about 1,000."""
    stack: list[tuple[int, int | None, str | None]] = [
        (os.open(top, os.O_RDONLY | os.O_DIRECTORY), None, None)
    ]
    while stack:
        fd, parent, name = stack[-1]
        below = None
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                below = entry.name
                break
            os.unlink(entry.name, dir_fd=fd)
        if below is not None:
            stack.append((os.open(below, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd, below))
            continue
        stack.pop()
        os.close(fd)
        if parent is not None:
            os.rmdir(name, dir_fd=parent)
    os.rmdir(top)
