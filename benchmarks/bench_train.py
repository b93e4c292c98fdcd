"""Training throughput (img/s) of full steps at 128x128: eager vs channels_last vs bf16 autocast.

A step is what `jkspnet train` does: logits and decoded ab, the rebalanced soft-encoded loss,
backward, gradient clipping and AdamW. Variants are measured alternately in one process; the
median of the rounds is reported. On a GPU, pass --device cuda --batch 256 --peak-tflops P
(P: the card's dense bf16 peak, e.g. 989 for an H100 SXM) to get the MFU.

    python benchmarks/bench_train.py --batch 8 --rounds 3 --out bench-train.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from jkspnet import JKSPNet
from jkspnet.training.losses import ColorizationLoss

FLOP_PER_IMAGE_FWD = 25.96e9  # 128x128 forward, by torch.utils.flop_counter
TRAIN_FACTOR = 3  # forward + backward is about three forwards


def make_step(channels_last: bool, bf16: bool, device: torch.device, batch: int, size: int):
    torch.manual_seed(0)
    net = JKSPNet().to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    loss_fn = ColorizationLoss().to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, size, size, device=device) * 20
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ab = torch.randn(batch, 2, size, size, device=device) * 20

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = net.logits(x)
            prediction = net.decode(logits)
        loss = loss_fn(logits, prediction, ab)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()

    return step


def timed(step, repeats: int, device: torch.device, batch: int) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="steps per timed sample")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="for MFU (GPU)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)

    variants = {
        "eager NCHW fp32": make_step(False, False, device, args.batch, args.size),
        "channels_last fp32": make_step(True, False, device, args.batch, args.size),
        "channels_last bf16": make_step(True, True, device, args.batch, args.size),
    }
    for step in variants.values():
        step()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            samples[name].append(timed(step, args.repeats, device, args.batch))

    flop = FLOP_PER_IMAGE_FWD * TRAIN_FACTOR * (args.size / 128) ** 2
    base = statistics.median(samples["eager NCHW fp32"])
    print(
        f"training, batch {args.batch}, {args.size}x{args.size}, {args.device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"{'variant':<22}{'img/s':>10}{'TFLOP/s':>10}{'vs eager':>10}{'MFU':>8}")
    results = []
    for name, values in samples.items():
        median = statistics.median(values)
        tflops = median * flop / 1e12
        mfu = tflops / args.peak_tflops if args.peak_tflops else None
        results.append(
            {
                "variant": name,
                "img_per_s": median,
                "tflop_per_s": tflops,
                "mfu": mfu,
                "samples": values,
            }
        )
        mfu_text = f"{mfu:.1%}" if mfu is not None else "-"
        print(f"{name:<22}{median:>10.2f}{tflops:>10.3f}{median / base:>9.2f}x{mfu_text:>8}")
    if args.out:
        with open(args.out, "w") as stream:
            json.dump(
                {"batch": args.batch, "size": args.size, "device": args.device, "results": results},
                stream,
                indent=2,
            )


if __name__ == "__main__":
    main()
