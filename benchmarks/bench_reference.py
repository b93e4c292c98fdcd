"""How a reference palette's re-weighting behaves on held-out photos (issue 21's spill).

For each photo of ``--data`` (e.g. ``photos/val.txt``), its guided colour is decoded exactly as
``jkspnet colorize --reference`` decodes it (:meth:`Colorizer.guide`, then ``finish``) with two
references: its own palette (``self``, an oracle) and another photo's whose colours differ
(``shuffled``, the partner ``jkspnet eval --reference shuffled`` gives it,
:func:`jkspnet.engines.references.shuffled_partners`), at each strength. Per rule, reference and
strength it reports the mean over the photos of

- ``psnr``: the PSNR change (dB, full resolution) against the automatic result;
- ``shift``: how far the colours moved from the automatic result (mean ab distance per pixel at
  the network's size);
- ``step``: how far they moved from the previous strength's (0 for the first): whether each
  strength is visibly different from the last.

The rules: ``former``, the rule before issue 21, ``p * h ** strength`` with a floor of 1e-4 of
a flat distribution (written out here, as a baseline); and ``FLOOR/SIGMA/SHARE``, today's
:func:`jkspnet.nn.distribution.reweight` with those parameters (``default`` for its own).

    python benchmarks/bench_reference.py --data photos/val.txt --strengths 1,2,4 \\
        --rules former,default,0.05/15/0.1 --out reference.json
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from results import print_and_save

from jkspnet.engines import metrics
from jkspnet.engines.references import shuffled_partners
from jkspnet.errors import JKSPNetError
from jkspnet.media.photos import load_photo
from jkspnet.nn import distribution
from jkspnet.nn.bins import NUM_BINS
from jkspnet.pipeline.colorizer import Colorizer
from jkspnet.training.data import list_photos

Rule = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def former(log_p: torch.Tensor, histogram: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """The rule before issue 21: ``p * h ** strength``, ``h`` floored at 1e-4 of a flat share."""
    if strength == 0:
        return log_p
    floor = 1e-4 / NUM_BINS
    log_h = torch.log(histogram.float() * (1 - 1e-4) + floor).view(1, -1, 1, 1)
    return torch.log_softmax(log_p + strength * log_h, 1)


def rule(name: str) -> Rule:
    if name == "former":
        return former
    if name == "default":
        return distribution.reweight
    floor, sigma, share = (float(part) for part in name.split("/"))
    return functools.partial(distribution.reweight, floor=floor, sigma=sigma, plausible_share=share)


def photos_of(data: list[str], limit: int | None) -> list[Path]:
    paths: list[Path] = []
    for item in map(Path, data):
        paths += list_photos([item]) if item.suffix == ".txt" else sorted(item.rglob("*.jp*g"))
    return paths[:limit]


def measure(colorizer: Colorizer, paths: list[Path], rules: list[str], strengths: list[float]):
    photos, palettes = [], []
    for path in paths:
        photo = load_photo(path)
        try:
            palettes.append(colorizer.reference_histogram(photo))
        except JKSPNetError:  # too grey to be a reference: skipped, as eval would fail on it
            continue
        photos.append(photo)
    partners = shuffled_partners(palettes)
    results: dict[str, dict] = {}
    for name in rules:
        original, distribution.reweight = distribution.reweight, rule(name)
        try:  # Colorizer.guide looks reweight up in its module when it runs
            sums: dict[str, list[float]] = {}
            for index, photo in enumerate(photos):
                prepared = colorizer.prepare(photo)
                logits = colorizer.predict_logits(prepared.network_input[None])[0]
                automatic, _ = colorizer.guide(prepared, logits)
                base = metrics.psnr(np.asarray(colorizer.finish(prepared, automatic)), photo.pixels)
                for kind, palette in (("self", palettes[index]), ("shuffled", None)):
                    palette = palettes[partners[index]] if palette is None else palette
                    previous = automatic
                    for strength in strengths:
                        ab, _ = colorizer.guide(prepared, logits, (), palette, strength)
                        out = np.asarray(colorizer.finish(prepared, ab))
                        key = f"{kind}@{strength:g}"
                        row = sums.setdefault(key, [0.0, 0.0, 0.0])
                        row[0] += metrics.psnr(out, photo.pixels) - base
                        row[1] += float((ab - automatic).norm(dim=0).mean())
                        if previous is not automatic:
                            row[2] += float((ab - previous).norm(dim=0).mean())
                        previous = ab
        finally:
            distribution.reweight = original
        results[name] = {
            key: {
                "psnr": round(psnr / len(photos), 3),
                "shift": round(shift / len(photos), 2),
                "step": round(step / len(photos), 2),
            }
            for key, (psnr, shift, step) in sums.items()
        }
    return len(photos), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", required=True, help="folder or .txt list")
    parser.add_argument("--weights", help="default: the bundled weights")
    parser.add_argument("--strengths", default="1,2,4")
    parser.add_argument("--rules", default="former,default")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    colorizer = Colorizer.from_pretrained(args.weights, device="cpu")
    strengths = [float(s) for s in args.strengths.split(",")]
    assert all(math.isfinite(s) and s > 0 for s in strengths), "strengths must be above 0"
    start = time.perf_counter()
    count, results = measure(
        colorizer, photos_of(args.data, args.limit), args.rules.split(","), strengths
    )
    summary: dict = {"photos": count, "weights": args.weights or "bundled"}
    for name, rows in results.items():
        for key, row in rows.items():
            summary[f"{name} {key}"] = row
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print_and_save(summary, args.out)


if __name__ == "__main__":
    main()
