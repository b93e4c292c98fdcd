"""Which files are films, and what their outputs are called: no torch, no PyAV.

Kept apart from :mod:`jkspnet.video` so that planning a batch (the command line, a Ray driver)
names films' outputs without importing the stabiliser's torch.
"""

from __future__ import annotations

import os
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm"})
"""Suffixes taken as films, both in folders and when named directly."""

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18
"""H.264 at constant quality 18: visually close to lossless, about the size of a good DVD rip."""

VIDEO_HINT = "install the [video] extra: pip install 'jkspnet[video]'"

_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}
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
