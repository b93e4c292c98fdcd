"""`jkspnet colorize FOLDER` with and without `--ray`, on this machine, in the same run.

The folder: --count greyscale JPEGs of --megapixels each, made from real photos (once, before
timing). Two variants, alternated round by round over the whole folder with the bundled weights,
each as its own process, as a user runs them (imports and weights loading included):

  - plain: `python -m jkspnet colorize FOLDER -o OUT -q`;
  - ray: the same with `--ray`: a local Ray started, its workers, Ray stopped;
  - with --warm, ray_warm: `--ray HOST:PORT` on a Ray already running (`ray start --head`,
    started before the rounds), as on a cluster that serves many runs: actors and scheduling,
    without Ray's own start and stop; its daemons' CPU time counts. Head and driver
    run with RAY_AUTH_MODE=token (Ray 2.5x's token authentication, one ~/.ray/auth_token):
    without it the join is refused.

Ray runs its workers at a lower priority (nice +15) than the driver; here they run at the
plain process's (RAY_worker_niceness=0), so that a busy machine favours neither. Both Ray
variants size their workers by default: on a machine without GPUs, one one-thread worker per
CPU. Reported:
wall seconds and CPU seconds (the whole machine's busy time from the start of the process
until all it started has ended: Ray's daemons and workers included, and a warm head's idle
daemons; run it on a quiet machine), medians of --rounds; files per second; the overhead of
`--ray` in both. On a busy machine both move: wall time with the others' load, CPU time with
threads spinning while they wait for a core. Then the per-photo CPU cost of each stage
on one thread at --stage-megapixels (decode; L and the network's input; the network in a batch
of 16; upsampling and LAB to RGB; encode and write), from which README's table projects larger
runs. Each round also times a bare local `ray.init` and `ray.shutdown` in a process of their own.

    python benchmarks/bench_cluster.py --photos photos --rounds 3 --out bench-cluster.json
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch
from PIL import Image
from results import print_and_save

from jkspnet import Colorizer
from jkspnet.media.photos import load_photo, save_photo


def make_folder(sources: list[Path], count: int, megapixels: float, folder: Path) -> None:
    """``count`` greyscale JPEGs of ``megapixels`` each, keeping their sources' aspect."""
    for index in range(count):
        with Image.open(sources[index % len(sources)]) as photo:
            aspect = photo.width / photo.height
            width = round((megapixels * 1e6 * aspect) ** 0.5)
            height = round(width / aspect)
            grey = photo.convert("L").resize((width, height), Image.Resampling.BICUBIC)
        grey.save(folder / f"scan_{index:03d}.jpg", quality=90)


EQUAL_NICENESS = {**os.environ, "RAY_worker_niceness": "0", "RAY_AUTH_MODE": "token"}


def adopt_orphans() -> None:
    """Become the reaper of this process's orphaned descendants (Linux): Ray's daemons and
    workers outlive the driver for a moment, and their CPU time counts only once reaped."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def children() -> set[int]:
    """This process's children now (Linux)."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        found.update(int(pid) for pid in (task / "children").read_text().split())
    return found


def reap_all(keep: set[int], timeout: float = 120.0) -> None:
    """Wait for the children left (adopted orphans included) but ``keep``, so that their CPU
    time counts."""
    deadline = time.monotonic() + timeout
    while children() - keep and time.monotonic() < deadline:
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        time.sleep(0.1)


def start_head(environment: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`ray start --head --block` on a free port, just for this run (stopped by ending it:
    `ray stop` would stop every Ray on the machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
               "--node-ip-address=127.0.0.1", "--include-dashboard=false",
               "--object-store-memory=268435456", "--disable-usage-stats"]  # fmt: skip
    head = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
    time.sleep(20)  # until it listens; the first warm round would wait for it anyway
    return head, f"127.0.0.1:{port}"


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat, Linux): whatever a
    run starts, wherever Ray re-parents it, is in the difference."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def colorize(folder: Path, out: Path, *extra: str, keep: set[int]) -> tuple[float, float]:
    """Wall seconds of one `jkspnet colorize` process, and the machine's busy CPU seconds
    meanwhile (until all it started has ended)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "jkspnet", "colorize", str(folder), "-o", str(out), "-q"]
    before = machine_busy()
    start = time.perf_counter()
    done = subprocess.run([*command, *extra], env=EQUAL_NICENESS, capture_output=True, text=True)
    wall = time.perf_counter() - start
    reap_all(keep)
    cpu = machine_busy() - before
    if done.returncode != 0:
        raise SystemExit(f"jkspnet colorize {' '.join(extra)} failed:\n{done.stderr}")
    return wall, cpu


RAY_START_STOP = """
import logging, time, ray
from jkspnet.cluster.driver import _LOCAL_OBJECT_STORE
start = time.perf_counter()
ray.init(address="local", include_dashboard=False, object_store_memory=_LOCAL_OBJECT_STORE,
         logging_level=logging.WARNING)
started = time.perf_counter()
ray.shutdown()
print(started - start, time.perf_counter() - started)
"""


def ray_start_stop(keep: set[int]) -> tuple[float, float]:
    """Seconds of a bare local ``ray.init`` and ``ray.shutdown``, with the options ``--ray``
    starts its own Ray with: the part of a cold run's overhead that no design on Ray avoids."""
    done = subprocess.run(
        [sys.executable, "-c", RAY_START_STOP], env=EQUAL_NICENESS, capture_output=True, text=True
    )
    reap_all(keep)
    if done.returncode != 0:
        raise SystemExit(f"a bare ray.init failed:\n{done.stderr}")
    init, shutdown = (float(value) for value in done.stdout.split())
    return init, shutdown


