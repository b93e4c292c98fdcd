"""Placement: how many workers a cluster's nodes take, what each reserves, and the units of work
they are handed. Pure arithmetic on the nodes' resources; no Ray."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..engines.batch import Job

_CPUS_PER_CPU_WORKER = 1
"""CPU-only clusters: one worker per CPU by default, each running torch on one thread. Processes
scale better than threads here: on this project's 2-core machine, two one-thread workers
colorize about 20 % more photos per second than one worker on two threads (README: Ray)."""
_WORKER_MEMORY = 3 << 29
"""What a worker may need, 1.5 GiB: a batch holds at most about 32 M pixels, about 1.3 GB at its
peak. By default no more CPU workers go on a node than its Ray memory holds."""
_UNITS_PER_WORKER = 4
"""Photos are cut into at least this many units per worker (up to ``batch_size`` photos each),
so that a small run ends with the workers finishing together, not one alone on a last unit."""


@dataclass(frozen=True)
class WorkerShape:
    """How many actors, and what each reserves."""

    workers: int
    cpus: float
    gpus: float

    def describe(self) -> str:
        def amount(value: float, noun: str) -> str:
            text = f"{value:g}"
            return f"{text} {noun}{'' if value == 1 else 's'}"

        parts = [amount(self.cpus, "CPU")]
        if self.gpus:
            parts.append(amount(self.gpus, "GPU"))
        return f"{self.workers} worker{'' if self.workers == 1 else 's'} ({', '.join(parts)} each)"


def worker_shape(nodes: Sequence[dict[str, float]], workers: int | None = None) -> WorkerShape:
    """Size the actor pool for ``nodes`` (each node's ``CPU`` and ``GPU`` resources).

    Where there are GPUs: one worker per GPU by default; more workers share GPUs (a half each
    for twice as many, and so on; decoding and encoding then use more CPUs per GPU). Without:
    one worker per :data:`_CPUS_PER_CPU_WORKER` CPUs, as many as each node's ``memory`` holds
    (:data:`_WORKER_MEMORY` each, where the node says), at least one. Each worker gets as many
    whole CPUs as still lets all of them fit on the nodes (where they fit at all).
    """
    gpu_nodes = [node for node in nodes if node.get("GPU", 0) >= 1]
    total_gpus = sum(math.floor(node["GPU"]) for node in gpu_nodes)
    usable = gpu_nodes or list(nodes)
    total_cpus = sum(node.get("CPU", 0) for node in usable)
    if workers is None:
        workers = total_gpus or max(1, sum(_cpu_workers(node) for node in usable))
    share = 1 / math.ceil(workers / total_gpus) if total_gpus else 0.0
    per_gpu = round(1 / share) if share else 0

    def fit(cpus: int) -> int:
        count = 0
        for node in usable:
            on_node = math.floor(node.get("CPU", 0) / cpus)
            if per_gpu:
                on_node = min(on_node, math.floor(node.get("GPU", 0)) * per_gpu)
            count += on_node
        return count

    most = int(max((node.get("CPU", 0) for node in usable), default=0))
    for cpus in range(most, 0, -1):
        if fit(cpus) >= workers:
            return WorkerShape(workers, float(cpus), share)
    # More workers than CPUs: shares of CPUs (torch then runs one thread each).
    return WorkerShape(workers, max(total_cpus, 1) / workers, share)


def _cpu_workers(node: dict[str, float]) -> int:
    """How many CPU-only workers ``node`` takes by default."""
    count = int(node.get("CPU", 0)) // _CPUS_PER_CPU_WORKER
    if "memory" in node:
        count = min(count, int(node["memory"] // _WORKER_MEMORY))
    return count


def plan_units(jobs: Sequence[Job], batch_size: int, workers: int = 1) -> list[list[Job]]:
    """Films one by one (first: the longest pieces of work), then photos in units of up to
    ``batch_size``, smaller where that gives each worker :data:`_UNITS_PER_WORKER` units."""
    films = [[job] for job in jobs if job.film]
    photos = [job for job in jobs if not job.film]
    size = max(1, min(batch_size, math.ceil(len(photos) / (_UNITS_PER_WORKER * workers))))
    return films + [photos[i : i + size] for i in range(0, len(photos), size)]


__all__ = ["WorkerShape", "worker_shape"]
