"""The full-resolution finish of photos (guided upsampling and LAB to 8-bit RGB), with the guided
filter's box means as running sums (jkspnet.colour.upsample.box_mean) against one 2-D avg_pool2d
(how they were computed before), alternated round by round in one process, on one thread.

The photos: --count greyscale JPEGs of --megapixels, made from real photos; their network output
is computed once. CPU time of the finishing thread, so that other work barely moves it.

    python benchmarks/bench_finish.py --photos photos --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_cluster import make_folder
from results import print_and_save

from jkspnet import Colorizer
from jkspnet.colour import upsample
from jkspnet.media.photos import load_photo


def avg_pool_box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The window mean as one avg_pool2d over (2r+1)^2 pixels: the reference."""
    if radius < 1:
        return x
    kernel = 2 * radius + 1
    return F.avg_pool2d(x, kernel, stride=1, padding=radius, count_include_pad=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="photos", help="folder of source photos")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--megapixels", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()

    torch.set_num_threads(1)
    sources = sorted(Path(args.photos).glob("*.jpg")) or [Path("examples/lighthouse.jpg")]
    colorizer = Colorizer.from_pretrained(device="cpu")
    with tempfile.TemporaryDirectory(prefix="bench-finish-") as work:
        make_folder(sources, args.count, args.megapixels, Path(work))
        prepared = [colorizer.prepare(load_photo(path)) for path in sorted(Path(work).iterdir())]
    ab = colorizer.predict_ab_list([item.network_input for item in prepared])
    variants = {"running_sums": upsample.box_mean, "avg_pool2d": avg_pool_box_mean}
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(args.rounds):
            for name, box_mean in variants.items():
                upsample.box_mean = box_mean
                start = time.thread_time()
                for item, ab_one in zip(prepared, ab, strict=True):
                    colorizer.finish(item, ab_one)
                times[name].append(1000 * (time.thread_time() - start) / len(prepared))
    finally:
        upsample.box_mean = variants["running_sums"]
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "photos": f"{args.count} greyscale JPEGs of {args.megapixels:g} MP, one thread",
        **{f"{name}_ms_per_photo": round(value, 1) for name, value in median.items()},
        "speedup": round(median["avg_pool2d"] / median["running_sums"], 2),
        "rounds_ms": {name: [round(v, 1) for v in values] for name, values in times.items()},
    }
    print_and_save(result, args.out)


if __name__ == "__main__":
    main()
