"""What the upsampling alone loses: the *true* colour at the network's size, brought back up.

The network predicts ab on a small grid (a 96-pixel short side for the bundled weights 0.7, 64
for 0.2 to 0.6), and
:mod:`jkspnet.colour.upsample` brings it to full resolution. Any upsampler loses something: fine
chroma texture, colour edges that do not follow an edge in L, and colour smeared onto neutral
pixels beside coloured ones. This script measures that loss with no network at all: each photo's
own ab is shrunk to the network's input shape (as the photo's L is), then upsampled by each
variant, joined to the photo's L, and scored against the original as ``jkspnet eval`` scores
(PSNR on 8-bit sRGB beside the grey photo, colourfulness kept, cast). It is a ceiling: no weights
can do better than their own colours put back this way, and a setting of the guided filter can be
chosen on it without fitting any weights' errors.

Variants: ``bilinear``, and the guided filter for every ``--radii`` x ``--eps`` (radius on the
reduced grid; eps the regulariser of the slope, for L scaled to [0, 1]).

    python benchmarks/bench_upsampling.py --data photos/val.txt --radii 4,8 --eps 1e-2,1e-3 \\
        --out upsampling.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from jkspnet.colour.decoding import aspect_shape
from jkspnet.colour.spaces import lab_to_srgb8, rgb_to_lab
from jkspnet.colour.upsample import guided_upsample
from jkspnet.engines import metrics
from jkspnet.media.photos import load_photo
from jkspnet.training.data import list_photos


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def upsampled(ab: torch.Tensor, lightness: torch.Tensor, variant: tuple) -> torch.Tensor:
    """``ab`` (2, h, w) at the size of ``lightness`` (H, W) by one variant (grey: none)."""
    if variant[0] == "grey":
        return torch.zeros((2, *lightness.shape))
    if variant[0] == "bilinear":
        size = tuple(lightness.shape)
        return F.interpolate(ab[None], size=size, mode="bilinear", align_corners=False)[0]
    _, radius, eps = variant
    return guided_upsample(ab, lightness, radius=int(radius), eps=eps)


def name(variant: tuple) -> str:
    if variant[0] == "guided":
        return f"guided r{variant[1]:g} eps{variant[2]:g}"
    return variant[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a folder or file list of colour photos")
    parser.add_argument("--size", type=int, default=96, help="the network input's short side")
    parser.add_argument("--radii", default="8", help="guided filter radii, comma-separated")
    parser.add_argument("--eps", default="1e-2", help="guided filter regularisers")
    parser.add_argument("--out", help="also write the figures as JSON")
    args = parser.parse_args()

    variants = [("grey",), ("bilinear",)] + [
        ("guided", r, e) for r, e in itertools.product(floats(args.radii), floats(args.eps))
    ]
    scores = {name(v): {"psnr": [], "cf": [], "cast": []} for v in variants}
    truth_cf = []
    start = time.perf_counter()
    torch.set_grad_enabled(False)
    for path in list_photos([args.data]):
        truth = load_photo(path).pixels
        if truth.ndim != 3:  # a grey photo has no colour to lose
            continue
        truth = truth[..., :3]
        lab = rgb_to_lab(torch.from_numpy(np.array(truth)).permute(2, 0, 1).double() / 255)
        lab = lab.float()
        lightness = lab[0]
        shape = aspect_shape(*lightness.shape, args.size)
        small = F.interpolate(lab[None, 1:], size=shape, mode="bilinear", antialias=True)[0]
        truth_cf.append(metrics.colorfulness(truth))
        for variant in variants:
            ab = upsampled(small, lightness, variant)
            rgb = lab_to_srgb8(torch.cat([lightness[None], ab])).permute(1, 2, 0).numpy()
            row = scores[name(variant)]
            row["psnr"].append(metrics.psnr(rgb, truth))
            row["cf"].append(metrics.colorfulness(rgb))
            row["cast"].append(metrics.cast(rgb, truth))
    grey = float(np.mean(scores["grey"]["psnr"]))
    table = []
    for key, row in scores.items():
        casts = [c for c in row["cast"] if c is not None]
        table.append(
            {
                "variant": key,
                "psnr": round(float(np.mean(row["psnr"])), 3),
                "psnr_over_grey": round(float(np.mean(row["psnr"])) - grey, 3),
                "cf_share": round(float(np.mean(row["cf"]) / np.mean(truth_cf)), 4),
                "cast": round(float(np.mean(casts)), 3) if casts else None,
            }
        )
        print(json.dumps(table[-1]), flush=True)
    result = {
        "data": args.data,
        "photos": len(truth_cf),
        "size": args.size,
        "seconds": round(time.perf_counter() - start, 1),
        "variants": table,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
