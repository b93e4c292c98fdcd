"""Messages for people during long work: ``error: ...`` and ``note: ...`` lines, written above
the progress bar while there is one, so the bar is not torn."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class Reporter:
    """Says messages to ``report`` where one is given (a caller collecting them), else on
    standard error, through tqdm while :attr:`bar` is a progress bar."""

    def __init__(self, report: Callable[[str], None] | None = None) -> None:
        self.report = report
        self.bar: Any = None  # the progress bar, once there is one

    def say(self, message: str) -> None:
        if self.report is not None:
            self.report(message)
            return
        from tqdm import tqdm

        (tqdm.write if self.bar is not None else print)(message, file=sys.stderr)


__all__ = ["Reporter"]
