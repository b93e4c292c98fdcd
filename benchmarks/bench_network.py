"""Network inference throughput at 128x128 on this machine: eager NCHW vs channels_last.

Variants are measured alternately in one process (this machine's speed drifts over minutes) and
the median of the rounds is reported. Prints a table and writes JSON.

    python benchmarks/bench_network.py --batch 16 --rounds 5 --out bench-network.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from jkspnet import JKSPNet

FLOP_PER_IMAGE = 25.96e9  # forward at 128x128, by torch.utils.flop_counter (see test_model)


def measure(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        return repeats * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="forwards per timed sample")
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()

    torch.manual_seed(0)
    eager = JKSPNet().eval()
    channels_last = JKSPNet().eval().to(memory_format=torch.channels_last)
    channels_last.load_state_dict(eager.state_dict())
    x = torch.randn(args.batch, 1, args.size, args.size) * 30
    variants = {
        "eager NCHW fp32": (eager, x),
        "channels_last fp32": (channels_last, x.contiguous(memory_format=torch.channels_last)),
    }
    for model, inp in variants.values():  # warm-up
        measure(model, inp, 1)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (model, inp) in variants.items():
            samples[name].append(measure(model, inp, args.repeats))

    flop = FLOP_PER_IMAGE * (args.size / 128) ** 2
    base = statistics.median(samples["eager NCHW fp32"])
    results = []
    print(
        f"batch {args.batch}, {args.size}x{args.size}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )
    print(f"{'variant':<22}{'img/s':>10}{'GFLOP/s':>10}{'vs eager':>10}")
    for name, values in samples.items():
        median = statistics.median(values)
        results.append(
            {
                "variant": name,
                "img_per_s": median,
                "gflop_per_s": median * flop / 1e9,
                "samples": values,
            }
        )
        print(f"{name:<22}{median:>10.2f}{median * flop / 1e9:>10.1f}{median / base:>10.2f}x")
    if args.out:
        with open(args.out, "w") as stream:
            json.dump(
                {
                    "batch": args.batch,
                    "size": args.size,
                    "threads": torch.get_num_threads(),
                    "torch": torch.__version__,
                    "results": results,
                },
                stream,
                indent=2,
            )


if __name__ == "__main__":
    main()
