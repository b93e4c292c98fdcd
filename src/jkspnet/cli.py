"""The ``jkspnet`` command's old home, kept so that ``jkspnet.cli:main`` and ``from jkspnet.cli
import main`` go on working; the command line lives in :mod:`jkspnet.commands`. The installed
``jkspnet`` program is :func:`run_program` (main, then the process's end)."""

from .commands import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    main,
    run_program,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "run_program",
]

if __name__ == "__main__":
    run_program()
