"""A cluster's worker: the Colorizer each actor loads (:class:`ModelSpec`), and the actor that
runs the batch engine on each unit of work, retrying a unit whose worker died file by file."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engines.batch import BatchOptions, FileOutcome
from ..engines.batch import colorize_files as colorize_here
from ..media.photos import DEFAULT_MAX_PIXELS
from .manifest import files_identity

if TYPE_CHECKING:
    from ..pipeline.colorizer import Colorizer


TASK_RETRIES = 3
"""How often a file may kill its worker. Ray restarts dead actors and retries their units
without limit; a photo that crashes its worker every time (the decoder, the memory) fails after
this many deaths instead of stopping the run."""


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
        from ..pipeline.backends import configured_colorizer

        return configured_colorizer(**dataclasses.asdict(self))

    def identity(self) -> dict[str, Any]:
        """What makes two runs' outputs the same: these options and the weights' files."""
        found = dict(dataclasses.asdict(self))
        del found["max_pixels"], found["device"]
        if self.weights is not None:
            found["weights_files"] = files_identity(Path(self.weights))
        return found


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


class Worker:
    """One actor of the pool: a Colorizer loaded once, the batch engine run on each unit.

    A unit's first attempt goes through the engine whole. A retry (its worker died) first
    takes as done the files an earlier attempt placed, then does the others one at a time in
    order, so a file that kills its worker is found: after :data:`TASK_RETRIES` deaths on it, it
    fails and the rest of the unit goes on.
    """

    def __init__(self, model: ModelSpec, options: BatchOptions, threads: int, attempts) -> None:
        import cv2
        import torch

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


__all__ = ["TASK_RETRIES", "ModelSpec"]
