"""``jkspnet summary``: the network's torchinfo summary."""

from __future__ import annotations

import argparse

from .options import EXIT_OK, positive_int, size_type

HELP = "print the network's torchinfo summary"
DESCRIPTION = "Print the torchinfo summary of JKSPNet (matches the seed's at batch 32)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=positive_int, default=32, help="batch size (32)")
    parser.add_argument("--size", type=size_type, default=128, help="input side (128)")


def run(args: argparse.Namespace) -> int:
    from ..nn.model import summary_text

    print(summary_text(batch=args.batch, size=args.size))
    return EXIT_OK
