"""``jkspnet eval``: score colorizations of a photo set
(:func:`jkspnet.engines.evaluate.evaluate`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import JKSPNetError
from ..media.files import remove_stale_temporaries, unwritable_reason
from ..media.photos import find_photos
from .options import (
    EXIT_FAILED,
    EXIT_OK,
    add_model_options,
    colorizer_from_options,
    count,
    positive_int,
    reference_strength_type,
    temperature_type,
)

T = TypeVar("T")


def _comma_list(parse: Callable[[str], T], what: str) -> Callable[[str], list[T]]:
    """An argparse type for ``A[,B...]``: each part through ``parse``, at least one."""

    def values(text: str) -> list[T]:
        parsed = [parse(part.strip()) for part in text.split(",") if part.strip()]
        if not parsed:
            raise argparse.ArgumentTypeError(f"no {what} given in {text!r}")
        return parsed

    return values


def _reference_kind(text: str) -> str:
    from ..engines.references import REFERENCE_KINDS  # torch-free

    if text not in REFERENCE_KINDS:
        raise argparse.ArgumentTypeError(
            f"must be {' or '.join(REFERENCE_KINDS)} (comma-separated), got {text!r}"
        )
    return text


_temperatures = _comma_list(temperature_type, "temperature")
_references = _comma_list(_reference_kind, "reference")
_strengths = _comma_list(reference_strength_type, "reference strength")
_hint_counts = _comma_list(count, "hint count")


HELP = "score colorizations of a photo set against the originals"
DESCRIPTION = (
    "Colorize each photo from its L alone and score it against the original "
    "(PSNR, SSIM, colourfulness, ΔCF and cast, the output's mean LAB chroma where the "
    "original is neutral, at full resolution; AuC and class-rebalanced AuC at "
    "size x size), beside the grey baseline (ab = 0). PSNR over grey, colourfulness kept "
    "and cast come with a 90 % interval over the photos (a seeded bootstrap). Writes "
    "summary.json, per_image.csv and grid.png into REPORT and prints a short table."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="DIR",
        help="folder of colour photos, searched recursively (repeatable; files, globs, and .txt "
        "lists of photos such as a training run's val_photos.txt)",
    )
    add_model_options(parser)
    parser.add_argument(
        "--temperature",
        type=_temperatures,
        metavar="T[,T...]",
        help="one or more temperatures, comma-separated, to compare (default: weights')",
    )
    parser.add_argument(
        "--grid", type=count, default=8, metavar="N", help="photos shown in grid.png (8; 0: none)"
    )
    parser.add_argument(
        "--out", required=True, metavar="REPORT", help="report folder (created if missing)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a REPORT folder that is not empty"
    )
    parser.add_argument(
        "--limit", type=positive_int, metavar="N", help="evaluate only the first N photos"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    # Guided colour (issue 15): scores with hints sampled from the truth, and an oracle reference.
    guided = parser.add_argument_group("guided colour")
    guided.add_argument(
        "--hints",
        type=_hint_counts,
        default=[],
        metavar="N[,N...]",
        help="also score with N hints per photo sampled from its truth (seeded random points, "
        "each the mean colour of a 5x5 patch), e.g. 0,1,5,10,50; 0 is the automatic result; "
        "also one hint on a coloured pixel, and how far it leaks (ab units), the dB it costs "
        "far pixels of other colours (harm) and the dB it wins near itself (gain)",
    )
    guided.add_argument(
        "--reference",
        type=_references,
        default=[],
        metavar="KIND[,KIND]",
        help="also score with a reference palette: self, each photo's own (an oracle); "
        "shuffled, another photo's of the set whose colours differ (the next in the list that "
        "shares less than half its palette): what a mismatched reference costs",
    )
    guided.add_argument(
        "--reference-strength",
        type=_strengths,
        metavar="S[,S...]",
        help="the reference strengths to score, e.g. 1,2,4 (default 1; needs --reference)",
    )
    parser.add_argument(
        "--groups",
        action="store_true",
        help="also report each group of photos apart (PSNR against grey's, colourfulness kept, "
        "cast, each with its interval): the group column of a manifest.csv beside the photos "
        "(people, interiors, scenes, objects), else each photo's source package",
    )
    parser.add_argument(
        "--against",
        metavar="REPORT",
        help="another eval's report folder, e.g. older weights' on the same photos: also print "
        "this run's first temperature minus its first model variant (PSNR, colourfulness kept, "
        "cast), photo by photo, with 90 %% intervals",
    )


def _expand_lists(inputs: list[str]) -> list[str]:
    """Replace each .txt file among ``inputs`` by the photos it lists (one a line, as training)."""
    from ..training.data import list_photos  # torch: imported when the command runs, not to parse

    expanded: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_file() and path.suffix.lower() == ".txt":
            expanded.extend(str(photo) for photo in list_photos([path]))
        else:
            expanded.append(item)
    return expanded


def run(args: argparse.Namespace) -> int:
    """0 if every photo was scored, 1 if some failed; errors raise."""
    from ..engines import evaluate as evaluation
    from ..engines.report import format_group_table, format_table

    if args.reference_strength and not args.reference:
        raise JKSPNetError("--reference-strength needs --reference (self, shuffled or both)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise JKSPNetError(f"{out}: exists and is not a folder")
    remove_stale_temporaries([out])  # what a killed eval left there: not a report
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise JKSPNetError(f"{out}: exists and is not empty; use --overwrite to write into it")
    reason = unwritable_reason(out)
    if reason is not None:  # found now, not after scoring every photo
        raise JKSPNetError(f"{out}: cannot write the report there ({reason})")
    found = find_photos(_expand_lists(args.data), recursive=True)
    if found.problems:
        raise JKSPNetError("; ".join(str(problem) for problem in found.problems))
    photos = [path for path, _ in found.photos][: args.limit]

    colorizer = colorizer_from_options(args)
    summary = evaluation.evaluate(
        colorizer,
        photos,
        args.temperature or [colorizer.config.temperature],
        out,
        grid_count=args.grid,
        progress=not args.quiet,
        batch_size=args.batch_size,
        weights="bundled" if args.weights is None else str(args.weights),
        hint_counts=args.hints,
        references=args.reference,
        reference_strengths=args.reference_strength or [1.0],
        groups=args.groups,
        against=None if args.against is None else Path(args.against),
    )
    notes = [f"{summary['n']} photo(s) scored"]
    if summary["failed"]:
        notes.append(f"{summary['failed']} failed")
    if summary["skipped_grey_truth"]:
        notes.append(f"{summary['skipped_grey_truth']} skipped (grey truth)")
    print(f"{', '.join(notes)}; AuC at {summary['auc_size']}, the rest at full resolution")
    print(format_table(summary))
    if args.groups:
        print(format_group_table(summary))
    names = [evaluation.SUMMARY_NAME, evaluation.PER_IMAGE_NAME]
    written = names + ([evaluation.GRID_NAME] if args.grid else [])
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    return EXIT_FAILED if summary["failed"] else EXIT_OK
