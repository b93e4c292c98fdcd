"""``jkspnet colorize``: photos and films (files, folders, globs), through
:mod:`jkspnet.engines.batch`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..engines.batch import BatchOptions, BatchResult, FileOutcome, colorize_files
from ..engines.plan import plan_outputs
from ..errors import JKSPNetError, PhotoError, shown
from ..media.codecs import DEFAULT_CODEC, DEFAULT_CRF, is_video
from ..media.photos import OUTPUT_FORMATS, WRITABLE_SUFFIXES, load_photo

if TYPE_CHECKING:
    from ..media.hints import Guidance
from .options import (
    EXIT_FAILED,
    EXIT_OK,
    add_backend_option,
    add_model_options,
    colorizer_from_options,
    crf,
    positive_int,
    reference_strength_type,
    spec_from_options,
    temperature_type,
)

HELP = "colorize photos and films"
DESCRIPTION = (
    "Colorize black-and-white (or colour) photos and films at their full "
    "resolution. Films (.mp4 .mkv .mov .avi .webm, with the [video] extra) keep their frame "
    "rate, frame count, duration and audio. Inputs are never modified; outputs are written "
    "atomically and existing files are skipped unless --overwrite is given."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="photo or film files, folders or globs"
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file (for one input photo or film) or folder (created if missing)",
    )
    add_model_options(parser)
    add_backend_option(parser)
    parser.add_argument(
        "--temperature",
        type=temperature_type,
        help="colour temperature T: lower is more vivid, 1 is the plain mean (default: weights')",
    )
    parser.add_argument(
        "--format",
        choices=sorted(set(OUTPUT_FORMATS) - {"jpeg"}),
        help="photos' output format (default: the input's own; PNG for formats such as GIF)",
    )
    parser.add_argument(
        "--no-metadata",
        dest="metadata",
        action="store_false",
        help="write photos without their EXIF (dates, camera, GPS location...) and DPI "
        "(default: kept)",
    )
    films = parser.add_argument_group("films")
    films.add_argument(
        "--no-stabilize",
        dest="stabilize",
        action="store_false",
        help="colour each frame on its own (default: smooth colours over time, reset at cuts)",
    )
    films.add_argument(
        "--codec",
        default=DEFAULT_CODEC,
        help=f"video encoder (default {DEFAULT_CODEC}, i.e. H.264)",
    )
    films.add_argument(
        "--crf",
        type=crf,
        default=DEFAULT_CRF,
        help=f"constant quality for encoders that take it, lower is better (default {DEFAULT_CRF})",
    )
    _add_guided_options(parser)
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_cluster_options(parser)


# Guided colour (issue 15): the options only; the logic is in guidance.py and pipeline.py.
def _add_guided_options(parser: argparse.ArgumentParser) -> None:
    from ..media.hints import SIDECAR_SUFFIX

    guided = parser.add_argument_group("guided colour (photos)")
    guided.add_argument(
        "--hints",
        metavar="FILE",
        help='colour hints for the one input photo: a JSON list of {"x": 120, "y": 340, '
        '"color": "#8a3b2a"} (pixels of the photo as displayed; "radius" optional). Without '
        f"it, each photo's sidecar NAME{SIDECAR_SUFFIX} is used where there is one",
    )
    guided.add_argument(
        "--hint",
        action="append",
        metavar="X,Y,#RRGGBB",
        help="one colour hint for the one input photo (repeatable; added to --hints)",
    )
    guided.add_argument(
        "--no-hints", action="store_true", help=f"ignore {SIDECAR_SUFFIX} sidecar files"
    )
    guided.add_argument(
        "--reference",
        metavar="PHOTO",
        help="a colour photo of a similar scene whose palette the colours lean toward",
    )
    guided.add_argument(
        "--reference-strength",
        type=reference_strength_type,
        default=1.0,
        metavar="S",
        help="how strongly the reference's palette weighs (default 1; 0: not at all)",
    )
    guided.add_argument(
        "--uncertainty-map",
        metavar="OUT.png",
        help="also write where the network is unsure (bright: a guess) for the one input photo",
    )


def guidance_from_options(args: argparse.Namespace, pairs) -> Guidance | None:
    """The guided-colour options, checked before any work: a usage error (one line, exit 2)
    for hints given for several photos, bad hints, a missing reference, a bad map path.
    None where nothing but the sidecars (the engine's default) guides the photos."""
    from ..media.hints import Guidance, HintSource, parse_hint_argument, read_hints_file

    given = None
    if args.hints is not None or args.hint:
        given = read_hints_file(args.hints) if args.hints is not None else []
        given += [parse_hint_argument(text) for text in args.hint or []]
    films = [source for source, _ in pairs if is_video(source)]
    photos = [source for source, _ in pairs if not is_video(source)]
    if given is not None and films:
        raise JKSPNetError("--hints/--hint apply to photos, not films")
    source = HintSource(given, sidecars=not args.no_hints)
    source.check(photos)  # hints given for several photos: refused
    uncertainty = None if args.uncertainty_map is None else Path(args.uncertainty_map)
    if uncertainty is not None:
        if len(pairs) != 1 or films:
            raise JKSPNetError("--uncertainty-map applies to one input photo")
        if uncertainty.suffix.lower() not in WRITABLE_SUFFIXES:
            raise JKSPNetError(f"{uncertainty}: cannot write {uncertainty.suffix} files")
        if uncertainty.exists() and not args.overwrite:
            raise JKSPNetError(f"{uncertainty}: exists; use --overwrite to replace it")
    reference = None
    if args.reference is not None:
        reference = load_photo(args.reference, max_pixels=args.max_pixels)
    if given is None and not args.no_hints and reference is None and uncertainty is None:
        return None
    return Guidance(source, reference, args.reference_strength, uncertainty)


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("cluster (the [cluster] extra: Ray Data)")
    cluster.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="colorize on Ray: alone, a local Ray; 'auto' or ray://HOST:PORT joins a cluster. "
        "Resumable: OUT/.jkspnet-manifest.jsonl records each file; a rerun does what is left",
    )
    cluster.add_argument(
        "--workers",
        type=positive_int,
        help="with --ray: workers, each loading the network once (default: one per GPU, "
        "else one one-thread worker per CPU, as memory allows; more than the GPUs share them)",
    )


