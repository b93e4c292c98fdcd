"""``python -m jkspnet``: the same as the ``jkspnet`` command."""

from .commands import run_program

run_program()
