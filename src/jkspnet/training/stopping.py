"""Stopping a training run on a signal without losing a step: SIGTERM (``kill``, a job
scheduler), SIGHUP (a closed terminal) and Ctrl-C are noted, not raised, while the loop runs;
the loop ends the step in progress, writes a checkpoint of it, and then the signal is raised as
the command line expects it (exit 143, 129, 130)."""

from __future__ import annotations

import signal
import threading

from ..errors import Interrupted

STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class SignalStop:
    """While entered (in the main thread), the first of :data:`STOPPING_SIGNALS` is noted in
    :attr:`signalled`; a second one acts as before (the command line's handler: interrupt at
    once). On leaving, the handlers before are put back."""

    def __init__(self) -> None:
        self.signalled: int | None = None
        self._previous: dict[int, object] = {}

    def _note(self, signum: int, frame) -> None:
        self.signalled = signum
        self._restore()  # a second signal: as before

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.getsignal(signum) for signum in STOPPING_SIGNALS}
            for signum in STOPPING_SIGNALS:
                signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def reason(self) -> str:
        """``SIGTERM received`` (the stop reason a run records)."""
        return f"{signal.Signals(self.signalled).name} received"  # type: ignore[arg-type]

    def raise_if_signalled(self) -> None:
        """Raise the noted signal as the command line expects it, once the run has stopped."""
        if self.signalled == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signalled is not None:
            raise Interrupted(self.signalled)


__all__ = ["STOPPING_SIGNALS", "SignalStop"]
