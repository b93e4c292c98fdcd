"""Colorize an archive on a Ray cluster, resumably: ``jkspnet colorize INPUT... -o OUT --ray``.

Needs the ``[cluster]`` extra (Ray Data). What runs where:

- **The driver** (the process that calls :func:`colorize_files`, e.g. the command line) checks
  the plan as :func:`jkspnet.engines.batch.colorize_files` does (clashes, outputs that would replace
  their input, existing outputs skipped unless ``overwrite``, folders that cannot be written),
  reads the manifest and leaves out what an earlier run already did, shows progress and appends
  each file's outcome to the manifest. It touches no pixels.
- **The work** is cut into units: up to ``batch_size`` photos (fewer where that gives each worker
  :data:`_UNITS_PER_WORKER` units), or one whole film (its frames stay in order for the
  stabiliser). Each unit is one block of a Ray Data dataset, mapped by an actor
  pool: every actor loads the Colorizer once (one GPU each, or a share of one, where the cluster
  has GPUs) and runs the batch engine, :func:`jkspnet.engines.batch.colorize_files`, on its unit, so
  decoding, the network, encoding and the atomic write happen on the node where Ray placed the
  actor. Inputs, outputs and weights must be at the same paths on every node (shared storage).
- **Failures**: a bad photo is one failed outcome, as without Ray. An actor that dies (killed,
  out of memory, its node lost) is restarted by Ray and its in-flight units are retried; a file
  on which workers died :data:`TASK_RETRIES` times fails, and the run goes on.

Exactly once: an output is only ever placed by an atomic rename (:mod:`jkspnet.media.files`). Each
unit carries, for each of its files, what stood at the output when the driver planned it (nothing,
or the stat of the file ``overwrite`` will replace); a retried unit sees that something else stands
there now, knows an earlier attempt placed it, and reports it done without writing it again.
Before it starts, and again at the end (once Ray is shut down), the driver removes the
temporary files of writers killed mid-write (:func:`jkspnet.media.files.remove_stale_temporaries`).
Each worker watches the driver: a driver on its node that is gone (kill -9) makes it exit
within a second instead of colorizing for minutes for no one.

The manifest (:class:`Manifest`, ``OUT/.jkspnet-manifest.jsonl``) records every outcome as it
arrives, one JSON object a line: a rerun of the same command does only what is missing or
failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engines.batch import BatchOptions, BatchResult, FileOutcome, Job, jobs_to_do
from ..engines.reporter import Reporter
from ..errors import Interrupted, JKSPNetError, require_extra
from ..media.files import host_tag, is_temporary, remove_stale_temporaries
from ..pipeline.spec import ColorizerSpec
from .manifest import Manifest, guidance_identity, spec_identity
from .placement import WorkerShape, plan_units, worker_shape
from .worker import Attempts, Worker, stat_identity

if TYPE_CHECKING:
    pass


_LOCAL_OBJECT_STORE = 256 << 20  # only paths and outcomes go through it


def import_ray():
    """Ray and Ray Data, or one line saying which extra brings them.

    Ray's C++ core installs absl's failure signal handler, which takes SIGTERM too: the driver
    would then print a stack and abort (status -6) instead of stopping as Ctrl-C does. The
    switch is read when Ray is first imported, so it is set here, before that."""
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    return require_extra("cluster", "--ray needs Ray Data", "ray", "ray.data")


def _connect(ray, address: str | None, num_cpus: int | None) -> bool:
    """Join ``address`` (``auto``, ``ray://host:port``, ``host:port``) or start a local Ray
    (None or ``local``); use the one this process already has if any. True if we started it."""
    if ray.is_initialized():
        return False
    if address not in (None, "local"):
        _check_reachable(address)
    try:
        with _keeping_signal_handlers():  # Ray sets its own SIGTERM handler: ours stay
            return _init(ray, address, num_cpus)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while Ray starts: stop what it started
        with contextlib.suppress(Exception):
            ray.shutdown()
        raise


@contextlib.contextmanager
def _keeping_signal_handlers():
    """The SIGTERM and SIGHUP handlers as they were before, during and after the block (in the
    main thread): the command line's, which stop a run as Ctrl-C does, exit 143 or 129.
    ``ray.init`` sets a SIGTERM handler that exits with status 15 at once; it is kept from
    doing so, and should it have, its exit becomes the interruption it stands for."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        import ray._private.utils as ray_utils

        setter = ray_utils.set_sigterm_handler
        ray_utils.set_sigterm_handler = lambda handler: None
    except (ImportError, AttributeError):  # another Ray: its handler is replaced after
        ray_utils = setter = None
    try:
        yield
    except SystemExit as exit:
        if exit.code != signal.SIGTERM:
            raise
        raise Interrupted(signal.SIGTERM) from None
    finally:
        if setter is not None:
            ray_utils.set_sigterm_handler = setter
        for signum, handler in kept.items():
            if handler is not None:
                signal.signal(signum, handler)


def _init(ray, address: str | None, num_cpus: int | None) -> bool:
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
    model: ColorizerSpec | None = None,
    workers: int | None = None,
    manifest: Manifest | str | os.PathLike[str] | None = None,
    on_outcome: Callable[[FileOutcome], None] | None = None,
    report: Callable[[str], None] | None = None,
    num_cpus: int | None = None,
) -> BatchResult:
    """Colorize ``(input, output)`` pairs on a Ray cluster; the counterpart of
    :func:`jkspnet.engines.batch.colorize_files`, with the same outcomes (see the module docstring).

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
        model = ColorizerSpec(None if weights is None else os.fspath(weights))
    if model.weights is not None:  # workers start in other folders
        model = model.replace(weights=os.path.abspath(model.weights))
    if isinstance(manifest, (str, os.PathLike)):
        manifest = Manifest(manifest)
    pairs = [(Path(source), Path(target)) for source, target in pairs]
    driver = _Driver(options, manifest, on_outcome, report)
    jobs = driver.plan(pairs, model)
    if not jobs:
        driver.begin()
        return driver.finish(jobs)

    started = _connect(ray, ray_address, num_cpus)
    since = time.time()
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
            ray.shutdown()  # its workers are stopped: what they were writing is stale now
        driver.sweep(jobs, since)
    return driver.finish(jobs)


class _Driver(Reporter):
    """The driver's side of one run: plan, progress, manifest, tally."""

    def __init__(self, options, manifest: Manifest | None, on_outcome, report) -> None:
        self.options = options
        self.manifest = manifest
        self.on_outcome = on_outcome
        super().__init__(report)
        self.outcomes: list[FileOutcome] = []
        self.planned: dict[Path, Job] = {}  # by absolute output
        self.finished: set[Path] = set()
        self.resume = _Resume()
        self.unrecorded: tuple[int, int, list[FileOutcome]] = (0, 0, [])  # until begin()
        self.settings: dict[str, Any] = {}
        self.clock = time.monotonic()

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
    def plan(self, pairs: list[tuple[Path, Path]], model: ColorizerSpec) -> list[Job]:
        """The jobs left to do; what needs no work is counted (and recorded) now."""
        options = self.options
        ignored = ("overwrite", "batch_size", "max_batch_pixels", "progress", "guidance")
        self.settings = {
            "model": spec_identity(model),
            **{
                field.name: getattr(options, field.name)
                for field in dataclasses.fields(options)
                if field.name not in ignored
            },
        }
        if options.guidance is not None:
            self.settings["guidance"] = guidance_identity(options.guidance)
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
    def run(self, ray, jobs: list[Job], model: ColorizerSpec, shape: WorkerShape) -> None:
        from tqdm import tqdm

        units = plan_units(jobs, self.options.batch_size, shape.workers)
        rows = []
        for index, unit in enumerate(units):
            files = []
            for job in unit:
                target = Path(os.path.abspath(job.target))
                self.planned[target] = job
                files.append([os.path.abspath(job.source), str(target), stat_identity(target)])
            rows.append({"unit": json.dumps({"index": index, "files": files})})

        attempts = ray.remote(num_cpus=0)(Attempts).remote()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours counts files
        context.max_errored_blocks = -1  # a unit that fails is its files' failure, not the run's
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            Worker,
            fn_constructor_kwargs={
                "model": model,
                "options": self.options,
                "threads": max(1, int(shape.cpus)),
                "attempts": attempts,
                "driver": (host_tag(), os.getpid()),
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

    def sweep(self, jobs: list[Job], since: float) -> None:
        """Remove what writers killed mid-write left in the outputs' folders: their temporaries
        (this node's once their process is gone, other nodes' not written to since ``since``).
        """
        deadline = time.monotonic() + 5.0
        folders = {job.target.parent for job in jobs}
        remove_stale_temporaries(folders, untouched_since=since)
        while time.monotonic() < deadline and _temporaries_in(folders):
            time.sleep(0.2)  # a worker being stopped may take a moment to exit
            remove_stale_temporaries(folders, untouched_since=since)

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


def _temporaries_in(folders) -> bool:
    for folder in folders:
        with contextlib.suppress(OSError), os.scandir(folder) as listing:
            if any(is_temporary(entry.name) for entry in listing):
                return True
    return False


def _user_error(error: BaseException) -> JKSPNetError | None:
    """The JKSPNetError (unusable weights...) behind a Ray error, if that is what it is."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, JKSPNetError):
            return error
        error = getattr(error, "cause", None) or error.__cause__
    return None


__all__ = ["colorize_files", "import_ray"]
