"""One very large photo: time and peak memory of `jkspnet colorize` on a 24-megapixel scan.

The photo is the example photo enlarged to --size (6000x4000 by default) and saved as a
greyscale JPEG. Measured two ways, --rounds times each, medians reported:

  - the command as a user runs it (`python -m jkspnet colorize big.jpg -o out.jpg`, a fresh
    process each time: start-up, weights, decoding, network, finishing, encoding), with the
    process's peak RSS;
  - `Colorizer.colorize` alone in a warm process (what a server or a batch pays per photo);
  - with --folder N, `jkspnet colorize` on a folder of N colour copies of it (the worst case for
    memory: colour decodes to three bytes a pixel), a fresh process, time and peak RSS.

With --upsample guided,bilinear both ways of reaching full resolution are measured alternately
in the same run; given a colour --photo, each output is also scored (PSNR, CF) against the
enlarged colour original.

    python benchmarks/bench_large_photo.py --rounds 3 --folder 20 --out bench-large.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from results import run_process

from jkspnet import Colorizer
from jkspnet.engines import metrics


def run_measured(command: list[str]) -> tuple[float, float]:
    """Run ``command``; its wall time in seconds and its own peak RSS in MiB."""
    seconds, _, peak_mib = run_process(command)
    return seconds, peak_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default="examples/lighthouse.jpg")
    parser.add_argument("--size", default="6000x4000", help="WxH of the enlarged photo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=int, default=0, help="also a folder of N colour copies")
    parser.add_argument(
        "--upsample",
        default="guided",
        help="upsamplers to compare, comma-separated (guided,bilinear), measured alternately",
    )
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    upsamplers = args.upsample.split(",")

    with tempfile.TemporaryDirectory(prefix="bench-large-") as work:
        big = Path(work) / "big.jpg"
        with Image.open(args.photo) as photo:
            enlarged = photo.resize((width, height), Image.Resampling.BICUBIC)
        truth = np.asarray(enlarged.convert("RGB")) if enlarged.mode != "L" else None
        enlarged.convert("L").save(big, quality=90)
        del enlarged
        cold: dict[str, list[float]] = {name: [] for name in upsamplers}
        peak_mib: dict[str, float] = dict.fromkeys(upsamplers, 0.0)
        for _ in range(args.rounds):
            for name in upsamplers:
                command = [sys.executable, "-m", "jkspnet", "colorize", str(big), "-q"]
                command += ["--overwrite", "--upsample", name, "-o", str(Path(work) / "out.jpg")]
                seconds, peak = run_measured(command)
                cold[name].append(seconds)
                peak_mib[name] = max(peak_mib[name], peak)
        folder_figures = None
        if args.folder:
            folder = Path(work) / "folder"
            folder.mkdir()
            with Image.open(args.photo) as photo:
                colour = photo.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
            for index in range(args.folder):
                colour.save(folder / f"photo{index:03d}.jpg", quality=90)
            del colour
            folder_command = [sys.executable, "-m", "jkspnet", "colorize", str(folder), "-q"]
            folder_figures = run_measured([*folder_command, "-o", str(Path(work) / "folder-out")])

        colorizer = Colorizer.from_pretrained()
        colorizer.colorize(big)  # warm-up
        warm: dict[str, list[float]] = {name: [] for name in upsamplers}
        quality: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for name in upsamplers:
                colorizer.upsample = name
                start = time.perf_counter()
                result = colorizer.colorize(big)
                result.save(Path(work) / "warm.jpg", quality=95)
                warm[name].append(time.perf_counter() - start)
                del result
                if truth is not None and name not in quality:
                    # Scored from the colour original's own L (as `jkspnet eval` does), not the
                    # grey JPEG's: Pillow's grey is luma, not LAB lightness.
                    pixels = np.asarray(colorizer.colorize(Image.fromarray(truth)))
                    quality[name] = {
                        "psnr": metrics.psnr(pixels, truth),
                        "cf": metrics.colorfulness(pixels),
                    }
                    if "grey" not in quality:
                        grey = colorizer.prepare(Image.fromarray(truth))
                        flat = np.asarray(colorizer.finish(grey, torch.zeros(2, 8, 8)))
                        quality["grey"] = {"psnr": metrics.psnr(flat, truth), "cf": 0.0}
                    del pixels

    megapixels = width * height / 1e6
    print(
        f"{megapixels:.0f} MP greyscale JPEG ({width}x{height}), {colorizer.device}, "
        f"{colorizer.precision}, network size {colorizer.config.size}"
    )
    for name in upsamplers:
        print(
            f"--upsample {name:<9} jkspnet colorize, fresh process: "
            f"{statistics.median(cold[name]):6.2f} s (median of {args.rounds}), "
            f"peak RSS {peak_mib[name]:.0f} MiB; Colorizer.colorize + save, warm: "
            f"{statistics.median(warm[name]):6.2f} s"
        )
        if name in quality:
            print(
                f"{'':21}against the colour original: PSNR {quality[name]['psnr']:.2f} dB "
                f"(grey {quality['grey']['psnr']:.2f}), CF {quality[name]['cf']:.2f} "
                f"(truth {metrics.colorfulness(truth):.2f})"
            )
    if len(upsamplers) > 1:
        first, other = upsamplers[0], upsamplers[1]
        print(
            f"{first} / {other}: fresh process "
            f"{statistics.median(cold[first]) / statistics.median(cold[other]):.3f}x, warm "
            f"{statistics.median(warm[first]) / statistics.median(warm[other]):.3f}x"
        )
    if folder_figures is not None:
        print(
            f"jkspnet colorize, a folder of {args.folder} colour copies: "
            f"{folder_figures[0]:.1f} s, peak RSS {folder_figures[1]:.0f} MiB"
        )
    if args.out:
        result = {
            "width": width,
            "height": height,
            "device": str(colorizer.device),
            "precision": colorizer.precision,
            "cli_seconds": cold,
            "cli_peak_rss_mib": peak_mib,
            "warm_seconds": warm,
            "quality": quality,
            "folder_photos": args.folder,
            "folder_seconds": folder_figures and folder_figures[0],
            "folder_peak_rss_mib": folder_figures and folder_figures[1],
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
