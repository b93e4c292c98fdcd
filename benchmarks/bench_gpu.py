"""GPU figures in one run: matmul peak, network inference img/s, training img/s and MFU, 24 MP.

Everything is measured in the same process, variants alternately, medians reported:
  - peak: a large bf16 matrix product (the ceiling the others are compared with);
  - inference at 128x128, batch --batch: eager fp32 (TF32 off), channels_last fp32, channels_last
    bf16 autocast, JKSPNet's InferenceNet in bf16 (the default path), and channels_last bf16 under
    torch.compile (compile time reported) unless --no-compile;
  - training steps (as `jkspnet train` does them, see bench_train.py) at batch --train-batch in
    bf16, as img/s and MFU against the measured peak and the card's datasheet figure;
  - one 24-megapixel photo through `Colorizer.colorize` on the GPU (bundled weights), seconds;
  - with --photos DIR, the crops/s the training data loader delivers (is it the bottleneck?);
  - with --profile, a table of where a training step's time goes.
Progress goes to stderr as it happens, so a run cut short still says how far it got.

    python benchmarks/bench_gpu.py --photos photos --profile --out bench-gpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from bench_train import FLOP_PER_IMAGE_FWD, TRAIN_FACTOR, make_step
from PIL import Image

from jkspnet import JKSPNet
from jkspnet.nn.inference import InferenceNet
from jkspnet.pipeline.colorizer import Colorizer

DEVICE = torch.device("cuda")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def seconds(fn, repeats: int) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def matmul_peak(side: int = 8192) -> float:
    a = torch.randn(side, side, device=DEVICE, dtype=torch.bfloat16)
    b = torch.randn(side, side, device=DEVICE, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    return 2 * side**3 / seconds(lambda: a @ b, 10) / 1e12


def inference_variants(batch: int, size: int, compile_too: bool) -> dict[str, object]:
    torch.manual_seed(0)
    plain = JKSPNet().to(DEVICE).eval()
    fast = JKSPNet().to(DEVICE).eval().to(memory_format=torch.channels_last)
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(batch, 1, size, size, device=DEVICE) * 30
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def run(model, inp, bf16):
        def go():
            with torch.inference_mode(), torch.autocast(DEVICE.type, torch.bfloat16, enabled=bf16):
                model(inp)

        return go

    net = InferenceNet(fast, torch.bfloat16)  # what Colorizer runs (bf16 on CUDA)
    variants = {
        "eager NCHW fp32": run(plain, x, False),
        "channels_last fp32": run(fast, x_cl, False),
        "channels_last bf16": run(fast, x_cl, True),
        "InferenceNet bf16": lambda: net(x_cl),
    }
    compile_seconds = None
    if compile_too:
        compiled = torch.compile(fast)
        start = time.perf_counter()
        run(compiled, x_cl, True)()
        sync()
        compile_seconds = time.perf_counter() - start
        variants["compile channels_last bf16"] = run(compiled, x_cl, True)
    return {"variants": variants, "compile_seconds": compile_seconds}


def profile(step) -> None:
    """Print where a training step's time goes, by operator, to find what bounds it."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as run_profiler

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE.type == "cuda" else [])
    with run_profiler(activities=activities) as prof:
        for _ in range(3):
            step()
        sync()
    sort = "cuda_time_total" if DEVICE.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=20), flush=True)


