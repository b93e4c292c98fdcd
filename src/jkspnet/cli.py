"""The ``jkspnet`` command line: colorize photos and films, print the network summary."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import JKSPNetError, PhotoError
from .files import unwritable_reason
from .photos import (
    _WRITABLE_SUFFIXES,
    DEFAULT_MAX_PIXELS,
    OUTPUT_FORMATS,
    PHOTO_SUFFIXES,
    Photo,
    find_photos,
    load_photo,
    output_format,
    photo_pixels,
    save_photo,
)

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


def _add_colorize(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "colorize",
        help="colorize photos and films",
        description="Colorize black-and-white (or colour) photos and films at their full "
        "resolution. Films (.mp4 .mkv .mov .avi .webm, with the [video] extra) keep their frame "
        "rate, frame count, duration and audio. Inputs are never modified; outputs are written "
        "atomically and existing files are skipped unless --overwrite is given.",
    )
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
    parser.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="torch (default), or onnxruntime with --weights FILE.onnx made by 'jkspnet export' "
        "(CPU; --size and --temperature still apply)",
    )
    parser.add_argument(
        "--temperature",
        type=_positive_float,
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
        "--codec", default="libx264", help="video encoder (default libx264, i.e. H.264)"
    )
    films.add_argument(
        "--crf",
        type=_crf,
        default=18,
        help="constant quality for encoders that take it, lower is better (default 18)",
    )
    _add_guided_options(parser)
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_colorize)


# Guided colour (issue 15): the options only; the logic is in guidance.py and pipeline.py.
def _add_guided_options(parser: argparse.ArgumentParser) -> None:
    from .guidance import SIDECAR_SUFFIX

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
        type=_strength,
        default=1.0,
        metavar="S",
        help="how strongly the reference's palette weighs (default 1; 0: not at all)",
    )
    guided.add_argument(
        "--uncertainty-map",
        metavar="OUT.png",
        help="also write where the network is unsure (bright: a guess) for the one input photo",
    )


def _strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


@dataclass
class _Guidance:
    """What a colorize run's photos are guided by (see :mod:`jkspnet.guidance`)."""

    hints: object  # a guidance.HintSource
    reference: Photo | None = None
    strength: float = 1.0
    histogram: object = None  # the reference's palette, once the colorizer is loaded
    uncertainty_map: Path | None = None


def _guidance(args: argparse.Namespace, jobs: list[_Job], skipped: int) -> _Guidance:
    """The guided-colour options, checked before any work: one line and exit 2 if wrong.
    ``skipped``: inputs whose outputs exist (they count as photos given all the same)."""
    from .guidance import HintSource, parse_hint_argument, read_hints_file

    given = None
    if args.hints is not None or args.hint:
        given = read_hints_file(args.hints) if args.hints is not None else []
        given += [parse_hint_argument(text) for text in args.hint or []]
    source = HintSource(given, sidecars=not args.no_hints)
    if given is not None and any(job.film for job in jobs):
        raise JKSPNetError("--hints/--hint apply to photos, not films")
    source.check([job.source for job in jobs] + [None] * skipped)  # several photos: refused
    uncertainty = None if args.uncertainty_map is None else Path(args.uncertainty_map)
    if uncertainty is not None:
        if len(jobs) + skipped != 1 or (jobs and jobs[0].film):
            raise JKSPNetError("--uncertainty-map applies to one input photo")
        if uncertainty.suffix.lower() not in _WRITABLE_SUFFIXES:
            raise JKSPNetError(f"{uncertainty}: cannot write {uncertainty.suffix} files")
        if uncertainty.exists() and not args.overwrite:
            raise JKSPNetError(f"{uncertainty}: exists; use --overwrite to replace it")
    reference = None
    if args.reference is not None:
        reference = load_photo(args.reference, max_pixels=args.max_pixels)
    return _Guidance(source, reference, args.reference_strength, None, uncertainty)


