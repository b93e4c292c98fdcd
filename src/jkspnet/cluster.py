"""Colorize an archive on a Ray cluster, resumably: ``jkspnet colorize INPUT... -o OUT --ray``.

Needs the ``[cluster]`` extra (Ray Data). What runs where:

- **The driver** (the process that calls :func:`colorize_files`, e.g. the command line) checks
  the plan as :func:`jkspnet.batch.colorize_files` does (clashes, outputs that would replace
  their input, existing outputs skipped unless ``overwrite``, folders that cannot be written),
  reads the manifest and leaves out what an earlier run already did, shows progress and appends
  each file's outcome to the manifest. It touches no pixels.
- **The work** is cut into units: up to ``batch_size`` photos (fewer where that gives each worker
  :data:`_UNITS_PER_WORKER` units), or one whole film (its frames stay in order for the
  stabiliser). Each unit is one block of a Ray Data dataset, mapped by an actor
  pool: every actor loads the Colorizer once (one GPU each, or a share of one, where the cluster
  has GPUs) and runs the batch engine, :func:`jkspnet.batch.colorize_files`, on its unit, so
  decoding, the network, encoding and the atomic write happen on the node where Ray placed the
  actor. Inputs, outputs and weights must be at the same paths on every node (shared storage).
- **Failures**: a bad photo is one failed outcome, as without Ray. An actor that dies (killed,
  out of memory, its node lost) is restarted by Ray and its in-flight units are retried; a file
  on which workers died :data:`TASK_RETRIES` times fails, and the run goes on.

Exactly once: an output is only ever placed by an atomic rename (:mod:`jkspnet.files`). Each unit
carries, for each of its files, what stood at the output when the driver planned it (nothing, or
the stat of the file ``overwrite`` will replace); a retried unit sees that something else stands
there now, knows an earlier attempt placed it, and reports it done without writing it again. At
the end the driver removes the temporary files of writers killed mid-write.

The manifest (:class:`Manifest`, ``OUT/.jkspnet-manifest.jsonl``) records every outcome as it
arrives, one JSON object a line: a rerun of the same command does only what is missing or
failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch import BatchOptions, BatchResult, FileOutcome, Job, jobs_to_do
from .batch import colorize_files as colorize_here
from .errors import JKSPNetError
from .files import leftover_temporaries
from .photos import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from .pipeline import Colorizer

MANIFEST_NAME = ".jkspnet-manifest.jsonl"
TASK_RETRIES = 3
"""How often a file may kill its worker. Ray restarts dead actors and retries their units
without limit; a photo that crashes its worker every time (the decoder, the memory) fails after
this many deaths instead of stopping the run."""

_LOCAL_OBJECT_STORE = 256 << 20  # only paths and outcomes go through it
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
_EXTRA = "pip install 'jkspnet[cluster]'"


def import_ray():
    """Ray and Ray Data, or one line saying which extra brings them."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise JKSPNetError(f"--ray needs Ray Data: {_EXTRA}") from None
    return ray


@dataclass(frozen=True)
class ModelSpec:
    """The Colorizer each worker loads: what the command line's model options ask for.

    ``weights`` must be readable at the same path on every node (or None: the bundled weights).
    """

    weights: str | None = None
    backend: str = "torch"
    device: str = "auto"
    precision: str = "auto"
    size: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    upsample: str = "guided"
    shape: str | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:  # workers start in other folders
        if self.weights is not None:
            object.__setattr__(self, "weights", os.path.abspath(self.weights))

    def load(self) -> Colorizer:
        from .backends import configured_colorizer

        return configured_colorizer(**dataclasses.asdict(self))

    def identity(self) -> dict[str, Any]:
        """What makes two runs' outputs the same: these options and the weights' files."""
        found = dict(dataclasses.asdict(self))
        del found["max_pixels"], found["device"]
        if self.weights is not None:
            found["weights_files"] = _files_identity(Path(self.weights))
        return found


