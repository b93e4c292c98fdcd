"""The ``jkspnet`` command line: one module per command, each of which parses its flags and calls
the library; :mod:`.options` holds what they share. Only this package imports argparse, and no
module outside it imports from it.

A command module has ``add_parser(commands)``, which registers its sub-parser with
``set_defaults(func=run)``, and ``run(args) -> int``, the exit status. :func:`main` turns a
:class:`~jkspnet.errors.JKSPNetError` into one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from ..errors import JKSPNetError
from . import colorize, eval, export, serve, summary, train
from .options import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

COMMANDS = (colorize, summary, eval, train, serve, export)
"""The command modules, in the order ``jkspnet --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jkspnet",
        description="JKSPNet: automatic photo colorization with a small U-Net over LAB.",
    )
    parser.add_argument("--version", action="version", version=f"jkspnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # A damaged file makes PIL warn (corrupt EXIF...) with its own source lines; the photo's
    # one-line error or its result says what matters.
    warnings.filterwarnings("ignore", module=r"PIL\.")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except JKSPNetError as error:
        # One write, not print's two: every rank of a torchrun job shares this stream, and
        # torchrun runs them unbuffered, so two writes could interleave with another rank's.
        sys.stderr.write(f"error: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as error:  # the machine, not a bug: e.g. a folder on the way cannot be entered
        where = f"{error.filename}: " if error.filename else ""
        sys.stderr.write(f"error: {where}{error.strerror or error}\n")
        return EXIT_FAILED


__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]
