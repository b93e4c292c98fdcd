"""Longer fuzz run of photo loading: mutated files of every format through ``load_photo``.

Takes valid seed photos (``tests/hostile.py``: PNG, 16-bit PNG, RGBA PNG, JPEG, progressive JPEG,
animated GIF, WebP, TIFF, BMP), mutates each try with 1 to 6 random edits (set, insert or delete
a byte, cut the file short, rewrite the size a PNG or JPEG header declares) and loads the result
with ``load_photo``; with ``--prepare`` also through ``Colorizer.prepare`` (full-resolution L and
the network's input). A crash is any exception other than a PhotoError, or a result the pipeline
cannot take. Prints the inputs tried, what became of them, the crashes and the slowest load;
``--out`` writes it as JSON; each crashing input is kept in ``--crash-dir``, where the decoders'
own messages (libtiff prints to stderr) also go. Exits 1 if anything crashed.

    python benchmarks/fuzz_photos.py --seconds 180 --prepare --out fuzz.json
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import PIL
import skimage.data
from PIL import Image
from results import print_and_save

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.hostile

from tests.hostile import EDITS, check_photo, mutate, seed_photos

from jkspnet import Colorizer, JKSPNet
from jkspnet.errors import PhotoError, PhotoTooLargeError
from jkspnet.media.photos import load_photo


def random_edits(rng: random.Random) -> list[tuple[str, int, int]]:
    """1 to 6 edits; a rewritten size is small half the time, so that some still decode."""
    edits = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.choice(EDITS)
        if kind == "declare-size" and rng.random() < 0.5:
            edits.append((kind, rng.randrange(513), rng.randrange(513)))
        else:
            edits.append((kind, rng.randrange(1 << 20), rng.randrange(1 << 16)))
    return edits


def outcome(error: PhotoError) -> str:
    """The kind of refusal, without the file-specific detail in brackets."""
    if isinstance(error, PhotoTooLargeError):
        return "refused: over the pixel limit"
    return "refused: " + error.reason.split(" (")[0]


def try_one(path: Path, max_pixels: int, colorizer: Colorizer | None) -> str:
    """Load (and prepare) one file; returns its outcome, raises on a crash."""
    try:
        photo = load_photo(path, max_pixels=max_pixels)
    except PhotoError as error:
        return outcome(error)
    check_photo(photo, max_pixels)
    if colorizer is not None:
        prepared = colorizer.prepare(photo)
        lightness = prepared.lightness.numpy()
        assert lightness.shape == photo.pixels.shape[:2] and np.isfinite(lightness).all()
        assert prepared.network_input.shape == (1, colorizer.config.size, colorizer.config.size)
    return "decoded"


def fuzz(args: argparse.Namespace, work: Path) -> dict:
    rng = random.Random(args.seed)
    seeds = seed_photos(Image.fromarray(skimage.data.astronaut()))
    names = sorted(seeds)
    colorizer = Colorizer.from_model(JKSPNet(), device="cpu") if args.prepare else None
    outcomes: Counter[str] = Counter()
    crashes: list[dict] = []
    slowest = (0.0, "")
    started = time.monotonic()
    tried = 0
    while (not args.examples or tried < args.examples) and (
        not args.seconds or time.monotonic() - started < args.seconds
    ):
        name = rng.choice(names)
        edits = random_edits(rng)
        path = work / "current-input"  # left behind if a decoder kills the process
        path.write_bytes(mutate(seeds[name], edits))
        begun = time.perf_counter()
        try:
            outcomes[try_one(path, args.max_pixels, colorizer)] += 1
        except Exception as error:  # the point: anything but a PhotoError is a crash
            kept = work / f"crash-{len(crashes):03d}-{name}"
            path.rename(kept)
            crashes.append({"seed": name, "edits": edits, "error": repr(error), "file": str(kept)})
            outcomes["CRASH"] += 1
        elapsed = time.perf_counter() - begun
        if elapsed > slowest[0]:
            slowest = (elapsed, f"{name} {edits}")
        tried += 1
    (work / "current-input").unlink(missing_ok=True)
    wall = time.monotonic() - started
    return {
        "inputs": tried,
        "crashes": len(crashes),
        "wall_s": round(wall, 1),
        "inputs_per_s": round(tried / max(wall, 1e-9), 1),
        "outcomes": dict(outcomes.most_common()),
        "slowest_s": round(slowest[0], 3),
        "slowest_input": slowest[1],
        "first_crashes": crashes[:10],
        "seeds": names,
        "random_seed": args.seed,
        "max_pixels": args.max_pixels,
        "prepare": args.prepare,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=0, help="inputs to try (0: no limit)")
    parser.add_argument("--seconds", type=float, default=60, help="time limit (0: none; 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--max-pixels", type=int, default=4_000_000, help="limit (4,000,000)")
    parser.add_argument("--prepare", action="store_true", help="also run Colorizer.prepare")
    parser.add_argument("--crash-dir", help="keep crashing inputs here (default: a temp folder)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    if not args.examples and not args.seconds:
        parser.error("give --examples or --seconds: the run needs an end")

    work = Path(args.crash_dir or tempfile.mkdtemp(prefix="jkspnet-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    decoder_log = open(work / "decoder-messages.log", "w")  # noqa: SIM115 - lives with the run
    os.dup2(decoder_log.fileno(), 2)  # libtiff & co. print to fd 2; keep the summary readable
    faulthandler.enable(decoder_log)  # a hard crash leaves its stack and current-input there
    warnings.simplefilter("ignore")  # PIL warns about corrupt EXIF and the like
    result = fuzz(args, work)
    result["crash_dir"] = str(work)
    print_and_save(result, args.out)
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
