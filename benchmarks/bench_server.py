"""Load test of ``jkspnet serve``: N requests at concurrency C with a real photo.

Starts a server (``python -m jkspnet serve``) on a free port, or targets one with ``--url``, and
posts a real photo (scikit-image's astronaut, resized, or ``--photo``) from C threads. Reports the
error count (must be 0) and the answers by HTTP status (5xx counted apart), latency p50/p95,
throughput and, for a server it started, its resident memory before the load and its peak
(VmHWM) after it. Exits 1 if any request failed. Without ``--weights`` (and no bundled weights)
it saves fresh, untrained weights: fine for timing, meaningless for colours.

    python benchmarks/bench_server.py --requests 500 --concurrency 16 --out bench-server.json
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image
from results import print_and_save


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photo_bytes(path: str | None, side: int) -> tuple[bytes, str, tuple[int, int]]:
    if path:
        data = Path(path).read_bytes()
        return data, Path(path).name, Image.open(io.BytesIO(data)).size
    import skimage.data

    image = Image.fromarray(skimage.data.astronaut()).convert("L")
    image = image.resize((side, side * 3 // 4), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), "astronaut.jpg", image.size


def memory_mib(pid: int, field: str = "VmHWM") -> float | None:
    """A memory figure of a process from /proc (VmHWM: peak resident, VmRSS: resident now)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def start_server(args: argparse.Namespace, folder: Path) -> tuple[subprocess.Popen, str]:
    weights = args.weights
    if weights is None:
        from jkspnet.nn.weights import bundled_weights

        if bundled_weights() is None:
            import torch

            from jkspnet import Colorizer, JKSPNet

            torch.manual_seed(0)
            weights = str(folder / "fresh-weights")
            Colorizer.from_model(JKSPNet(), device="cpu").save_pretrained(weights)
            print("note: no weights given or bundled; using fresh, untrained weights (timing only)")
    port = free_port()
    command = [sys.executable, "-m", "jkspnet", "serve", "--port", str(port)]
    command += ["--device", args.device, "--workers", str(args.workers)]
    command += ["--batch-size", str(args.batch_size), "--queue", str(args.queue)]
    if weights:
        command += ["--weights", str(weights)]
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited:\n{(folder / 'server.log').read_text()}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    sys.exit("server did not answer within 120 s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_load(url: str, data: bytes, name: str, size: tuple[int, int], args) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    local = threading.local()

    def one(_: int) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=300)
        started = time.perf_counter()
        try:
            response = local.client.post(
                f"{url}/api/colorize", files={"image": (name, data, "image/jpeg")}
            )
            status = str(response.status_code)
            ok = response.status_code == 200
            if ok:
                ok = Image.open(io.BytesIO(response.content)).size == size
            problem = None if ok else f"{response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as error:
            status, problem = type(error).__name__, f"{type(error).__name__}: {error}"
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            statuses[status] += 1
            if problem:
                errors.append(problem)

    for _ in range(args.warmup):  # first requests pay for lazy set-up
        one(0)
    latencies.clear()
    errors.clear()
    statuses.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, range(args.requests)))
    wall = time.perf_counter() - started
    return {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "errors": len(errors),
        "statuses": dict(sorted(statuses.items())),
        "server_errors_5xx": sum(n for code, n in statuses.items() if code.startswith("5")),
        "first_errors": errors[:3],
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(percentile(latencies, 95), 3),
        "max_s": round(max(latencies), 3),
        "throughput_per_s": round(args.requests / wall, 2),
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="target a running server instead of starting one")
    parser.add_argument("--weights", help="weights for the server it starts")
    parser.add_argument("--photo", help="photo to send (default: astronaut, greyscale JPEG)")
    parser.add_argument("--side", type=int, default=512, help="astronaut's width (512)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--queue", type=int, default=16)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    data, name, size = photo_bytes(args.photo, args.side)
    with tempfile.TemporaryDirectory(prefix="jkspnet-bench-") as folder:
        process = None
        url = args.url
        if url is None:
            process, url = start_server(args, Path(folder))
        try:
            health = httpx.get(f"{url}/api/health", timeout=10).json()
            before = memory_mib(process.pid, "VmRSS") if process else None
            result = run_load(url.rstrip("/"), data, name, size, args)
            result["server_rss_start_mib"] = before
            result["server_peak_rss_mib"] = memory_mib(process.pid) if process else None
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    result.update(
        {
            "photo": f"{name} {size[0]}x{size[1]}, {len(data):,} bytes",
            "device": health.get("device"),
            "weights_sha256": health.get("weights_sha256"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        }
    )
    print_and_save(result, args.out)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