def colorizer_from_options(args: argparse.Namespace):
    """The Colorizer that :func:`add_model_options`' flags (and ``--backend``, if any) ask for."""
    from .backends import load_colorizer
    from .pipeline import check_size, resolve_precision

    colorizer = load_colorizer(
        getattr(args, "backend", "torch"),
        args.weights,
        device=args.device,
        max_pixels=args.max_pixels,
    )
    if args.size is not None:
        colorizer.config.size = check_size(args.size)
    if args.precision != "auto" and args.precision != colorizer.precision:
        if colorizer.model is None:
            raise JKSPNetError(f"the {args.backend} backend runs in {colorizer.precision} only")
        colorizer.precision = resolve_precision(args.precision, colorizer.device)
    return colorizer


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


def _add_summary(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "summary",
        help="print the network's torchinfo summary",
        description="Print the torchinfo summary of JKSPNet (matches the seed's at batch 32).",
    )
    parser.add_argument("--batch", type=_positive_int, default=32, help="batch size (32)")
    parser.add_argument("--size", type=_size, default=128, help="input side (128)")
    parser.set_defaults(func=_summary)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jkspnet",
        description="JKSPNet: automatic photo colorization with a small U-Net over LAB.",
    )
    parser.add_argument("--version", action="version", version=f"jkspnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_colorize(commands)
    _add_summary(commands)
    from .evaluate import add_eval_parser

    add_eval_parser(commands)
    from .train import add_train_parser

    add_train_parser(commands)
    from .server import add_serve_parser

    add_serve_parser(commands)
    from .export import add_export_parser

    add_export_parser(commands)
    return parser


def _summary(args: argparse.Namespace) -> int:
    from .model import summary_text

    print(summary_text(batch=args.batch, size=args.size))
    return EXIT_OK


@dataclass
class _Job:
    source: Path
    target: Path
    film: bool = False


@dataclass
class _Tally:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    messages: list[str] = field(default_factory=list)


def _plan(args: argparse.Namespace, tally: _Tally, report) -> list[_Job]:
    """Map inputs to outputs; report inputs that cannot be used."""
    from .guidance import is_sidecar
    from .video import VIDEO_SUFFIXES, is_video, output_suffix

    found = find_photos(
        args.inputs,
        recursive=args.recursive,
        suffixes=PHOTO_SUFFIXES | VIDEO_SUFFIXES,
        what="photos or films",
    )
    for problem in found.problems:
        report(f"error: {problem}")
        tally.failed += 1
    found.photos = [item for item in found.photos if not is_sidecar(item[0])]  # hints, not photos
    out = Path(args.output)
    single = (
        len(args.inputs) == 1
        and len(found.photos) == 1
        and Path(args.inputs[0]).is_file()
        and not out.is_dir()
        and out.suffix != ""
    )
    if single:
        film = is_video(found.photos[0][0])
        suffixes = VIDEO_SUFFIXES if film else _WRITABLE_SUFFIXES
        if out.suffix.lower() not in suffixes:
            writable = ", ".join(sorted(suffixes))
            what = f"a film as {out.suffix}" if film else f"{out.suffix} files"
            raise JKSPNetError(f"{out}: cannot write {what} (use one of {writable})")
    if not single and out.exists() and not out.is_dir():
        raise JKSPNetError(f"{out}: exists and is not a folder (several outputs need a folder)")

    jobs: list[_Job] = []
    targets: dict[Path, Path] = {}
    for source, relative in found.photos:
        film = is_video(source)
        if single:
            target = out
        elif film:
            target = out / relative.with_suffix(output_suffix(source, args.codec))
        else:
            _, suffix = output_format(source, args.format)
            target = out / relative.with_suffix(suffix)
        key = Path(os.path.realpath(target))  # Path.resolve raises on a link loop
        if key in targets:
            report(f"error: {source}: its output {target} would clash with {targets[key]}'s")
            tally.failed += 1
            continue
        targets[key] = source
        if target.exists() and Path(os.path.realpath(source)) == key:
            report(f"error: {source}: output would replace the input itself; choose another -o")
            tally.failed += 1
            continue
        if target.exists() and not args.overwrite:
            tally.skipped += 1
            continue
        jobs.append(_Job(source, target, film))
    return jobs


def _writable_jobs(jobs: list[_Job], tally: _Tally, report) -> list[_Job]:
    """The jobs whose output folder can be written; the others fail, one line per folder,
    before any work is done for them."""
    by_folder: dict[Path, list[_Job]] = {}
    for job in jobs:
        by_folder.setdefault(job.target.parent, []).append(job)
    writable = []
    for folder, folder_jobs in by_folder.items():
        reason = unwritable_reason(folder)
        if reason is None:
            writable += folder_jobs
            continue
        count = len(folder_jobs)
        report(f"error: {folder}: cannot write there ({reason}): {count} output(s) not written")
        tally.failed += count
    return writable


def _colorize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    tally = _Tally()
    bar = None

    def report(message: str) -> None:
        (tqdm.write if bar is not None else print)(message, file=sys.stderr)

    planned = _plan(args, tally, report)
    guidance = _guidance(args, planned, tally.skipped)
    jobs = _writable_jobs(planned, tally, report)
    photos = [job for job in jobs if not job.film]
    films = [job for job in jobs if job.film]
    if films:
        from .video import check_encoder

        try:
            check_encoder(args.codec)  # before any work: PyAV is there, the encoder exists
        except JKSPNetError as error:
            if photos and "PyAV" in str(error):  # the photos beside the films still go on
                for job in films:
                    report(f"error: {job.source}: {error}")
                tally.failed += len(films)
                films = []
            else:
                raise
    if jobs:
        colorizer = colorizer_from_options(args)
        if guidance.reference is not None:
            guidance.histogram = colorizer.reference_histogram(guidance.reference)
    args.guidance = guidance
    if photos:
        show_bar = len(photos) > 1 and not args.quiet
        bar = tqdm(total=len(photos), unit="photo", disable=not show_bar, file=sys.stderr)
        with bar, ThreadPoolExecutor(max_workers=2) as pool:
            _run_jobs(colorizer, photos, args, pool, bar, tally, report)
    for job in films:
        _run_film(colorizer, job, args, tally, report)

    if tally.skipped:
        report(f"skipped {tally.skipped} existing output(s); use --overwrite to replace them")
    total = tally.done + tally.failed
    if total == 1 and tally.done == 1:
        print(f"wrote {jobs[0].target}")
    elif total or tally.skipped:
        print(f"colorized {tally.done}, failed {tally.failed}, skipped {tally.skipped}")
    return EXIT_FAILED if tally.failed else EXIT_OK


def _run_film(colorizer, job: _Job, args: argparse.Namespace, tally: _Tally, report) -> None:
    """Colorize one film with a progress bar of frames (frames per second, time left)."""
    from tqdm import tqdm

    from .video import VideoError, colorize_video, probe

    try:
        total = probe(job.source).estimated_frames
        with tqdm(
            total=total,
            unit="frame",
            desc=job.source.name,
            disable=args.quiet,
            file=sys.stderr,
            dynamic_ncols=True,
        ) as bar:
            result = colorize_video(
                colorizer,
                job.source,
                job.target,
                stabilize=args.stabilize,
                codec=args.codec,
                crf=args.crf,
                batch_size=args.batch_size,
                temperature=args.temperature,
                overwrite=args.overwrite,
                progress=bar.update,
            )
        if result.damaged_packets:
            skipped = _count_of(result.damaged_packets, "damaged packet")
            report(
                f"note: {job.source}: skipped {skipped}; "
                f"wrote the {result.frames} frames that could be decoded"
            )
        elif result.short:
            report(
                f"note: {job.source}: only {result.frames} of about {result.expected} frames "
                "could be decoded; the film may be truncated"
            )
        tally.done += 1
    except FileExistsError:
        tally.skipped += 1
    except VideoError as error:
        report(f"error: {error}")
        tally.failed += 1
    except JKSPNetError as error:  # e.g. an audio stream the output container cannot hold
        report(f"error: {job.source}: {error}")
        tally.failed += 1
    except OSError as error:
        report(f"error: {job.target}: cannot write ({error.strerror or error})")
        tally.failed += 1


def _count_of(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _load(job: _Job, max_pixels: int) -> Photo | PhotoError:
    try:
        return load_photo(job.source, max_pixels=max_pixels)
    except PhotoError as error:
        return error


_BATCH_PIXELS = 1 << 25
"""Full-resolution pixels in one batch (about 32 M). With the next batch decoding and finished
photos waiting to be written, a folder of 20 colour 24 MP photos peaked at 1.3 GB this way and
at 4.2 GB in batches of 16. The network's input is small whatever the photo, so small batches
cost little."""


def _batches(jobs: list[_Job], size: int, pixels: int) -> Iterator[list[_Job]]:
    """Jobs in batches of at most ``size`` photos and ``pixels`` pixels (a bigger photo alone),
    from header sizes read as the batches are needed."""
    batch: list[_Job] = []
    total = 0
    for job in jobs:
        count = photo_pixels(job.source)
        if batch and (len(batch) == size or total + count > pixels):
            yield batch
            batch, total = [], 0
        batch.append(job)
        total += count
    if batch:
        yield batch


def _run_jobs(colorizer, jobs, args, pool, bar, tally: _Tally, report) -> None:
    """Decode the next batch and write finished photos in threads while the network runs."""

    def submit(batch: list[_Job] | None) -> list[Future]:
        return [pool.submit(_load, job, args.max_pixels) for job in batch or []]

    batches = _batches(jobs, args.batch_size, _BATCH_PIXELS)
    batch = next(batches, None)
    pending = submit(batch)
    writes: list[tuple[_Job, Future, int]] = []
    while batch is not None:
        loaded = [future.result() for future in pending]
        following = next(batches, None)
        pending = submit(following)
        prepared = []
        for job, photo in zip(batch, loaded, strict=True):
            if isinstance(photo, PhotoError):
                report(f"error: {photo}")
                tally.failed += 1
                bar.update()
                continue
            if photo.note:
                report(f"note: {job.source}: {photo.note}")
            prepared.append((job, colorizer.prepare(photo)))
        del loaded, photo  # the decoded pixels: prepare kept what finish needs
        if prepared:
            writes += _finish_batch(colorizer, prepared, args, pool)
        del prepared  # full-resolution L: held until the next batch is decoded otherwise
        _collect(writes, bar, tally, report, keep_pixels=_BATCH_PIXELS)
        batch = following
    _collect(writes, bar, tally, report, keep_pixels=0)


def _finish_batch(colorizer, prepared, args, pool) -> list[tuple[_Job, Future, int]]:
    """Run the network on a prepared batch and submit each finished photo's write."""
    import torch

    from .guidance import HintError

    inputs = torch.stack([item.network_input for _, item in prepared])
    ab = colorizer.predict_ab(inputs, args.temperature)
    guidance = getattr(args, "guidance", None)
    writes = []
    for (job, item), ab_one in zip(prepared, ab, strict=True):
        if not args.metadata:
            item.metadata = {}
        hints = [] if guidance is None else guidance.hints.hints_for(job.source)
        if hints or (guidance is not None and guidance.histogram is not None):
            try:
                image = colorizer.colorize_guided(
                    item, hints, guidance.histogram, guidance.strength, args.temperature
                )
            except HintError as error:
                if guidance.hints.given is not None:
                    raise  # the command line's hints: a usage error, exit 2, nothing written
                failed: Future = Future()  # a sidecar's: this photo fails, the others go on
                failed.set_exception(error)
                writes.append((job, failed, 0))
                continue
        else:
            image = colorizer.finish(item, ab_one)
        if guidance is not None and guidance.uncertainty_map is not None:  # one photo only
            save_photo(colorizer.uncertainty(item), guidance.uncertainty_map, args.overwrite)
        write = pool.submit(save_photo, image, job.target, args.overwrite)
        writes.append((job, write, image.width * image.height))
    return writes


def _collect(writes, bar, tally: _Tally, report, keep_pixels: int) -> None:
    """Count finished writes, waiting for the oldest while the photos still waiting to be
    written hold more than ``keep_pixels``; a failed write is one photo's error."""
    while writes and (writes[0][1].done() or sum(w[2] for w in writes) > keep_pixels):
        job, future, _ = writes.pop(0)
        try:
            future.result()
            tally.done += 1
        except FileExistsError:
            tally.skipped += 1
        except OSError as error:
            reason = error.strerror or str(error)
            report(f"error: {job.target}: cannot write ({reason})")
            tally.failed += 1
        except JKSPNetError as error:  # e.g. a sidecar's hint outside its photo
            report(f"error: {job.source}: {error}")
            tally.failed += 1
        bar.update()


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


if __name__ == "__main__":
    sys.exit(main())
