"""A cluster's worker: the actor that loads the Colorizer a
:class:`~jkspnet.pipeline.spec.ColorizerSpec` asks for and runs the batch engine on each unit of
work, retrying a unit whose worker died file by file."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engines.batch import BatchOptions, FileOutcome
from ..engines.batch import colorize_files as colorize_here
from ..media.files import host_tag

if TYPE_CHECKING:
    from ..pipeline.spec import ColorizerSpec


TASK_RETRIES = 3
"""How often a file may kill its worker. Ray restarts dead actors and retries their units
without limit; a photo that crashes its worker every time (the decoder, the memory) fails after
this many deaths instead of stopping the run."""


def stat_identity(path: Path) -> list[int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return [found.st_ino, found.st_size, found.st_mtime_ns]


class Attempts:
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


def watch_driver(host: str, pid: int, every: float = 0.5) -> None:
    """Exit this worker as soon as the driver (``pid`` on ``host``) is gone, if it ran on this
    node: a driver killed outright (kill -9) leaves a local Ray's workers running otherwise,
    colorizing for no one. Their temporaries are removed by the next run."""
    if host != host_tag():
        return  # elsewhere, Ray ends a dead driver's job and its actors itself

    def watch() -> None:
        while True:
            time.sleep(every)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="jkspnet-driver-watch", daemon=True).start()


class Worker:
    """One actor of the pool: a Colorizer loaded once, the batch engine run on each unit.

    A unit's first attempt goes through the engine whole. A retry (its worker died) first
    takes as done the files an earlier attempt placed, then does the others one at a time in
    order, so a file that kills its worker is found: after :data:`TASK_RETRIES` deaths on it, it
    fails and the rest of the unit goes on.
    """

    def __init__(
        self,
        model: ColorizerSpec,
        options: BatchOptions,
        threads: int,
        attempts,
        driver: tuple[str, int] | None = None,
    ) -> None:
        import cv2
        import torch

        if driver is not None:
            watch_driver(*driver)
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)  # the CPU's per-pixel stages (colour/pixels.py): the same share
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
            if stat_identity(Path(target)) not in (None, before):  # an earlier attempt's
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


__all__ = ["TASK_RETRIES"]