def stage_costs(sources: list[Path], megapixels: float, work: Path) -> dict[str, float]:
    """CPU milliseconds per photo of each stage, on one thread, for a batch of 16 photos of
    ``megapixels`` (CPU time, not wall time: other work on the machine barely moves it)."""
    folder = work / "stages-in"
    folder.mkdir()
    make_folder(sources, 16, megapixels, folder)
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # OpenCV's per-pixel stages: their workers' time is not this thread's
    colorizer = Colorizer.from_pretrained(device="cpu")
    paths = sorted(folder.glob("*.jpg"))
    clock = {"decode": 0.0, "lightness": 0.0, "network": 0.0, "finish": 0.0, "encode": 0.0}

    def timed(stage: str, function, *args):
        start = time.thread_time()
        result = function(*args)
        clock[stage] += time.thread_time() - start
        return result

    colorizer.predict_ab(torch.zeros(1, 1, colorizer.config.size, colorizer.config.size))  # warm
    photos = [timed("decode", load_photo, path) for path in paths]
    prepared = [timed("lightness", colorizer.prepare, photo) for photo in photos]
    inputs = [item.network_input for item in prepared]  # aspect-shaped: grouped by shape
    ab = timed("network", colorizer.predict_ab_list, inputs)
    for index, (item, ab_one) in enumerate(zip(prepared, ab, strict=True)):
        image = timed("finish", colorizer.finish, item, ab_one)
        timed("encode", save_photo, image, work / f"stage-{index}.jpg", True)
    torch.set_num_threads(threads)
    cv2.setNumThreads(cv2_threads)
    return {stage: 1000 * seconds / len(paths) for stage, seconds in clock.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="photos", help="folder of source photos")
    parser.add_argument("--count", type=int, default=72)
    parser.add_argument("--megapixels", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--stage-megapixels", type=float, default=2.0, help="photo size for the stage costs"
    )
    parser.add_argument(
        "--warm", action="store_true", help="also time --ray on a running `ray start --head`"
    )
    parser.add_argument(
        "--stages-only", action="store_true", help="only the per-stage CPU costs, no folder runs"
    )
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()
    if args.stages_only:
        sources = sorted(Path(args.photos).glob("*.jpg")) or [Path("examples/lighthouse.jpg")]
        with tempfile.TemporaryDirectory(prefix="bench-stages-") as work:
            costs = stage_costs(sources, args.stage_megapixels, Path(work))
        result = {"stage_costs_at": f"{args.stage_megapixels:g} MP, one thread, batch of 16"}
        result.update({f"{stage}_cpu_ms_per_photo": round(ms, 1) for stage, ms in costs.items()})
        print_and_save(result, args.out)
        return

    adopt_orphans()
    sources = sorted(Path(args.photos).glob("*.jpg")) or [Path("examples/lighthouse.jpg")]
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    variants: dict[str, tuple[str, ...]] = {"plain": (), "ray": ("--ray",)}
    head = None
    if args.warm:
        head, address = start_head(EQUAL_NICENESS)
        variants["ray_warm"] = ("--ray", address)
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    ray_init: list[float] = []
    ray_shutdown: list[float] = []
    try:
        folder = work / "in"
        folder.mkdir()
        make_folder(sources, args.count, args.megapixels, folder)
        for round_ in range(args.rounds):
            for name, extra in variants.items():
                keep = {head.pid} if head else set()
                seconds, cpu_seconds = colorize(folder, work / name, *extra, keep=keep)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
                print(f"round {round_ + 1}: {name}: {seconds:.1f} s, {cpu_seconds:.1f} CPU s",
                      flush=True)  # fmt: skip
            init, shutdown = ray_start_stop(keep={head.pid} if head else set())
            ray_init.append(init)
            ray_shutdown.append(shutdown)
        costs = stage_costs(sources, args.stage_megapixels, work)
    finally:
        if head is not None:
            head.terminate()  # `ray start --block` stops its own Ray on SIGTERM
            head.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)

    median_wall = {name: statistics.median(values) for name, values in wall.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    result = {
        "photos": f"{args.count} greyscale JPEGs of {args.megapixels:g} MP",
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        **{f"{name}_s": round(value, 1) for name, value in median_wall.items()},
        **{f"{name}_cpu_s": round(value, 1) for name, value in median_cpu.items()},
        **{f"{name}_files_per_s": round(args.count / v, 2) for name, v in median_wall.items()},
        **{
            f"overhead_{kind}{name[3:]}": f"{median[name] / median['plain'] - 1:+.1%}"
            for kind, median in (("wall", median_wall), ("cpu", median_cpu))
            for name in variants
            if name != "plain"
        },
        "bare_ray_init_s": round(statistics.median(ray_init), 2),
        "bare_ray_shutdown_s": round(statistics.median(ray_shutdown), 2),
        "stage_costs_at": f"{args.stage_megapixels:g} MP, one thread, batch of 16",
        **{f"{stage}_cpu_ms_per_photo": round(ms, 1) for stage, ms in costs.items()},
        "wall_s": {name: [round(v, 1) for v in values] for name, values in wall.items()},
        "cpu_s": {name: [round(v, 1) for v in values] for name, values in cpu.items()},
    }
    print_and_save(result, args.out)


if __name__ == "__main__":
    main()
