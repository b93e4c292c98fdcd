"""The full-resolution finish of photos (guided upsampling, LAB to 8-bit sRGB), on OpenCV (the
CPU's path, jkspnet.colour.pixels) against the same stages in torch (jkspnet.colour.torch_pixels,
what runs on a GPU and ran on the CPU before issue 25, with the guided filter's box means as
torch running sums), alternated round by round in one process, on one thread.

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

import cv2
import torch
from bench_cluster import make_folder
from PIL import Image
from results import print_and_save

from jkspnet import Colorizer
from jkspnet.colour import torch_pixels, upsample
from jkspnet.media.photos import load_photo


def torch_finish(colorizer: Colorizer, prepared, ab) -> Image.Image:
    """The finish as it runs in torch: box means, upsampling and colour conversion."""
    fit = upsample.local_linear_fit
    upsample.local_linear_fit = upsample._local_linear_fit_torch
    try:
        layers = colorizer._layers(prepared, ab, None)
    finally:
        upsample.local_linear_fit = fit
    return Image.fromarray(torch_pixels.finish(prepared.lightness, layers, prepared.alpha))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="photos", help="folder of source photos")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--megapixels", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    sources = sorted(Path(args.photos).glob("*.jpg")) or [Path("examples/lighthouse.jpg")]
    colorizer = Colorizer.from_pretrained(device="cpu")
    with tempfile.TemporaryDirectory(prefix="bench-finish-") as work:
        make_folder(sources, args.count, args.megapixels, Path(work))
        prepared = [colorizer.prepare(load_photo(path)) for path in sorted(Path(work).iterdir())]
    ab = colorizer.predict_ab_list([item.network_input for item in prepared])
    variants = {"opencv": colorizer.finish, "torch": lambda *a: torch_finish(colorizer, *a)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, finish in variants.items():
            start = time.thread_time()
            for item, ab_one in zip(prepared, ab, strict=True):
                finish(item, ab_one)
            times[name].append(1000 * (time.thread_time() - start) / len(prepared))
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "photos": f"{args.count} greyscale JPEGs of {args.megapixels:g} MP, one thread",
        **{f"{name}_ms_per_photo": round(value, 1) for name, value in median.items()},
        "speedup": round(median["torch"] / median["opencv"], 2),
        "rounds_ms": {name: [round(v, 1) for v in values] for name, values in times.items()},
    }
    print_and_save(result, args.out)


if __name__ == "__main__":
    main()