def _guidance_identity(guidance) -> dict[str, Any]:
    """What of a run's guidance makes its outputs what they are, as JSON."""
    given = guidance.hints.given
    return {
        "hints": None if given is None else [dataclasses.asdict(hint) for hint in given],
        "sidecars": guidance.hints.sidecars,
        "reference": getattr(guidance.reference, "source", None),
        "strength": guidance.strength,
        "uncertainty_map": None
        if guidance.uncertainty_map is None
        else str(guidance.uncertainty_map),
    }


def _files_identity(path: Path) -> list[list]:
    """(name, size, modification time) of a weights file, or of the files in a weights folder
    (and its training run's ``best``/``last``)."""
    try:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files[:64]]
    except OSError:
        return []


# --------------------------------------------------------------------------------- manifest
class Manifest:
    """The record of a run under OUT: ``.jkspnet-manifest.jsonl``, one JSON object a line.

    A run starts with a header line, ``{"run": 2, "started": "...", "settings": {...},
    "files": 1000000, "todo": 1200}``, then one line per file outcome as it arrives::

        {"run": 2, "input": "/scans/a/001.tif", "output": "a/001.tif", "status": "done",
         "reason": null, "worker": "node-3:41237", "time": "2026-12-01T08:40:44Z"}

    ``output`` is relative to the manifest's folder, ``input`` absolute; ``status`` is done,
    skipped or failed (``reason`` says why). The latest line for an output is its state. Lines
    are appended whole with one ``write`` each by the driver alone, so the file can be read (or
    tailed) while the run is alive; a reader ignores a last line without its newline, as
    :meth:`read` does (a driver killed mid-write).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.root = self.path.parent
        self._fd: int | None = None
        self.run = 0

    def key(self, output: str | os.PathLike[str]) -> str:
        return os.path.relpath(os.path.abspath(output), os.path.abspath(self.root))

    def read(self) -> tuple[dict[str, dict], dict[int, dict]]:
        """The latest line of each output (by :meth:`key`) and each run's header."""
        files: dict[str, dict] = {}
        runs: dict[int, dict] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return files, runs
        for line in text.split("\n")[:-1]:  # the part after the last newline is not a line yet
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if not isinstance(row, dict):
                continue
            if "started" in row:
                runs[int(row.get("run", 0))] = row
            elif isinstance(row.get("output"), str) and "status" in row:
                files[row["output"]] = row
        self.run = max(runs, default=0)
        return files, runs

    def start(self, settings: dict[str, Any], files: int, todo: int) -> None:
        """Begin a run: its header line (numbered after those already there)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        if os.fstat(self._fd).st_size and not self._ends_with_newline():
            os.write(self._fd, b"\n")  # a torn last line stays alone
        self.run += 1
        header = {"run": self.run, "started": _now(), "settings": settings}
        self._write({**header, "files": files, "todo": todo})

    def record(self, outcome: FileOutcome, worker: str | None = None) -> None:
        self._write(
            {
                "run": self.run,
                "input": os.path.abspath(outcome.input),
                "output": self.key(outcome.output),
                "status": outcome.status,
                "reason": outcome.reason,
                "worker": worker,
                "time": _now(),
            }
        )

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def _write(self, row: dict[str, Any]) -> None:
        assert self._fd is not None, "Manifest.start first"
        os.write(self._fd, (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as stream:
            stream.seek(-1, os.SEEK_END)
            return stream.read(1) == b"\n"


def manifest_for(out: str | os.PathLike[str], pairs: Sequence[tuple[Path, Path]]) -> Manifest:
    """OUT's manifest: ``OUT/.jkspnet-manifest.jsonl``, or beside OUT when OUT is one file."""
    out = Path(out)
    if len(pairs) == 1 and Path(pairs[0][1]) == out and not out.is_dir():
        return Manifest(out.parent / f".{out.name}{MANIFEST_NAME}")
    return Manifest(out / MANIFEST_NAME)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------- sizing
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


