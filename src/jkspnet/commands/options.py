"""What the commands share: argument types, the model options, the colorizer they ask for, and
the exit codes."""

from __future__ import annotations

import argparse

from ..media.photos import DEFAULT_MAX_PIXELS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _whole_number(text: str, least: int, most: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least or (most is not None and value > most):
        bounds = f"from {least} to {most}" if most is not None else f"at least {least}"
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _count(text: str) -> int:
    """A whole number, 0 or more (0 turns the thing off)."""
    return _whole_number(text, 0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _crf(text: str) -> int:
    return _whole_number(text, 0, most=63)


def _size(text: str) -> int:
    value = _positive_int(text)
    if value % 8:
        raise argparse.ArgumentTypeError(f"must be a multiple of 8, got {value}")
    return value


def colorizer_from_options(args: argparse.Namespace):
    """The Colorizer that :func:`add_model_options`' flags (and ``--backend``, if any) ask for."""
    from ..pipeline.backends import configured_colorizer

    return configured_colorizer(
        getattr(args, "backend", "torch"),
        args.weights,
        device=args.device,
        max_pixels=args.max_pixels,
        size=args.size,
        precision=args.precision,
        upsample=args.upsample,
        shape=args.shape,
        confidence=args.confidence,
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that colorizes: which weights, where, how big."""
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="weights: a folder from save_pretrained or a training run, or a .safetensors/.pt "
        "file (default: the weights bundled with the package, where they ship)",
    )
    parser.add_argument(
        "--size", type=_size, help="network input side, a multiple of 8 (default: weights')"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="the network's arithmetic; auto: bf16 on GPUs and on CPUs with native bf16 "
        "(AVX512-BF16, AMX), where it is about twice as fast, else fp32",
    )
    parser.add_argument(
        "--upsample",
        choices=["guided", "bilinear"],
        default="guided",
        help="how colour reaches full resolution: guided (edge-aware: colour edges follow the "
        "photo's own edges) or bilinear (default: guided)",
    )
    parser.add_argument(
        "--shape",
        choices=["square", "aspect"],
        help="the network's input: the photo squashed to a square, or at its own aspect ratio "
        "(default: weights')",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        metavar="GAMMA",
        help="confidence-aware decoding: shrink the colour of pixels where the network is unsure "
        "toward grey, with this strength (0 = off; default: weights')",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=16,
        help="photos per network pass (16; fewer for large photos)",
    )
    parser.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse photos larger than this many pixels (default {DEFAULT_MAX_PIXELS:,})",
    )
