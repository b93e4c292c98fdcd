"""Errors that stand for a user's mistake: the CLI prints them as one line, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType


class JKSPNetError(Exception):
    """Base of every error caused by input the user gave (a photo, weights, an option)."""


class PhotoError(JKSPNetError):
    """A photo that cannot be read or written; the message names the file and the reason."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(reason if path is None else f"{path}: {reason}")


class PhotoTooLargeError(PhotoError):
    """A photo whose header declares more pixels than allowed; refused before decoding."""


class WeightsError(JKSPNetError):
    """Weights that are missing, unreadable or do not fit the network."""


class TrainingError(JKSPNetError):
    """A run that cannot go on (diverged, nothing to train on, nothing to resume)."""


class MissingExtraError(JKSPNetError):
    """Something needs an optional part of the package (an extra) that is not installed; the
    message says what, and the line that installs it."""

    def __init__(self, extra: str, what: str) -> None:
        self.extra = extra
        super().__init__(f"{what}: pip install 'jkspnet[{extra}]'")


def require_extra(extra: str, what: str, *modules: str) -> ModuleType:
    """Import ``modules`` (the extra's) and give back the first, or raise
    :class:`MissingExtraError` for ``extra``, with ``what`` saying what needs it."""
    try:
        for name in modules:
            __import__(name)  # as an import statement does (and as tests replace it)
    except ImportError:
        raise MissingExtraError(extra, what) from None
    return sys.modules[modules[0]]
