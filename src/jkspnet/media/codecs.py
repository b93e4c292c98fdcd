"""Which files are films, what their outputs are called, and the encoders: no torch, and PyAV
only when an encoder is checked.

Kept apart from :mod:`jkspnet.media.video` so that planning a batch (the command line, a Ray driver)
names films' outputs without importing the stabiliser's torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import JKSPNetError, PhotoError, require_extra

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm"})
"""Suffixes taken as films, both in folders and when named directly."""

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18
"""H.264 at constant quality 18: visually close to lossless, about the size of a good DVD rip."""

CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}
_WEBM_CODECS = frozenset({"libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1", "librav1e"})


def is_video(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_suffix(source: Path, codec: str = DEFAULT_CODEC) -> str:
    """The output's suffix: the input's own, unless that container cannot hold ``codec``.

    WebM holds only VP8, VP9 and AV1, so a WebM input encoded with H.264 becomes Matroska
    (``.mkv``), which also takes the WebM's audio unchanged.
    """
    suffix = source.suffix
    if suffix.lower() == ".webm" and codec not in _WEBM_CODECS:
        return ".mkv"
    return suffix


class VideoError(PhotoError):
    """A film that cannot be read or written; the message names the file and the reason."""


def import_av():
    """PyAV, or a one-line error that names the extra to install."""
    return require_extra("video", "colorizing video needs PyAV: install the [video] extra", "av")


def check_encoder(codec: str):
    """PyAV's encoder named ``codec``, or a one-line error (PyAV missing, no such encoder)."""
    av = import_av()
    try:
        encoder = av.Codec(codec, "w")
    except (av.FFmpegError, ValueError):
        raise JKSPNetError(f"unknown video encoder {codec!r} (try libx264)") from None
    if encoder.type != "video":
        raise JKSPNetError(f"{codec} is not a video encoder")
    return encoder


def pixel_format(codec, width: int, height: int) -> str:
    """4:2:0 where the codec takes it and the size is even (every player's format), else 4:4:4."""
    formats = [f.name for f in (codec.video_formats or ())]
    even = width % 2 == 0 and height % 2 == 0
    for name in ("yuv420p", "yuv444p") if even else ("yuv444p",):
        if not formats or name in formats:
            return name
    if formats:
        return formats[0]
    raise JKSPNetError(f"codec {codec.name} cannot encode a {width}x{height} picture")
