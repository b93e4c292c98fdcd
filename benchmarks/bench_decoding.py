"""Inference-time levers on held-out photos: temperature, upsampling, input shape, flip, confidence.

Issue 14 asks that the shipped decoding be chosen by measurement on photos whose source the
network never saw. This script colorizes every photo of ``--data`` (e.g. ``photos/val.txt``, the
packages held out of training) once per variant and scores it at full resolution against the
original, beside the grey baseline, exactly as ``jkspnet eval`` scores (PSNR on 8-bit sRGB, CF of
Hasler & Suesstrunk). The variants:

- ``T``: the annealed-mean temperature, ``softmax(logits / T)``;
- ``up``: ``bilinear`` or ``guided`` (edge-aware, :mod:`jkspnet.colour.upsample`) to full
  resolution;
- ``shape``: ``square`` (the photo squashed to size x size, as trained) or ``aspect`` (short side
  ``size``, the long side the photo's aspect, rounded to a multiple of 8);
- ``tta``: ``none`` or ``flip`` (the bin distributions averaged with those of the mirrored photo);
- ``conf``: confidence-aware decoding with strength ``gamma``
  (:func:`jkspnet.colour.decoding.confident_ab`), 0 = off;
- ``sat``: the gain on every chroma of :func:`jkspnet.colour.decoding.saturated_ab`, 1 = off
  (``--saturations``; a variant at 1 carries no ``sat`` in its name), before the neutral
  threshold;
- ``neutral``: the chroma threshold of :func:`jkspnet.colour.decoding.neutral_ab`, 0 = off
  (``--neutrals``; issue 22), in one or both of its shapes, ``soft`` or ``garrote``
  (``--neutral-shapes``; a garrote variant's name ends in ``garrote``).

It also reports the global colour cast (the mean predicted a and b against the truth's) and the
*cast* of :func:`jkspnet.engines.metrics.cast` (mean output chroma where the truth's is below 6).

    python benchmarks/bench_decoding.py --data photos/val.txt --weights runs/x/best \\
        --temperatures 0.6,0.8,1,1.2 --out decoding.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from jkspnet.colour.decoding import aspect_shape, confident_ab, neutral_ab, saturated_ab
from jkspnet.colour.spaces import normalize_l
from jkspnet.engines import metrics
from jkspnet.media.photos import load_photo
from jkspnet.nn.distribution import MAX_ENTROPY, entropy
from jkspnet.pipeline.colorizer import Colorizer
from jkspnet.pipeline.spec import NEUTRAL_SHAPES
from jkspnet.training.data import list_photos


@dataclass(frozen=True)
class Variant:
    temperature: float
    upsample: str
    shape: str
    tta: str
    gamma: float
    neutral: float = 0.0
    neutral_shape: str = "soft"
    saturation: float = 1.0

    @property
    def name(self) -> str:
        parts = [f"T={self.temperature:g}", self.upsample, self.shape, self.tta]
        parts.append(f"conf={self.gamma:g}")
        if self.saturation != 1:
            parts.append(f"sat={self.saturation:g}")
        if self.neutral:
            parts.append(f"neutral={self.neutral:g}")
            if self.neutral_shape != "soft":
                parts.append(self.neutral_shape)
        return " ".join(parts)


def _distribution(net, x: torch.Tensor, temperature: float, flip: bool) -> torch.Tensor:
    """Bin probabilities (313, h, w) for one normalised L (1, 1, h, w), optionally flip-averaged."""
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=False):
        logits = net.logits(x)[0].float() / temperature
        probs = torch.softmax(logits, dim=0)
        if flip:
            mirrored = net.logits(torch.flip(x, dims=[-1]))[0].float() / temperature
            probs = 0.5 * (probs + torch.flip(torch.softmax(mirrored, dim=0), dims=[-1]))
    return probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True, help="photos or a .txt list")
    parser.add_argument("--weights", default=None, help="weights (default: the bundled ones)")
    parser.add_argument("--size", type=int, default=None, help="network side (weights')")
    parser.add_argument("--temperatures", default="0.5,0.75,1,1.25")
    parser.add_argument("--upsample", default="bilinear,guided")
    parser.add_argument("--shapes", default="square,aspect")
    parser.add_argument("--tta", default="none,flip")
    parser.add_argument("--gammas", default="0")
    parser.add_argument("--saturations", default="1", help="chroma gains (1 = off)")
    parser.add_argument("--neutrals", default="0", help="chroma thresholds (0 = off)")
    parser.add_argument(
        "--neutral-shapes", default="soft", help=f"threshold shapes: {', '.join(NEUTRAL_SHAPES)}"
    )
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the table as JSON here")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    colorizer = Colorizer.from_pretrained(args.weights, precision="fp32")
    size = args.size or colorizer.config.size
    net = colorizer.network.model.float().eval()
    bins = colorizer.network.ab_projection()  # the automatic path's own ab head
    for name in args.neutral_shapes.split(","):
        if name not in NEUTRAL_SHAPES:
            parser.error(f"--neutral-shapes: {name!r} is not one of {', '.join(NEUTRAL_SHAPES)}")
    every = [
        Variant(
            float(t), up, shape, tta, float(g), float(n), kind if float(n) else "soft", float(s)
        )
        for t, up, shape, tta, g, s, n, kind in itertools.product(
            args.temperatures.split(","),
            args.upsample.split(","),
            args.shapes.split(","),
            args.tta.split(","),
            args.gammas.split(","),
            args.saturations.split(","),
            args.neutrals.split(","),
            args.neutral_shapes.split(","),
        )
    ]
    variants = list({v.name: v for v in every}.values())  # neutral 0 is the same in every shape
    files = list_photos(args.data)
    if args.limit:
        files = files[: args.limit]
    rows: dict[str, dict[str, list[float]]] = {"grey": {"psnr": [], "cf": []}}
    rows.update({v.name: {"psnr": [], "cf": [], "a": [], "b": [], "cast": []} for v in variants})
    truth_cf, truth_a, truth_b = [], [], []
    started = time.perf_counter()
    for path in files:
        photo = load_photo(path)
        truth = photo.pixels
        prepared = colorizer.prepare(photo, size)
        height, width = prepared.lightness.shape
        truth_cf.append(metrics.colorfulness(truth))
        truth_ab = metrics.ab_of(truth)
        truth_a.append(float(truth_ab[0].mean()))
        truth_b.append(float(truth_ab[1].mean()))
        grey = colorizer.finish(prepared, torch.zeros(2, size, size))
        rows["grey"]["psnr"].append(metrics.psnr(grey, truth))
        rows["grey"]["cf"].append(metrics.colorfulness(grey))
        inputs = {"square": prepared.network_input[None]}
        if "aspect" in args.shapes:
            shape = aspect_shape(height, width, size)
            small = F.interpolate(
                prepared.lightness[None, None], size=shape, mode="bilinear", antialias=True
            )
            inputs["aspect"] = normalize_l(small)
        cache: dict[tuple, torch.Tensor] = {}
        for v in variants:
            key = (v.shape, v.tta, v.temperature)
            if key not in cache:
                cache[key] = _distribution(net, inputs[v.shape], v.temperature, v.tta == "flip")
            probs = cache[key]
            ab = torch.einsum("khw,kc->chw", probs, bins)
            if v.gamma > 0:
                flatness = entropy(probs.clamp(min=1e-12).log()[None])[0] / MAX_ENTROPY
                ab = confident_ab(ab, flatness, v.gamma)
            ab = saturated_ab(ab, v.saturation)
            ab = neutral_ab(ab, v.neutral, garrote=v.neutral_shape == "garrote")
            colorizer.upsample = v.upsample
            out = colorizer.finish(prepared, ab)
            rgb = np.asarray(out.convert("RGB"))
            row = rows[v.name]
            row["psnr"].append(metrics.psnr(rgb, truth))
            row["cf"].append(metrics.colorfulness(rgb))
            pred_ab = metrics.ab_of(rgb)
            row["a"].append(float(pred_ab[0].mean()))
            row["b"].append(float(pred_ab[1].mean()))
            cast = metrics.cast(rgb, truth)
            if cast is not None:
                row["cast"].append(cast)
    elapsed = time.perf_counter() - started
    cf_truth = float(np.mean(truth_cf))
    table = []
    for name, row in rows.items():
        entry = {
            "variant": name,
            "psnr": float(np.mean(row["psnr"])),
            "cf": float(np.mean(row["cf"])),
            "cf_share": float(np.mean(row["cf"])) / cf_truth,
        }
        if "a" in row:
            entry["mean_a"] = float(np.mean(row["a"]))
            entry["mean_b"] = float(np.mean(row["b"]))
            entry["cast"] = float(np.mean(row["cast"])) if row["cast"] else None
        table.append(entry)
    grey_psnr = table[0]["psnr"]
    print(
        f"{len(files)} photos, {elapsed:.0f} s; truth CF {cf_truth:.2f}, mean a/b "
        f"{np.mean(truth_a):+.2f}/{np.mean(truth_b):+.2f}"
    )
    header = f"{'variant':<56} {'PSNR':>6} {'vs grey':>8} {'CF':>6} {'CF %':>5}"
    print(f"{header} {'a':>6} {'b':>6} {'cast':>5}")
    for entry in table:
        means = " " * 13
        if "mean_a" in entry:
            means = f"{entry['mean_a']:+6.2f} {entry['mean_b']:+6.2f}"
        cast = "" if entry.get("cast") is None else f"{entry['cast']:5.2f}"
        print(
            f"{entry['variant']:<56} {entry['psnr']:6.2f} {entry['psnr'] - grey_psnr:+8.2f} "
            f"{entry['cf']:6.2f} {100 * entry['cf_share']:5.0f} {means} {cast}"
        )
    if args.out:
        result = {
            "photos": len(files),
            "weights": args.weights or "bundled",
            "size": size,
            "truth_cf": cf_truth,
            "truth_mean_ab": [float(np.mean(truth_a)), float(np.mean(truth_b))],
            "variants": table,
        }
        with open(args.out, "w", encoding="utf-8") as stream:
            json.dump(result, stream, indent=2)


if __name__ == "__main__":
    main()
