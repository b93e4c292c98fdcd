"""End to end: colorize a folder of mixed-size photos with the CLI, against a plain reference.

The folder: --count greyscale JPEGs made from real photos, cycling through sizes from 0.3 to
12 megapixels and three aspect ratios (made once, before timing). Variants, run alternately,
each over the whole folder, medians of --rounds reported:

  - reference: what a plain script does with the seed's network. One photo at a time: PIL
    decode, scikit-image rgb2lab for the full-resolution L, PIL resize of L to 128x128, the
    network in eager NCHW float32, PIL bilinear upsampling of ab, scikit-image lab2rgb, PIL save.
  - cli: `jkspnet colorize FOLDER -o OUT` in this process (weights loading included), at the
    reference's network size (--size 128) and at the bundled weights' own size.

Both use the bundled weights. Prints img/s, megapixels/s and the ratio to the reference, and
the peak RSS of the process; writes JSON with --out.

    python benchmarks/bench_folder.py --photos photos --count 50 --rounds 2 --out bench-folder.json
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from jkspnet import JKSPNet
from jkspnet.cli import main as cli_main
from jkspnet.nn.weights import bundled_weights, load_into, load_weights

MEGAPIXELS = (0.3, 1.0, 2.0, 4.0, 8.0, 12.0)
ASPECTS = (4 / 3, 3 / 2, 3 / 4)


def make_folder(sources: list[Path], count: int, folder: Path) -> float:
    """Write ``count`` greyscale JPEGs of mixed sizes; return their total megapixels."""
    total = 0.0
    for index in range(count):
        megapixels = MEGAPIXELS[index % len(MEGAPIXELS)]
        aspect = ASPECTS[(index // len(MEGAPIXELS)) % len(ASPECTS)]
        width = round((megapixels * 1e6 * aspect) ** 0.5)
        height = round(megapixels * 1e6 / width)
        with Image.open(sources[index % len(sources)]) as photo:
            grey = photo.convert("L").resize((width, height), Image.Resampling.BICUBIC)
        grey.save(folder / f"photo_{index:03d}.jpg", quality=90)
        total += width * height / 1e6
    return total


def reference(folder: Path, out: Path, size: int = 128) -> None:
    """The plain path: one photo at a time, scikit-image colour, PIL resizing, eager fp32."""
    state, config = load_weights(bundled_weights())
    net = JKSPNet()
    load_into(net, state, "bundled")
    net.eval()
    for path in sorted(folder.glob("*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        lightness = rgb2lab(rgb)[..., 0].astype(np.float32)
        small = Image.fromarray(lightness, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        x = torch.from_numpy(np.asarray(small) - 50.0)[None, None]
        with torch.no_grad():
            ab = net(x, temperature=config.temperature)[0].numpy()
        height, width = lightness.shape
        full_ab = [
            np.asarray(
                Image.fromarray(channel, mode="F").resize(
                    (width, height), Image.Resampling.BILINEAR
                )
            )
            for channel in ab
        ]
        lab = np.stack([lightness, *full_ab], axis=-1)
        colour = (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(colour).save(out / path.name, quality=95)


def cli(folder: Path, out: Path, *extra: str) -> None:
    code = cli_main(["colorize", str(folder), "-o", str(out), "-q", "--overwrite", *extra])
    if code != 0:
        raise SystemExit(f"jkspnet colorize failed with exit code {code}")


def subprocess_peak_rss(folder: Path, out: Path) -> float:
    """Peak RSS (MiB) of `jkspnet colorize FOLDER` run as its own process, as a user runs it."""
    command = [sys.executable, "-m", "jkspnet", "colorize", str(folder), "-o", str(out), "-q"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="photos", help="folder of source photos")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()

    sources = sorted(Path(args.photos).glob("*.jpg"))[::7] or [Path("examples/lighthouse.jpg")]
    work = Path(tempfile.mkdtemp(prefix="bench-folder-"))
    try:
        folder = work / "in"
        folder.mkdir()
        megapixels = make_folder(sources, args.count, folder)
        # First, while this process is still small: Linux counts a child's RSS from its fork.
        cli_rss = subprocess_peak_rss(folder, work / "out-rss")
        print(
            f"{args.count} photos, {megapixels:.0f} megapixels in all, torch threads "
            f"{torch.get_num_threads()}, torch {torch.__version__}",
            flush=True,
        )
        variants = {
            "reference (seed net, skimage, 1 by 1)": lambda out: reference(folder, out),
            "jkspnet colorize --size 128": lambda out: cli(folder, out, "--size", "128"),
            "jkspnet colorize (defaults)": lambda out: cli(folder, out),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(args.rounds):
            for name, run in variants.items():
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                start = time.perf_counter()
                run(out)
                samples[name].append(time.perf_counter() - start)
                written = len(list(out.iterdir()))
                if written != args.count:
                    raise SystemExit(f"{name}: wrote {written} of {args.count} photos")
                print(f"round {round_ + 1}: {name}: {samples[name][-1]:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(next(iter(samples.values())))
    rows = []
    print(f"{'variant':<40}{'s':>8}{'img/s':>8}{'MP/s':>8}{'vs ref':>8}")
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append(
            {
                "variant": name,
                "seconds": values,
                "img_per_s": args.count / median,
                "megapixels_per_s": megapixels / median,
                "speedup": base / median,
            }
        )
        print(
            f"{name:<40}{median:>8.1f}{args.count / median:>8.2f}{megapixels / median:>8.1f}"
            f"{base / median:>7.2f}x"
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (all variants): {peak_mib:.0f} MiB")
    print(f"peak RSS of `jkspnet colorize` on the folder, in its own process: {cli_rss:.0f} MiB")
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "count": args.count,
                    "megapixels": megapixels,
                    "threads": torch.get_num_threads(),
                    "results": rows,
                    "peak_rss_mib": peak_mib,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