def _on_ray(args: argparse.Namespace, pairs, options: BatchOptions, on_outcome) -> BatchResult:
    from .. import cluster

    return cluster.colorize_files(
        pairs,
        ray_address=args.ray,
        options=options,
        model=spec_from_options(args),
        workers=args.workers,
        manifest=cluster.manifest_for(args.output, pairs),
        on_outcome=on_outcome,
    )


def batch_options(args: argparse.Namespace) -> BatchOptions:
    """The engine's options from the command's flags (--size is the colorizer's already)."""
    return BatchOptions(
        overwrite=args.overwrite,
        batch_size=args.batch_size,
        format=args.format,
        metadata=args.metadata,
        temperature=args.temperature,
        progress=not args.quiet,
        stabilize=args.stabilize,
        codec=args.codec,
        crf=args.crf,
    )


def run(args: argparse.Namespace) -> int:
    # torch's OpenMP threads otherwise spin for a while after each parallel region, waiting for
    # the next; between the network's calls the CPU then goes to them instead of decoding,
    # OpenCV and encoding. Passive, they sleep: a folder of 12 MP scans took 1.5x less CPU
    # (benchmarks/bench_codec.py --spin). Set before torch loads; the environment's own wins.
    if "torch" not in sys.modules and "GOMP_SPINCOUNT" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.workers is not None and args.ray is None:
        raise JKSPNetError("--workers is for --ray")
    problems: list[PhotoError] = []
    try:
        pairs = plan_outputs(
            args.inputs,
            args.output,
            recursive=args.recursive,
            format=args.format,
            codec=args.codec,
            problems=problems,
        )
    finally:  # the inputs that cannot be used are said also when the plan fails
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
    options = batch_options(args)
    options.guidance = guidance_from_options(args, pairs)
    outcomes: list[FileOutcome] = []
    try:
        if args.ray is not None:
            result = _on_ray(args, pairs, options, outcomes.append)
        else:
            result = colorize_files(
                pairs, lambda: colorizer_from_options(args), options, outcomes.append
            )
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP
        _stopped_summary(outcomes, len(pairs), len(problems))
        raise
    except JKSPNetError:  # what stops a run midway (a manifest that cannot be written...)
        if outcomes:
            _stopped_summary(outcomes, len(pairs), len(problems))
        raise

    failed = result.failed + len(problems)
    if result.skipped:
        print(
            f"skipped {result.skipped} existing output(s); use --overwrite to replace them",
            file=sys.stderr,
        )
    total = result.done + failed
    if total == 1 and result.done == 1:
        print(f"wrote {shown(next(o.output for o in result.outcomes if o.status == 'done'))}")
    elif total or result.skipped:
        print(f"colorized {result.done}, failed {failed}, skipped {result.skipped}")
    return EXIT_FAILED if failed else EXIT_OK


def _stopped_summary(outcomes: list[FileOutcome], planned: int, problems: int) -> None:
    """What a run stopped midway did, and that the same command does the rest: its outputs
    are whole (written atomically), and existing ones are skipped."""
    if not planned:
        return
    counts = {status: sum(o.status == status for o in outcomes) for status in _STATUSES}
    left = planned - len(outcomes)
    print(
        f"stopped: colorized {counts['done']}, failed {counts['failed'] + problems}, skipped "
        f"{counts['skipped']}, not done {left}; run the same command again to do the rest",
        file=sys.stderr,
    )


_STATUSES = ("done", "failed", "skipped")
