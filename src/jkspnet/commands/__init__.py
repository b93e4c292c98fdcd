"""The ``jkspnet`` command line: one module per command, each of which parses its flags and calls
the library; :mod:`.options` holds what they share. Only this package imports argparse, and no
module outside it imports from it.

A command is one module, ``commands/<name>.py`` for ``jkspnet <name>``, named once in
:data:`COMMANDS`. It has ``HELP`` (its line in ``jkspnet --help``), ``DESCRIPTION`` (the top of
its own ``--help``), ``add_arguments(parser)``, which adds its flags, and ``run(args) -> int``,
the exit status; :func:`build_parser` makes its sub-parser from these. :func:`main` turns a
:class:`~jkspnet.errors.JKSPNetError` into one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import NoReturn

from .. import __version__
from ..errors import Interrupted, JKSPNetError
from .options import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

COMMANDS = tuple(
    importlib.import_module(f"{__name__}.{name}")
    for name in ("colorize", "summary", "eval", "train", "serve", "export")
)
"""The command modules, in the order ``jkspnet --help`` lists them: a new command is a module
here and its name in this list."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jkspnet",
        description="JKSPNet: automatic photo colorization with a small U-Net over LAB.",
    )
    parser.add_argument("--version", action="version", version=f"jkspnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        name = command.__name__.rpartition(".")[2]
        sub = commands.add_parser(name, help=command.HELP, description=command.DESCRIPTION)
        command.add_arguments(sub)
        sub.set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # A damaged file makes PIL warn (corrupt EXIF...) with its own source lines; the photo's
    # one-line error or its result says what matters.
    warnings.filterwarnings("ignore", module=r"PIL\.")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with signals_as_interrupts():
            return args.func(args)
    except JKSPNetError as error:
        # One write, not print's two: every rank of a torchrun job shares this stream, and
        # torchrun runs them unbuffered, so two writes could interleave with another rank's.
        sys.stderr.write(f"error: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt as interruption:  # Ctrl-C, SIGTERM, SIGHUP
        return _interrupted(interruption)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as error:  # the machine, not a bug: e.g. a folder on the way cannot be entered
        where = f"{error.filename}: " if error.filename else ""
        sys.stderr.write(f"error: {where}{error.strerror or error}\n")
        return EXIT_FAILED
    except Exception as error:
        interruption = _interruption_behind(error)
        if interruption is None:
            raise
        return _interrupted(interruption)


def _interrupted(interruption: KeyboardInterrupt) -> int:
    signum = getattr(interruption, "signum", signal.SIGINT)
    sys.stderr.write(f"interrupted ({signal.Signals(signum).name})\n")
    return EXIT_INTERRUPTED if signum == signal.SIGINT else 128 + signum


def _interruption_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or signal that ``error`` wraps, if any. A signal's exception is raised
    wherever the main thread is, and some places wrap what they catch: Python 3.11 turns one
    raised while a lazily imported module defines a dataclass into ``RuntimeError: Error
    calling __set_name__`` (a SIGTERM there used to end in that traceback, exit 1)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


_INTERRUPTED_STATUSES = frozenset({EXIT_INTERRUPTED, 128 + signal.SIGTERM, 128 + signal.SIGHUP})

QUICK_EXIT_COMMANDS = frozenset({"colorize"})
"""Commands after which the ``jkspnet`` program ends without the interpreter's teardown."""


def run_program(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``jkspnet`` program (and ``python -m jkspnet``): :func:`main`, then the process ends.

    After a command of :data:`QUICK_EXIT_COMMANDS` run without Ray it ends at once, once the
    exit handlers have run (``atexit``: tempfile's clean-up...) and the standard streams are
    flushed. The interpreter's teardown only frees memory that the system takes back anyway,
    and with torch loaded it costs about half a second of CPU (``python -c "import torch"``
    against the same ending in ``os._exit``). The command closes every file it writes before
    it returns. A ``--ray`` run, whose client has threads and sockets of its own, exits as
    usual, unless it was interrupted: a Ray driver stopped while Ray starts or runs could crash
    in that teardown after its summary (status -11, or -6 through Ray's crash handler), about
    one SIGTERM in five in ``benchmarks/bench_faults.py``'s reproduction.
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    status = main(arguments)
    quick = "ray" not in sys.modules or status in _INTERRUPTED_STATUSES
    if arguments[:1] and arguments[0] in QUICK_EXIT_COMMANDS and quick:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed or broken stream: nothing to flush
                stream.flush()
        os._exit(status)
    sys.exit(status)


INTERRUPTING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals a command takes as it takes Ctrl-C (SIGINT): ``kill``, a closed terminal, a job
scheduler's stop."""


def _interrupt(signum: int, frame) -> None:
    raise Interrupted(signum)


def _exit_at_once(signum: int, frame) -> None:
    """Once the command has returned (the interpreter exiting, Ray's exit handlers): end at once,
    as the default action would, but with the status the command gives a signal, 128 + N."""
    os._exit(128 + signum)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise :class:`~jkspnet.errors.Interrupted`
    (a KeyboardInterrupt) as Ctrl-C does, so writes in progress end or remove their
    temporaries, and a summary is printed. The handlers before are put back after (the default
    action as :func:`_exit_at_once`, so that a signal while the process exits also gives 143).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a command run from a thread)
        return
    previous = {signum: signal.signal(signum, _interrupt) for signum in INTERRUPTING_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, _exit_at_once if handler == signal.SIG_DFL else handler)


__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "INTERRUPTING_SIGNALS",
    "QUICK_EXIT_COMMANDS",
    "build_parser",
    "main",
    "run_program",
    "signals_as_interrupts",
]
