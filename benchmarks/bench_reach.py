"""What many hint pixels cost the region-aware propagation (issue 21's hint reach).

Long brush strokes give hundreds of hint pixels. :func:`jkspnet.pipeline.propagation.hint_reach`
runs one Dijkstra per distinct hint pixel up to ``REACH_SOURCES`` and merges them by grid cells
beyond. For each count of random hint pixels on a 128 x 96 grid (the reduced grid of a 4:3
photo) with 313 feature channels, this reports the median time of :func:`propagate` (the whole
solve, as a re-render runs it) and of ``hint_reach`` with merging and exactly (no limit), the
size of the exact run's distance matrix, and the largest difference between the two reaches
(small on smooth surfaces; across many edges inside one 8 x 8 cell the merged reach is coarser).

    python benchmarks/bench_reach.py --counts 50,500,2000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from jkspnet.media.hints import ABTarget
from jkspnet.pipeline.propagation import hint_reach, propagate


def _median_seconds(work, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="50,500,2000", help="hint pixels, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the figures as JSON")
    args = parser.parse_args()

    height, width = 96, 128
    rng = np.random.default_rng(0)
    lightness = 50.0 + 3.0 * rng.standard_normal((height, width))  # a smooth, noisy surface
    logits = torch.from_numpy(rng.normal(0, 2, (1, 313, height // 8, width // 8)))
    smooth = F.interpolate(logits, size=(height, width), mode="bilinear")
    features = torch.softmax(smooth, dim=1).sqrt()[0].float().numpy()  # as Colorizer.guide's
    # smooth, as a network's distributions are; per-pixel noise in 313 channels would make every
    # grid step an edge
    prior, confidence = np.zeros((2, height, width)), np.zeros((height, width))
    rows = []
    for count in (int(part) for part in args.counts.split(",")):
        # distinct grid pixels, so that ``count`` is the number of Dijkstra sources
        picks = rng.choice(height * width, count, replace=False)
        targets = [ABTarget(x=i % width + 0.5, y=i // width + 0.5, a=20, b=10) for i in picks]
        merged = hint_reach(lightness, targets, features=features)
        exact = hint_reach(lightness, targets, features=features, max_sources=10**9)
        row = {
            "hint_pixels": count,
            "propagate_s": round(
                _median_seconds(
                    lambda t=targets: propagate(lightness, prior, confidence, t, features=features),
                    args.rounds,
                ),
                3,
            ),
            "reach_merged_s": round(
                _median_seconds(
                    lambda t=targets: hint_reach(lightness, t, features=features), args.rounds
                ),
                3,
            ),
            "reach_exact_s": round(
                _median_seconds(
                    lambda t=targets: hint_reach(
                        lightness, t, features=features, max_sources=10**9
                    ),
                    args.rounds,
                ),
                3,
            ),
            "exact_distance_matrix_mb": round(count * height * width * 8 / 1e6, 1),
            "max_reach_difference": round(float(np.abs(merged - exact).max()), 4),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(rows, file, indent=2)


if __name__ == "__main__":
    main()
