"""Errors that stand for a user's mistake: the CLI prints them as one line, never a traceback."""

from __future__ import annotations

from pathlib import Path


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
