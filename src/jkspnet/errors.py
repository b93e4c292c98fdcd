"""Errors that stand for a user's mistake: the CLI prints them as one line, never a traceback."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TypeVar

_Choice = TypeVar("_Choice")


def shown(path: str | os.PathLike[str]) -> str:
    """A file name as one-line messages show it: as it is where it is printable, else quoted
    with escapes (a newline as ``\\n``, a byte that is not UTF-8 as ``\\xe9``), so that a name
    never splits a line and every name can be printed whatever the terminal's encoding."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.isprintable():
        return text
    escaped = []
    for char in text:
        if "\udc80" <= char <= "\udcff":  # a byte that is not UTF-8 (surrogateescape)
            escaped.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char in '"\\':
            escaped.append("\\" + char)
        elif char.isprintable():
            escaped.append(char)
        else:
            escaped.append(repr(char)[1:-1] if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return '"' + "".join(escaped) + '"'


class JKSPNetError(Exception):
    """Base of every error caused by input the user gave (a photo, weights, an option)."""


def check_choice(what: str, value: _Choice, choices: Sequence[_Choice]) -> _Choice:
    """``value`` if it is one of ``choices``, else a :class:`JKSPNetError` naming ``what`` and
    the choices: one wording for every option with a fixed set of values (a backend, a
    precision, a shape...), whether it comes from a flag, a form field, a TOML file or a call."""
    if value not in choices:
        raise JKSPNetError(f"{what} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


class PhotoError(JKSPNetError):
    """A photo that cannot be read or written; the message names the file and the reason."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(reason if path is None else f"{shown(path)}: {reason}")


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


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C raises KeyboardInterrupt, so that every
    ``except KeyboardInterrupt`` and ``finally`` handles them alike: temporaries are removed, a
    summary is printed, and the command exits 128 + the signal's number (143, 129)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)
