"""One very large photo: time and peak memory of `jkspnet colorize` on a 24-megapixel scan.

The photo is the example photo enlarged to --size (6000x4000 by default) and saved as a
greyscale JPEG. Measured two ways, --rounds times each, medians reported:

  - the command as a user runs it (`python -m jkspnet colorize big.jpg -o out.jpg`, a fresh
    process each time: start-up, weights, decoding, network, finishing, encoding), with the
    process's peak RSS;
  - `Colorizer.colorize` alone in a warm process (what a server or a batch pays per photo).

    python benchmarks/bench_large_photo.py --rounds 3 --out bench-large.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from jkspnet import Colorizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default="examples/lighthouse.jpg")
    parser.add_argument("--size", default="6000x4000", help="WxH of the enlarged photo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))

    with tempfile.TemporaryDirectory(prefix="bench-large-") as work:
        big = Path(work) / "big.jpg"
        with Image.open(args.photo) as photo:
            photo.convert("L").resize((width, height), Image.Resampling.BICUBIC).save(
                big, quality=90
            )
        command = [sys.executable, "-m", "jkspnet", "colorize", str(big), "-q", "--overwrite"]
        command += ["-o", str(Path(work) / "out.jpg")]
        cold = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            cold.append(time.perf_counter() - start)
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

        colorizer = Colorizer.from_pretrained()
        colorizer.colorize(big)  # warm-up
        warm = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            colorizer.colorize(big).save(Path(work) / "warm.jpg", quality=95)
            warm.append(time.perf_counter() - start)

    megapixels = width * height / 1e6
    print(
        f"{megapixels:.0f} MP greyscale JPEG ({width}x{height}), {colorizer.device}, "
        f"{colorizer.precision}, network size {colorizer.config.size}"
    )
    print(
        f"jkspnet colorize, fresh process:   {statistics.median(cold):6.2f} s "
        f"(median of {args.rounds}), peak RSS {peak_mib:.0f} MiB"
    )
    print(f"Colorizer.colorize + save, warm:  {statistics.median(warm):6.2f} s")
    if args.out:
        result = {
            "width": width,
            "height": height,
            "device": str(colorizer.device),
            "precision": colorizer.precision,
            "cli_seconds": cold,
            "cli_peak_rss_mib": peak_mib,
            "warm_seconds": warm,
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
