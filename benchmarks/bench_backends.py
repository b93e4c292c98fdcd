"""Network throughput at 128x128 by backend: eager, channels_last, bf16, compile, ONNX Runtime,
and JKSPNet's own inference form (``jkspnet.nn.inference.InferenceNet``, what ``jkspnet colorize``
runs: bf16 on CPUs with native bf16, else fp32).

For each batch size the variants are measured alternately in one process (this machine's speed
drifts over minutes) and the median of the rounds is reported, as img/s, GFLOP/s and the
fraction of a large matmul's rate in the variant's arithmetic, measured in the same run
(``torch.matmul`` of 4096x4096: fp32 by the BLAS that ``torch.__config__`` names, bf16 by
oneDNN, which uses AMX where the CPU has it). Prints a table and writes JSON.
torch.compile's first call per batch (compilation) is timed apart. On a CPU without native bf16
(AVX2 only, no AVX512-BF16 or AMX) the bf16 peak and the bf16 variants are skipped, and the header
says so: PyTorch's single-threaded fallback there ran for over 13 minutes (``--force-bf16``
measures them anyway).

    python benchmarks/bench_backends.py --batches 1 8 32 --rounds 3 --out bench-backends.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from jkspnet import JKSPNet
from jkspnet.nn.backends.torch_network import cpu_has_native_bf16
from jkspnet.nn.inference import InferenceNet
from jkspnet.nn.weights import ModelConfig

FLOP_PER_IMAGE = 25.96e9  # forward at 128x128, by torch.utils.flop_counter (see test_model)
VARIANTS = (
    "eager NCHW fp32",
    "channels_last fp32",
    "bf16 autocast",
    "torch.compile",
    "compile bf16",
    "onnxruntime",
    "InferenceNet fp32",
    "InferenceNet bf16",
)
BF16 = {"bf16 autocast", "compile bf16", "InferenceNet bf16"}


def _timed(fn: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def matmul_peak(n: int = 4096, rounds: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an n x n matmul in ``dtype`` (median of ``rounds``)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    seconds = [_timed(lambda: torch.matmul(a, b), 1) for _ in range(rounds)]
    return 2 * n**3 / statistics.median(seconds) / 1e9


def blas_name() -> str:
    config = torch.__config__.show()
    match = re.search(r"BLAS_INFO=(\w+)", config)
    return match.group(1) if match else "unknown"


def build_variants(
    model: JKSPNet, onnx_path: Path | None, wanted: set[str]
) -> dict[str, Callable[[torch.Tensor], object]]:
    channels_last = JKSPNet().eval().to(memory_format=torch.channels_last)
    channels_last.load_state_dict(model.state_dict())
    variants: dict[str, Callable[[torch.Tensor], object]] = {}
    if "eager NCHW fp32" in wanted:
        variants["eager NCHW fp32"] = model
    if "channels_last fp32" in wanted:
        variants["channels_last fp32"] = lambda x: channels_last(
            x.contiguous(memory_format=torch.channels_last)
        )
    if "bf16 autocast" in wanted:

        def bf16(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return channels_last(x.contiguous(memory_format=torch.channels_last)).float()

        variants["bf16 autocast"] = bf16
    if "torch.compile" in wanted:
        compiled = torch.compile(channels_last)  # mode default
        variants["torch.compile"] = lambda x: compiled(
            x.contiguous(memory_format=torch.channels_last)
        )
    if "compile bf16" in wanted:
        compiled_bf16 = torch.compile(channels_last)

        def compile_bf16(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return compiled_bf16(x.contiguous(memory_format=torch.channels_last)).float()

        variants["compile bf16"] = compile_bf16
    if "onnxruntime" in wanted and onnx_path is not None:
        from jkspnet.nn.backends.onnxruntime_network import OnnxNetwork

        session = OnnxNetwork(onnx_path, device="cpu")
        variants["onnxruntime"] = lambda x: session.ab_at(x, [1.0])[0]
    for dtype, name in (
        (torch.float32, "InferenceNet fp32"),
        (torch.bfloat16, "InferenceNet bf16"),
    ):
        if name in wanted:
            net = InferenceNet(channels_last, dtype)
            variants[name] = lambda x, net=net: net(x.contiguous(memory_format=torch.channels_last))
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sample-seconds", type=float, default=0.5, help="least time per timed sample"
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--force-bf16",
        action="store_true",
        help="measure bf16 even on a CPU without native bf16 (a slow software fallback)",
    )
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = JKSPNet().eval()
    peaks = {"fp32": matmul_peak()}
    wanted = set(args.variants)
    if cpu_has_native_bf16() or args.force_bf16:
        peaks["bf16"] = matmul_peak(dtype=torch.bfloat16)
        bf16_text = f"bf16 {peaks['bf16']:.1f} GFLOP/s"
    else:  # the fallback ran for over 13 minutes on an AVX2-only CPU: measure nothing of it
        wanted -= BF16
        bf16_text = "bf16 skipped (no AVX512-BF16/AMX on this CPU; --force-bf16 to measure)"
    print(
        f"{args.size}x{args.size}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}; matmul 4096^2: fp32 ({blas_name()}) "
        f"{peaks['fp32']:.1f} GFLOP/s, {bf16_text}"
    )
    flop = FLOP_PER_IMAGE * (args.size / 128) ** 2
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = None
        if "onnxruntime" in wanted:
            from jkspnet.nn.export import export_onnx

            onnx_path = export_onnx(model, ModelConfig(size=args.size), Path(tmp) / "m.onnx")
        variants = build_variants(model, onnx_path, wanted)
        header = f"{'batch':>5}  {'variant':<20}{'img/s':>9}{'GFLOP/s':>9}{'of peak':>9}"
        print(header + f"{'vs eager':>10}  note")
        for batch in args.batches:
            x = torch.randn(batch, 1, args.size, args.size) * 30
            notes: dict[str, str] = {}
            repeats: dict[str, int] = {}
            with torch.inference_mode():
                for name, fn in variants.items():  # warm-up; compilation happens here
                    first = _timed(lambda fn=fn, x=x: fn(x), 1)
                    if name.startswith("compile") or name == "torch.compile":
                        notes[name] = f"first call (compile) {first:.1f} s"
                    second = _timed(lambda fn=fn, x=x: fn(x), 1)
                    repeats[name] = max(1, round(args.sample_seconds / second))
                samples: dict[str, list[float]] = {name: [] for name in variants}
                for _ in range(args.rounds):
                    for name, fn in variants.items():
                        seconds = _timed(lambda fn=fn, x=x: fn(x), repeats[name])
                        samples[name].append(batch / seconds)
            base = statistics.median(samples.get("eager NCHW fp32", [float("nan")]))
            for name, values in samples.items():
                median = statistics.median(values)
                gflops = median * flop / 1e9
                peak = peaks["bf16" if name in BF16 else "fp32"]
                results.append(
                    {
                        "batch": batch,
                        "variant": name,
                        "img_per_s": median,
                        "gflop_per_s": gflops,
                        "fraction_of_matmul_peak": gflops / peak,
                        "samples": values,
                        "note": notes.get(name, ""),
                    }
                )
                print(
                    f"{batch:>5}  {name:<20}{median:>9.2f}{gflops:>9.1f}{gflops / peak:>9.2f}"
                    f"{median / base:>9.2f}x  {notes.get(name, '')}",
                    flush=True,
                )
    if args.out:
        with open(args.out, "w") as stream:
            json.dump(
                {
                    "size": args.size,
                    "threads": torch.get_num_threads(),
                    "torch": torch.__version__,
                    "matmul_peak_gflop_per_s": peaks,
                    "blas": blas_name(),
                    "results": results,
                },
                stream,
                indent=2,
            )


if __name__ == "__main__":
    main()
