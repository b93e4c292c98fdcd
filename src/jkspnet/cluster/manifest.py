"""A cluster run's manifest under OUT: what each file became, so a rerun resumes. No Ray."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engines.batch import FileOutcome
from ..errors import JKSPNetError, shown

if TYPE_CHECKING:
    from ..pipeline.spec import ColorizerSpec

MANIFEST_NAME = ".jkspnet-manifest.jsonl"
NAMES = "utf-8; bytes that are not UTF-8 as \\udcXX escapes (surrogateescape)"
"""How the manifest writes file names (its header's ``"names"``; see :class:`Manifest`)."""


class ManifestError(JKSPNetError):
    """The manifest cannot be written (a full disk): the run stops, its last line whole."""


def guidance_identity(guidance) -> dict[str, Any]:
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


def spec_identity(spec: ColorizerSpec) -> dict[str, Any]:
    """What makes two runs' outputs the same: a spec's options and its weights' files."""
    found = dict(dataclasses.asdict(spec))
    del found["max_pixels"], found["device"]
    if spec.weights is not None:
        found["weights_files"] = files_identity(Path(spec.weights))
    return found


def files_identity(path: Path) -> list[list]:
    """(name, size, modification time) of a weights file, or of the files in a weights folder
    (and its training run's ``best``/``last``)."""
    try:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files[:64]]
    except OSError:
        return []


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
    :meth:`read` does (a driver killed mid-write). A write that fails (a full disk) is cut back
    to the last whole line and stops the run with :class:`ManifestError`.

    Encoding (the header's ``"names"``): UTF-8 JSON. File names are bytes on POSIX; a byte that
    is not UTF-8 (a Latin-1 ``café.jpg``) is written as the JSON escape ``\\udcXX`` (XX its
    value), which is Python's ``surrogateescape``: ``os.fsencode(row["input"])`` gives back the
    name's bytes. Newlines and other control characters in names are JSON escapes, as always.
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
        header = {"run": self.run, "started": _now(), "names": NAMES, "settings": settings}
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
        # backslashreplace turns a lone surrogate (a name's byte that is not UTF-8) into the
        # JSON escape \udcXX; everything else is plain UTF-8 (see NAMES).
        line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            written = 0
            while written < len(line):  # a full disk may take part of it, then refuse
                written += os.write(self._fd, line[written:])
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)  # no torn line left behind
            reason = error.strerror or str(error)
            raise ManifestError(
                f"{shown(self.path)}: cannot record the run ({reason}); it stops here"
            ) from None

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


__all__ = ["MANIFEST_NAME", "NAMES", "Manifest", "ManifestError", "manifest_for"]
