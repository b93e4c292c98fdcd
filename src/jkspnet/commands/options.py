"""What the commands share: argument types, the model options, the colorizer they ask for, and
the exit codes. The model options' values, defaults and checks are :class:`ColorizerSpec`'s, so a
bad value reads here as it does from the library and over HTTP."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from ..errors import JKSPNetError
from ..pipeline.spec import (
    BACKENDS,
    NEUTRAL_SHAPES,
    PRECISIONS,
    SHAPES,
    UPSAMPLERS,
    ColorizerSpec,
    check_confidence,
    check_neutral,
    check_reference_strength,
    check_saturation,
    check_size,
    check_temperature,
    read_number,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SPEC_DEFAULTS = ColorizerSpec()
T = TypeVar("T", int, float)


def whole_number(text: str, least: int, most: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least or (most is not None and value > most):
        bounds = f"from {least} to {most}" if most is not None else f"at least {least}"
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def count(text: str) -> int:
    """A whole number, 0 or more (0 turns the thing off)."""
    return whole_number(text, 0)


def crf(text: str) -> int:
    return whole_number(text, 0, most=63)


def checked(name: str, check: Callable[[T], T], whole: bool = False) -> Callable[[str], T]:
    """An argument type: the text read as a number and checked by the spec's ``check``, with
    the spec's words."""

    def parse(text: str) -> T:
        try:
            return check(read_number(text, name, whole))  # type: ignore[arg-type]
        except JKSPNetError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = name
    return parse


size_type = checked("size", check_size, whole=True)
temperature_type = checked("temperature", check_temperature)
confidence_type = checked("confidence", check_confidence)
saturation_type = checked("saturation", check_saturation)
neutral_type = checked("neutral", check_neutral)
reference_strength_type = checked("reference strength", check_reference_strength)


def spec_from_options(args: argparse.Namespace) -> ColorizerSpec:
    """The :class:`ColorizerSpec` that :func:`add_model_options`' flags (and ``--backend``, if
    any) ask for."""
    return ColorizerSpec(
        weights=args.weights,
        backend=getattr(args, "backend", SPEC_DEFAULTS.backend),
        device=args.device,
        max_pixels=args.max_pixels,
        size=args.size,
        precision=args.precision,
        upsample=args.upsample,
        shape=args.shape,
        confidence=args.confidence,
        saturation=args.saturation,
        neutral=args.neutral,
        neutral_shape=args.neutral_shape,
    )


def colorizer_from_options(args: argparse.Namespace):
    """The Colorizer that :func:`add_model_options`' flags (and ``--backend``, if any) ask for."""
    return spec_from_options(args).load()


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that colorizes: which weights, where, how big."""
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="weights: a folder from save_pretrained or a training run, or a .safetensors/.pt "
        "file (default: the weights bundled with the package, where they ship)",
    )
    parser.add_argument(
        "--size", type=size_type, help="network input side, a multiple of 8 (default: weights')"
    )
    parser.add_argument(
        "--device",
        default=SPEC_DEFAULTS.device,
        help=f"auto, cpu, cuda or mps (default: {SPEC_DEFAULTS.device})",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=SPEC_DEFAULTS.precision,
        help="the network's arithmetic; auto: bf16 on GPUs and on CPUs with native bf16 "
        "(AVX512-BF16, AMX), where it is about twice as fast, else fp32",
    )
    parser.add_argument(
        "--upsample",
        choices=UPSAMPLERS,
        default=SPEC_DEFAULTS.upsample,
        help="how colour reaches full resolution: guided (edge-aware: colour edges follow the "
        f"photo's own edges) or bilinear (default: {SPEC_DEFAULTS.upsample})",
    )
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        help="the network's input: the photo squashed to a square, or at its own aspect ratio "
        "(default: weights')",
    )
    parser.add_argument(
        "--confidence",
        type=confidence_type,
        metavar="GAMMA",
        help="confidence-aware decoding: shrink the colour of pixels where the network is unsure "
        "toward grey, with this strength (0 = off; default: weights')",
    )
    parser.add_argument(
        "--saturation",
        type=saturation_type,
        metavar="FACTOR",
        help="multiply every colour's chroma by this, before --neutral: more than 1 paints more "
        "vivid colour, less paler (1 = off; default: weights')",
    )
    parser.add_argument(
        "--neutral",
        type=neutral_type,
        metavar="CHROMA",
        help="turn pixels paler than this chroma (LAB units) grey, so a pale cast over white "
        "walls and grey stone goes (0 = off; default: weights')",
    )
    parser.add_argument(
        "--neutral-shape",
        choices=NEUTRAL_SHAPES,
        help="how --neutral shrinks the colours above it: soft takes CHROMA off every pixel, "
        "garrote takes CHROMA^2/chroma, next to nothing off vivid colours (default: weights')",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=16,
        help="photos per network pass (16; fewer for large photos)",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=SPEC_DEFAULTS.max_pixels,
        help=f"refuse photos larger than this many pixels (default {SPEC_DEFAULTS.max_pixels:,})",
    )


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=SPEC_DEFAULTS.backend,
        help="torch (default), or onnxruntime with --weights FILE.onnx made by 'jkspnet export' "
        "(CPU; --size and --temperature still apply)",
    )