def loader_throughput(photos: str, batch: int, size: int, workers: int = 6) -> float:
    """Crops per second that `jkspnet train`'s data loader delivers (cached photos, 256 side)."""
    from jkspnet.training.data import EpochSampler, PhotoCrops, list_photos, scan_photos

    scanned = scan_photos(list_photos([photos]), cache=True, load_side=256, threads=workers)
    crops = PhotoCrops(scanned.photos, crop_size=size, images=scanned.images, load_side=256)
    sampler = EpochSampler(crops, batch, 0, 1, seed=0, endless=True)
    loader = torch.utils.data.DataLoader(
        crops,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=True,
        prefetch_factor=4,
        pin_memory=DEVICE.type == "cuda",
    )
    batches = iter(loader)
    for _ in range(3):
        next(batches)
    count, start = 20, time.perf_counter()
    for _ in range(count):
        next(batches)
    rate = count * batch / (time.perf_counter() - start)
    print(f"data loader, {workers} workers, {size}x{size} crops: {rate:.0f} img/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="inference batch")
    parser.add_argument("--train-batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="passes per timed sample")
    parser.add_argument("--datasheet-tflops", type=float, default=989.0, help="dense bf16")
    parser.add_argument("--photo", default="examples/lighthouse.jpg", help="enlarged to 24 MP")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--matmul-side", type=int, default=8192)
    parser.add_argument("--photo-size", default="6000x4000", help="WxH of the enlarged photo")
    parser.add_argument("--device", default="cuda", help="cuda (cpu only to try the script)")
    parser.add_argument("--profile", action="store_true", help="kernel table of a training step")
    parser.add_argument("--photos", help="also time the training data loader on this folder")
    parser.add_argument("--workers", type=int, default=6, help="loader processes (--photos)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu"
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)

    peak = matmul_peak(args.matmul_side)
    print(f"bf16 matmul {args.matmul_side}^3: {peak:.1f} TFLOP/s", flush=True)

    inference = inference_variants(args.batch, args.size, not args.no_compile)
    steps = {"train channels_last bf16": make_step(True, True, DEVICE, args.train_batch, args.size)}
    timed = {**inference["variants"], **steps}
    for key, fn in timed.items():  # warm-up (cudnn.benchmark picks its algorithms here)
        print(f"warm-up {key}: {seconds(fn, 2) * 2:.1f} s", file=sys.stderr, flush=True)
    samples: dict[str, list[float]] = {key: [] for key in timed}
    for round_ in range(args.rounds):
        for key, fn in timed.items():
            samples[key].append(seconds(fn, args.repeats))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    scale = (args.size / 128) ** 2
    rows = []
    print(f"{'variant':<28}{'batch':>6}{'img/s':>11}{'TFLOP/s':>9}{'of peak':>9}{'MFU':>7}")
    for key, values in samples.items():
        training = key.startswith("train")
        batch = args.train_batch if training else args.batch
        per_image = FLOP_PER_IMAGE_FWD * scale * (TRAIN_FACTOR if training else 1)
        img_s = batch / statistics.median(values)
        tflops = img_s * per_image / 1e12
        row = {
            "variant": key,
            "batch": batch,
            "img_per_s": img_s,
            "tflop_per_s": tflops,
            "fraction_of_measured_peak": tflops / peak,
            "mfu_datasheet": tflops / args.datasheet_tflops,
            "seconds_per_pass": values,
        }
        rows.append(row)
        print(
            f"{key:<28}{batch:>6}{img_s:>11.1f}{tflops:>9.1f}{tflops / peak:>9.1%}"
            f"{tflops / args.datasheet_tflops:>7.1%}",
            flush=True,
        )
    if inference["compile_seconds"] is not None:
        print(f"torch.compile (first call): {inference['compile_seconds']:.1f} s")
    if args.profile:
        profile(steps["train channels_last bf16"])
    loader = (
        loader_throughput(args.photos, args.train_batch, args.size, args.workers)
        if args.photos
        else None
    )

    colorizer = Colorizer.from_pretrained(device=DEVICE)
    width, height = (int(side) for side in args.photo_size.split("x"))
    with Image.open(Path(args.photo)) as photo:
        big = photo.convert("L").resize((width, height), Image.Resampling.BICUBIC)
    colorizer.colorize(big)  # warm-up
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    photo_seconds = [seconds(lambda: colorizer.colorize(big), 1) for _ in range(3)]
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if DEVICE.type == "cuda" else 0.0
    print(
        f"{width * height / 1e6:.0f} MP photo ({width}x{height}) on {DEVICE.type}: "
        f"{statistics.median(photo_seconds):.2f} s (median of 3), peak GPU memory "
        f"{peak_gpu:.0f} MiB"
    )
    if args.out:
        result = {
            "device": name,
            "torch": torch.__version__,
            "matmul_bf16_tflops": peak,
            "size": args.size,
            "results": rows,
            "compile_seconds": inference["compile_seconds"],
            "photo_24mp_seconds": photo_seconds,
            "photo_24mp_peak_gpu_mib": peak_gpu,
            "loader_img_per_s": loader,
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
