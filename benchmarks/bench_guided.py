"""Guided colour's cost: what 10 hints, a reference photo and the uncertainty map add.

The photo is the example photo enlarged to each --sizes entry (2 MP and 12 MP by default), in
a warm process (weights loaded, one run discarded), --rounds runs each, medians reported:

  - automatic ``Colorizer.colorize``;
  - with 10 hints (seeded random points), and with 11 (the page's re-render after a new point:
    the same work again, since each request is solved afresh);
  - with a reference photo (the example's own colour-less palette is useless, so a synthetic
    colour gradient stands in);
  - ``Colorizer.uncertainty``;
  - the server's side of the page's re-render after a new point, PNG included: at full size
    (``rerender_full_s``, what the page asked for before issue 21) and on the preview path
    (``rerender_preview_s``: the photo shrunk to --preview pixels a side, the hints scaled, the
    smaller PNG), with the PNGs' bytes, which the browser also has to receive and decode.

The issue's budget: 10 hints add at most 1 s over automatic on a 2 MP photo.

    python benchmarks/bench_guided.py --rounds 3 --out bench-guided.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from jkspnet import Colorizer, Hint

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lighthouse.jpg"


def median_seconds(function, rounds: int, clock=time.perf_counter) -> float:
    function()  # warm: caches, the inference net, allocator
    times = []
    for _ in range(rounds):
        start = clock()
        function()
        times.append(clock() - start)
    return statistics.median(times)


def rerender(colorizer: Colorizer, photo: Image.Image, hints: list, preview: int | None) -> bytes:
    """The server's work for /api/colorize with hints (and ``preview``), to the PNG it sends."""
    from jkspnet.media.photos import load_photo
    from jkspnet.serve.work import encode_png, scaled, shrunk

    small, sx, sy = shrunk(load_photo(photo), preview)
    return encode_png(colorizer.colorize(small, hints=scaled(hints, sx, sy)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1732x1155,4240x2832", help="WxH[,WxH...]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="measure the process's CPU time (all threads) instead of wall time: a fairer "
        "figure on a machine shared with other work",
    )
    parser.add_argument("--cases", help="only these, comma-separated (automatic_s,hints10_s,...)")
    parser.add_argument(
        "--preview", type=int, default=1600, help="the page's preview side (a screen's width)"
    )
    args = parser.parse_args()

    colorizer = Colorizer.from_pretrained(device=args.device)
    gradient = np.zeros((64, 64, 3), np.uint8)
    gradient[..., 0] = np.linspace(40, 220, 64, dtype=np.uint8)
    gradient[..., 2] = 120
    reference = Image.fromarray(gradient)
    results = []
    for size in args.sizes.split(","):
        width, height = map(int, size.split("x"))
        photo = Image.open(EXAMPLE).convert("L").resize((width, height), Image.Resampling.BICUBIC)
        rng = random.Random(15)
        hints = [
            Hint(rng.uniform(0, width), rng.uniform(0, height), (138, 59, 42)) for _ in range(11)
        ]
        row = {"size": size, "megapixels": round(width * height / 1e6, 1)}
        cases = {
            "automatic_s": lambda photo=photo: colorizer.colorize(photo),
            "hints10_s": lambda photo=photo, h=hints: colorizer.colorize(photo, hints=h[:10]),
            "hints11_s": lambda photo=photo, h=hints: colorizer.colorize(photo, hints=h),
            "reference_s": lambda photo=photo: colorizer.colorize(photo, reference=reference),
            "uncertainty_s": lambda photo=photo: colorizer.uncertainty(photo),
            "rerender_full_s": lambda photo=photo, h=hints: rerender(colorizer, photo, h, None),
            "rerender_preview_s": lambda photo=photo, h=hints: rerender(
                colorizer, photo, h, args.preview
            ),
        }
        clock = time.process_time if args.cpu_time else time.perf_counter
        for name, case in cases.items():
            if args.cases is None or name in args.cases.split(","):
                row[name] = median_seconds(case, args.rounds, clock)
        for name, side in (("full", None), ("preview", args.preview)):
            if f"rerender_{name}_s" in row:
                row[f"rerender_{name}_png_mb"] = len(rerender(colorizer, photo, hints, side)) / 1e6
        if "hints10_s" in row and "automatic_s" in row:
            row["hints10_added_s"] = row["hints10_s"] - row["automatic_s"]
        row["clock"] = "cpu" if args.cpu_time else "wall"
        results.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
        print(json.dumps(results[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