# ----------------------------------------------------------------------------------- worker
def _stat_identity(path: Path) -> list[int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return [found.st_ino, found.st_size, found.st_mtime_ns]


class _Attempts:
    """How often each unit, and each of its files, was begun: Ray retries a unit whose worker
    died without saying so to the retry, and this actor (beside the driver) keeps count."""

    def __init__(self) -> None:
        self.units: dict[int, int] = {}
        self.files: dict[tuple[int, int], int] = {}

    def unit(self, index: int) -> int:
        self.units[index] = self.units.get(index, 0) + 1
        return self.units[index]

    def begin(self, index: int, position: int) -> int:
        """A file begun; how many times it was begun and not ended (its worker died)."""
        key = (index, position)
        self.files[key] = self.files.get(key, 0) + 1
        return self.files[key]

    def end(self, index: int, position: int) -> None:
        self.files[(index, position)] -= 1


class _Worker:
    """One actor of the pool: a Colorizer loaded once, the batch engine run on each unit.

    A unit's first attempt goes through the engine whole. A retry (its worker died) first
    takes as done the files an earlier attempt placed, then does the others one at a time in
    order, so a file that kills its worker is found: after :data:`TASK_RETRIES` deaths on it, it
    fails and the rest of the unit goes on.
    """

    def __init__(self, model: ModelSpec, options: BatchOptions, threads: int, attempts) -> None:
        import torch

        torch.set_num_threads(threads)
        self.colorizer = model.load()
        self.options = dataclasses.replace(options, progress=False)
        self.attempts = attempts
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        return {"result": [json.dumps(self.work(json.loads(unit))) for unit in batch["unit"]]}

    def work(self, unit: dict[str, Any]) -> dict[str, Any]:
        import ray

        index = unit["index"]
        outcomes: list[list] = []
        messages: list[str] = []

        def keep(outcome: FileOutcome) -> None:
            outcomes.append(
                [str(outcome.input), str(outcome.output), outcome.status, outcome.reason]
            )

        def colorize(pairs: list[tuple[str, str]]) -> None:
            try:
                colorize_here(pairs, self.colorizer, self.options, keep, report=messages.append)
            except Exception as error:  # what stops a whole call (no encoder, out of memory...)
                if len(pairs) > 1:
                    for pair in pairs:
                        colorize([pair])
                    return
                reason = str(error) or type(error).__name__
                messages.append(f"error: {pairs[0][0]}: {reason}")
                outcomes.append([*pairs[0], "failed", reason])

        retry = ray.get(self.attempts.unit.remote(index)) > 1
        todo = []
        for position, (source, target, before) in enumerate(unit["files"]):
            if _stat_identity(Path(target)) not in (None, before):  # an earlier attempt's
                outcomes.append([source, target, "done", "written by an earlier attempt"])
            elif not retry:
                todo.append((source, target))
            elif ray.get(self.attempts.begin.remote(index, position)) > TASK_RETRIES:
                reason = f"its worker died each of the {TASK_RETRIES} times it was colorized alone"
                messages.append(f"error: {source}: {reason}")
                outcomes.append([source, target, "failed", reason])
            else:
                colorize([(source, target)])
                self.attempts.end.remote(index, position)
        if todo:
            colorize(todo)
        return {"index": index, "worker": self.name, "outcomes": outcomes, "messages": messages}


# ------------------------------------------------------------------------------------ driver
def _connect(ray, address: str | None, num_cpus: int | None) -> bool:
    """Join ``address`` (``auto``, ``ray://host:port``, ``host:port``) or start a local Ray
    (None or ``local``); use the one this process already has if any. True if we started it."""
    if ray.is_initialized():
        return False
    if address not in (None, "local"):
        _check_reachable(address)
    try:
        if address in (None, "local"):
            # Workers at this process's priority, as in a run without Ray (Ray's default: +15).
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                object_store_memory=_LOCAL_OBJECT_STORE,
                logging_level=logging.WARNING,
            )
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except Exception as error:  # no cluster there, a node too slow to start...
        where = "start a local Ray" if address in (None, "local") else f"join Ray at {address}"
        raise JKSPNetError(f"could not {where}: {error}") from None
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """For ``host:port`` and ``ray://host:port``: a one-line error at once if nothing listens
    there. Ray itself goes on retrying a wrong address for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray checks itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        message = f"could not join Ray at {address}: nothing answers there ({reason})"
        raise JKSPNetError(message) from None


def _units(jobs: Sequence[Job], batch_size: int, workers: int = 1) -> list[list[Job]]:
    """Films one by one (first: the longest pieces of work), then photos in units of up to
    ``batch_size``, smaller where that gives each worker :data:`_UNITS_PER_WORKER` units."""
    films = [[job] for job in jobs if job.film]
    photos = [job for job in jobs if not job.film]
    size = max(1, min(batch_size, math.ceil(len(photos) / (_UNITS_PER_WORKER * workers))))
    return films + [photos[i : i + size] for i in range(0, len(photos), size)]


@dataclass
class _Resume:
    """What an earlier run of the same command already did."""

    done_before: int = 0
    failed_before: int = 0
    missing: int = 0

    def line(self, manifest: Manifest) -> str:
        return (
            f"resuming from {manifest.path}: {self.done_before} done before; to do: "
            f"{self.missing} missing, {self.failed_before} failed before"
        )


def colorize_files(
    pairs: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    weights: str | os.PathLike[str] | None = None,
    ray_address: str | None = None,
    *,
    options: BatchOptions | None = None,
    model: ModelSpec | None = None,
    workers: int | None = None,
    manifest: Manifest | str | os.PathLike[str] | None = None,
    on_outcome: Callable[[FileOutcome], None] | None = None,
    report: Callable[[str], None] | None = None,
    num_cpus: int | None = None,
) -> BatchResult:
    """Colorize ``(input, output)`` pairs on a Ray cluster; the counterpart of
    :func:`jkspnet.batch.colorize_files`, with the same outcomes (see the module docstring).

    ``weights`` (or a whole ``model``: backend, device, precision...) is what each worker loads.
    ``ray_address``: None uses the Ray this process has already joined, else starts a local one
    (``num_cpus`` CPUs, default all) and stops it at the end; ``"auto"`` or
    ``"ray://host:port"`` joins a cluster. ``workers``: the actor pool's size (default: one per
    GPU, or one one-thread worker per CPU as memory allows). With a ``manifest`` (a path, or a
    :class:`Manifest`), files an earlier run recorded as done are not done again (with
    ``overwrite`` too, if it had the same settings), and every outcome is appended to it.
    ``on_outcome`` is called in this process for each file as its outcome arrives; ``report``
    gets the ``error:``/``note:`` lines (default: standard error).
    """
    ray = import_ray()
    options = options or BatchOptions()
    if model is None:
        model = ModelSpec(None if weights is None else os.fspath(weights))
    if isinstance(manifest, (str, os.PathLike)):
        manifest = Manifest(manifest)
    pairs = [(Path(source), Path(target)) for source, target in pairs]
    driver = _Driver(options, manifest, on_outcome, report)
    jobs = driver.plan(pairs, model)
    if not jobs:
        driver.begin()
        return driver.finish(jobs)

    started = _connect(ray, ray_address, num_cpus)
    try:
        driver.begin()
        nodes = [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]
        if model.device == "cpu":
            for node in nodes:
                node.pop("GPU", None)
        shape = worker_shape(nodes, workers)
        if options.progress:
            driver.say(f"ray: {shape.describe()}, {len(jobs)} files to do")
        driver.run(ray, jobs, model, shape)
    finally:
        if started:
            ray.shutdown()
    return driver.finish(jobs)


class _Driver:
    """The driver's side of one run: plan, progress, manifest, tally."""

    def __init__(self, options, manifest: Manifest | None, on_outcome, report) -> None:
        self.options = options
        self.manifest = manifest
        self.on_outcome = on_outcome
        self.report = report
        self.outcomes: list[FileOutcome] = []
        self.bar = None
        self.planned: dict[Path, Job] = {}  # by absolute output
        self.finished: set[Path] = set()
        self.resume = _Resume()
        self.unrecorded: tuple[int, int, list[FileOutcome]] = (0, 0, [])  # until begin()
        self.settings: dict[str, Any] = {}
        self.clock = time.monotonic()

    def say(self, message: str) -> None:
        if self.report is not None:
            self.report(message)
            return
        from tqdm import tqdm

        (tqdm.write if self.bar is not None else print)(message, file=sys.stderr)

    def known(self, outcome: FileOutcome) -> None:
        """An outcome the manifest already has."""
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def outcome(self, outcome: FileOutcome, worker: str | None = None) -> None:
        """A new outcome: recorded, counted, passed on."""
        if self.manifest is not None:
            self.manifest.record(outcome, worker)
        self.known(outcome)
        if self.bar is not None:
            self.bar.update()

    # -- before any work -------------------------------------------------------------------
    def plan(self, pairs: list[tuple[Path, Path]], model: ModelSpec) -> list[Job]:
        """The jobs left to do; what needs no work is counted (and recorded) now."""
        options = self.options
        ignored = ("overwrite", "batch_size", "max_batch_pixels", "progress", "guidance")
        self.settings = {
            "model": model.identity(),
            **{
                field.name: getattr(options, field.name)
                for field in dataclasses.fields(options)
                if field.name not in ignored
            },
        }
        if options.guidance is not None:
            self.settings["guidance"] = _guidance_identity(options.guidance)
        before: dict[str, dict] = {}
        runs: dict[int, dict] = {}
        if self.manifest is not None:
            before, runs = self.manifest.read()
        same = {run for run, header in runs.items() if header.get("settings") == self.settings}
        checks: list[FileOutcome] = []
        jobs = jobs_to_do(pairs, options, checks.append, report=self.say)
        new: list[FileOutcome] = []  # outcomes the manifest does not have yet
        for outcome in checks:  # clashes, unwritable folders, existing outputs
            row = self._row(before, outcome.output)
            if outcome.status == "skipped" and row is not None and row["status"] == "done":
                self.resume.done_before += 1
                self.known(outcome)
            elif outcome.status == "skipped" and row is not None and row["status"] == "skipped":
                self.known(outcome)
            else:
                new.append(outcome)
        todo = []
        for job in jobs:
            row = self._row(before, job.target)
            if (
                options.overwrite
                and row is not None
                and row["status"] == "done"
                and row.get("run") in same
                and job.target.exists()
            ):
                self.resume.done_before += 1
                self.known(FileOutcome(job.source, job.target, "skipped", "done before"))
                continue
            if row is not None and row["status"] == "failed":
                self.resume.failed_before += 1
            else:
                self.resume.missing += 1
            todo.append(job)
        if self.manifest is not None and before:
            self.say(self.resume.line(self.manifest))
        self.unrecorded = (len(pairs), len(todo), new)
        return todo

    def begin(self) -> None:
        """Start the run's record: its header and the outcomes the plan found. Once Ray is
        there (or no work needs it), so that a run that never starts leaves OUT as it was."""
        files, todo, new = self.unrecorded
        if self.manifest is not None and (new or todo):
            self.manifest.start(self.settings, files, todo)
        for outcome in new:
            self.outcome(outcome)

    def _row(self, before: dict[str, dict], output: Path) -> dict | None:
        return None if self.manifest is None else before.get(self.manifest.key(output))

    # -- the work --------------------------------------------------------------------------
    def run(self, ray, jobs: list[Job], model: ModelSpec, shape: WorkerShape) -> None:
        from tqdm import tqdm

        units = _units(jobs, self.options.batch_size, shape.workers)
        rows = []
        for index, unit in enumerate(units):
            files = []
            for job in unit:
                target = Path(os.path.abspath(job.target))
                self.planned[target] = job
                files.append([os.path.abspath(job.source), str(target), _stat_identity(target)])
            rows.append({"unit": json.dumps({"index": index, "files": files})})

        attempts = ray.remote(num_cpus=0)(_Attempts).remote()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours counts files
        context.max_errored_blocks = -1  # a unit that fails is its files' failure, not the run's
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _Worker,
            fn_constructor_kwargs={
                "model": model,
                "options": self.options,
                "threads": max(1, int(shape.cpus)),
                "attempts": attempts,
            },
            batch_size=None,  # a block is a unit
            compute=ray.data.ActorPoolStrategy(size=min(shape.workers, len(rows))),
            num_cpus=shape.cpus,
            num_gpus=shape.gpus or None,
        )  # Ray Data's actors: restarted, and their tasks retried, without limit
        self.bar = tqdm(
            total=len(jobs),
            unit="file",
            disable=not self.options.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        self.clock = time.monotonic()
        try:
            with self.bar:
                for row in dataset.iter_rows():
                    self.collect(json.loads(row["result"]))
        except Exception as error:
            user_error = _user_error(error)
            if user_error is None:
                raise
            raise user_error from None
        finally:
            self.bar = None
            self.sweep(jobs)

    def collect(self, result: dict[str, Any]) -> None:
        """One unit's outcomes, in this process as they arrive."""
        for message in result["messages"]:
            self.say(message)
        for _, target, status, reason in result["outcomes"]:
            target = Path(target)
            job = self.planned.get(target)
            if job is None or target in self.finished:  # not ours, or already counted
                continue
            self.finished.add(target)
            self.outcome(FileOutcome(job.source, job.target, status, reason), result["worker"])

    def sweep(self, jobs: list[Job]) -> None:
        """Remove what writers killed mid-write left: their temporary files."""
        by_folder: dict[Path, set[str]] = {}
        for job in jobs:
            by_folder.setdefault(job.target.parent, set()).add(job.target.name)
        for folder, names in by_folder.items():
            for leftover in leftover_temporaries(folder, names):
                with contextlib.suppress(FileNotFoundError):  # another sweep's
                    leftover.unlink()

    def finish(self, jobs: list[Job]) -> BatchResult:
        lost = [job for job in jobs if Path(os.path.abspath(job.target)) not in self.finished]
        for job in lost:
            reason = "no outcome came back from its worker"
            self.say(f"error: {job.source}: {reason}")
            self.outcome(FileOutcome(job.source, job.target, "failed", reason))
        if self.manifest is not None:
            self.manifest.close()
        if jobs and self.options.progress:
            seconds = time.monotonic() - self.clock
            self.say(
                f"ray: {len(jobs)} files in {seconds:.1f} s ({len(jobs) / seconds:.2f} files/s)"
            )
        counts = {"done": 0, "skipped": 0, "failed": 0}
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        return BatchResult(**counts, outcomes=self.outcomes)


def _user_error(error: BaseException) -> JKSPNetError | None:
    """The JKSPNetError (unusable weights...) behind a Ray error, if that is what it is."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, JKSPNetError):
            return error
        error = getattr(error, "cause", None) or error.__cause__
    return None


__all__ = [
    "MANIFEST_NAME",
    "TASK_RETRIES",
    "Manifest",
    "ModelSpec",
    "WorkerShape",
    "colorize_files",
    "import_ray",
    "manifest_for",
    "worker_shape",
]
