"""Colorize many photos and films: the engine of ``jkspnet colorize``, and of a cluster's worker.

:func:`~jkspnet.engines.plan.plan_outputs` maps inputs (files, folders, globs) to ``(input,
output)`` pairs.
:func:`colorize_files` works through any list of pairs, e.g. one shard of a plan that a
scheduler handed out:

- an output that exists is skipped unless ``overwrite``; an output that would replace its input,
  or that two inputs would share, fails;
- the outputs' folders are tried for writing first: a folder that cannot be written fails its
  files, one line for the folder, before any of them is decoded;
- photos go through the network in batches bounded by a count and by full-resolution pixels
  (read from the headers), while a thread pool of two decodes the next batch and finishes (at
  full resolution, on one OpenCV thread each) and writes the photos of the one before, so two
  cores work across photos; writes are atomic (:func:`jkspnet.media.files.write_atomic`) and
  never clobber an output that appears meanwhile unless ``overwrite``;
- films (``.mp4 .mkv .mov .avi .webm``, with the ``[video]`` extra) follow, one at a time,
  through :func:`jkspnet.media.video.colorize_video`;
- a file that fails is reported and counted, never fatal: each file ends as one
  :class:`FileOutcome` (done, skipped or failed), given to ``on_outcome`` as soon as it is known
  and collected in the :class:`BatchResult`.

Messages for people (``error: ...`` and ``note: ...`` lines, as the command line prints them) go
to ``report``, by default standard error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..colour.pixels import opencv_threads
from ..errors import JKSPNetError, MissingExtraError, PhotoError, shown
from ..media import budget
from ..media.codecs import DEFAULT_CODEC, DEFAULT_CRF, is_video
from ..media.files import not_regular, remove_stale_temporaries, unwritable_reason
from ..media.photos import (
    Photo,
    load_photo,
    photo_pixels,
    save_photo,
)
from .reporter import Reporter

if TYPE_CHECKING:
    from ..media.hints import Guidance
    from ..pipeline.colorizer import Colorizer


@dataclass
class BatchOptions:
    """How :func:`colorize_files` works; the defaults are ``jkspnet colorize``'s."""

    overwrite: bool = False  # replace existing outputs (else they are skipped)
    batch_size: int = 16  # photos (or film frames) per network pass
    max_batch_pixels: int = field(default_factory=lambda: budget.BATCH_PIXELS)  # per photo batch
    format: str | None = None  # png|jpg|webp for plan_outputs; None keeps the input's
    metadata: bool = True  # keep photos' EXIF and DPI
    temperature: float | None = None  # None: the weights'
    size: int | None = None  # network input side; None: the colorizer's
    progress: bool = True  # progress bars on standard error (photos: only for several)
    stabilize: bool = True  # films: smooth colours over time, reset at cuts
    codec: str = DEFAULT_CODEC  # films' video encoder
    crf: int | None = DEFAULT_CRF  # films' constant quality, for encoders that take it
    guidance: Guidance | None = None  # hints, reference, uncertainty map; None: sidecars only


@dataclass
class FileOutcome:
    """What became of one input."""

    input: Path
    output: Path
    status: str  # "done" | "skipped" | "failed"
    reason: str | None = None  # one line, for failed and skipped files


@dataclass
class BatchResult:
    """The counts of a :func:`colorize_files` call, and every file's outcome in order of
    completion."""

    done: int
    skipped: int
    failed: int
    outcomes: list[FileOutcome]


def colorize_files(
    pairs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    colorizer: Colorizer | Callable[[], Colorizer],
    options: BatchOptions | None = None,
    on_outcome: Callable[[FileOutcome], None] | None = None,
    *,
    report: Callable[[str], None] | None = None,
) -> BatchResult:
    """Colorize each ``(input, output)`` pair's photo or film; see the module docstring.

    ``colorizer`` may also be a function that makes one (anything callable: a Colorizer is
    not): it is called only if some file needs work. ``on_outcome`` is called once per file, as
    soon as its outcome is known. Raises :class:`JKSPNetError` only for what stops every film
    before any work (no such encoder; no PyAV when there are no photos beside the films to go
    on with).
    """
    run = _Run(options or BatchOptions(), on_outcome, report)
    jobs = run.writable(run.checked(pairs))
    photos = [job for job in jobs if not job.film]
    films = run.usable_films([job for job in jobs if job.film], beside_photos=bool(photos))
    if jobs and callable(colorizer):
        colorizer = colorizer()
    if photos:
        run.photos(colorizer, photos)  # type: ignore[arg-type]
    for job in films:
        run.film(colorizer, job)
    return run.result()


def jobs_to_do(
    pairs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    options: BatchOptions | None = None,
    on_outcome: Callable[[FileOutcome], None] | None = None,
    *,
    report: Callable[[str], None] | None = None,
) -> list[Job]:
    """The checks :func:`colorize_files` makes before any work, alone: the pairs that need
    work, as :class:`Job` objects. The others end here, each as one outcome given to
    ``on_outcome``: a clash, an output that would replace its input, an output folder that
    cannot be written (failed), an existing output without ``overwrite`` (skipped). A scheduler
    (:mod:`jkspnet.cluster.driver`) plans with this, then hands shards of the jobs to workers that
    run
    :func:`colorize_files` on them."""
    run = _Run(options or BatchOptions(), on_outcome, report)
    return run.writable(run.checked(pairs))


@dataclass
class Job:
    """A pair that needs work: its input, its output, and whether the input is a film."""

    source: Path
    target: Path
    film: bool = False


def _load(job: Job, max_pixels: int) -> Photo | PhotoError:
    try:
        return load_photo(job.source, max_pixels=max_pixels)
    except PhotoError as error:
        return error


def _finish_and_save(colorizer: Colorizer, prepared, ab, target: Path, overwrite: bool) -> None:
    """Finish one photo at full resolution and write it: a pool task, so that on two cores one
    photo's per-pixel work (OpenCV, Pillow: both release the GIL) runs beside the next's
    decoding, L and network."""
    save_photo(colorizer.finish(prepared, ab), target, overwrite)


def photo_batches(jobs: list[Job], size: int, pixels: int) -> Iterator[list[Job]]:
    """Jobs in batches of at most ``size`` photos and ``pixels`` pixels (a bigger photo alone),
    from header sizes read as the batches are needed."""
    return budget.batches(jobs, size, lambda job: photo_pixels(job.source), pixels)


def _special(path: Path) -> str | None:
    """What ``path`` is if it is not a regular file, from its ``stat`` (never opened)."""
    try:
        return not_regular(os.stat(path).st_mode)
    except OSError:  # missing, a link loop...: its load says so
        return None


def _count_of(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class _Run(Reporter):
    """One :func:`colorize_files` call: its options, its outcomes and its messages."""

    def __init__(self, options: BatchOptions, on_outcome, report) -> None:
        super().__init__(report)
        self.options = options
        self.on_outcome = on_outcome
        self.outcomes: list[FileOutcome] = []

    def outcome(self, job: Job, status: str, reason: str | None = None) -> None:
        outcome = FileOutcome(job.source, job.target, status, reason)
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def fail(self, job: Job, reason: str, line: str | None) -> None:
        """``job`` failed for ``reason``; ``line`` (if any) says so to people."""
        if line is not None:
            self.say(line)
        self.outcome(job, "failed", reason)

    def result(self) -> BatchResult:
        counts = {"done": 0, "skipped": 0, "failed": 0}
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        return BatchResult(**counts, outcomes=self.outcomes)

    # -- before any work -------------------------------------------------------------------
    def checked(self, pairs) -> list[Job]:
        """The pairs to work on: clashes, outputs that would replace their input and inputs
        that are not regular files (a named pipe would block its reader for ever) fail,
        existing outputs are skipped unless overwriting. First, what writers killed outright
        left in the outputs' folders (their temporaries) is removed."""
        pairs = [(Path(source), Path(target)) for source, target in pairs]
        remove_stale_temporaries(target.parent for _, target in pairs)
        jobs: list[Job] = []
        targets: dict[Path, Path] = {}
        for source, target in pairs:
            job = Job(source, target, is_video(source))
            key = Path(os.path.realpath(job.target))  # Path.resolve raises on a link loop
            if key in targets:
                reason = f"its output {shown(job.target)} would clash with {shown(targets[key])}'s"
                self.fail(job, reason, f"error: {shown(job.source)}: {reason}")
                continue
            targets[key] = job.source
            if job.target.exists() and Path(os.path.realpath(job.source)) == key:
                reason = "output would replace the input itself; choose another -o"
                self.fail(job, reason, f"error: {shown(job.source)}: {reason}")
                continue
            special = _special(job.source)
            if special is not None:
                reason = f"not a regular file ({special})"
                self.fail(job, reason, f"error: {shown(job.source)}: {reason}")
                continue
            if job.target.exists() and not self.options.overwrite:
                self.outcome(job, "skipped", "the output exists")
                continue
            jobs.append(job)
        return jobs

    def writable(self, jobs: list[Job]) -> list[Job]:
        """The jobs whose output folder can be written; the others fail, one line per folder,
        before any work is done for them."""
        by_folder: dict[Path, list[Job]] = {}
        for job in jobs:
            by_folder.setdefault(job.target.parent, []).append(job)
        writable = []
        for folder, folder_jobs in by_folder.items():
            reason = unwritable_reason(folder)
            if reason is None:
                writable += folder_jobs
                continue
            count = len(folder_jobs)
            self.say(
                f"error: {shown(folder)}: cannot write there ({reason}): {count} output(s) not "
                "written"
            )
            for job in folder_jobs:
                self.fail(job, f"cannot write there ({reason})", None)
        return writable

    def usable_films(self, films: list[Job], beside_photos: bool) -> list[Job]:
        """The films, once PyAV and the encoder are known to be there; without PyAV, films
        beside photos fail and the photos go on."""
        if not films:
            return films
        from ..media.video import check_encoder

        try:
            check_encoder(self.options.codec)
        except MissingExtraError as error:
            if not beside_photos:
                raise
            for job in films:
                self.fail(job, str(error), f"error: {shown(job.source)}: {error}")
            return []
        return films

    # -- photos ----------------------------------------------------------------------------
    def photos(self, colorizer: Colorizer, jobs: list[Job]) -> None:
        """Decode the next batch and write finished photos in threads while the network runs."""
        from tqdm import tqdm

        options = self.options
        show_bar = len(jobs) > 1 and options.progress
        self.bar = tqdm(total=len(jobs), unit="photo", disable=not show_bar, file=sys.stderr)
        side_by_side = len(jobs) > 1  # the pool finishes photos side by side: 1 thread each
        with (
            self.bar,
            ThreadPoolExecutor(max_workers=2) as pool,
            opencv_threads(1 if side_by_side else None),
        ):

            def submit(batch: list[Job] | None) -> list[Future]:
                return [pool.submit(_load, job, colorizer.max_pixels) for job in batch or []]

            batches = photo_batches(jobs, options.batch_size, options.max_batch_pixels)
            batch = next(batches, None)
            pending = submit(batch)
            writes: list[tuple[Job, Future, int]] = []
            try:
                self._photo_batches(colorizer, pool, batches, batch, pending, writes, submit)
            except BaseException:  # Ctrl-C, SIGTERM: no new work; what is being written ends
                for future in pending:
                    future.cancel()
                for _, future, _ in writes:
                    future.cancel()
                self._collect([w for w in writes if not w[1].cancelled()], keep_pixels=0)
                raise

    def _photo_batches(self, colorizer, pool, batches, batch, pending, writes, submit) -> None:
        """The loop of :meth:`photos`; ``pending`` (the next batch's loads) and ``writes`` are
        kept up to date in place, for an interruption to cancel what has not begun."""
        options = self.options
        while batch is not None:
            loaded = [future.result() for future in pending]
            following = next(batches, None)
            pending[:] = submit(following)
            prepared = []
            for job, photo in zip(batch, loaded, strict=True):
                if isinstance(photo, PhotoError):
                    self.fail(job, photo.reason, f"error: {photo}")
                    self.bar.update()
                    continue
                if photo.note:
                    self.say(f"note: {shown(job.source)}: {photo.note}")
                prepared.append((job, colorizer.prepare(photo, options.size)))
            del loaded, photo  # the decoded pixels: prepare kept what finish needs
            if prepared:
                self._finish_batch(colorizer, prepared, pool, writes)
            del prepared  # full-resolution L: held until the next batch is decoded otherwise
            self._collect(writes, keep_pixels=options.max_batch_pixels)
            batch = following
        self._collect(writes, keep_pixels=0)

    def _finish_batch(self, colorizer, prepared, pool, writes: list) -> None:
        """Run the network on a prepared batch and submit each finished photo's write (added to
        ``writes`` at once, so an interruption still counts the writes already begun)."""
        inputs = [item.network_input for _, item in prepared]  # square, or each its own aspect
        ab = colorizer.predict_ab_list(inputs, self.options.temperature)
        from ..media.hints import Guidance, HintError

        guidance = self.options.guidance or Guidance()  # by default, sidecars' hints apply
        for (job, item), ab_one in zip(prepared, ab, strict=True):
            if not self.options.metadata:
                item.metadata = {}
            height, width = item.lightness.shape
            try:
                image = self._guided_colour(colorizer, job, item, ab_one, guidance)
            except HintError as error:
                if guidance.hints.given is not None:
                    raise  # the command line's hints: a usage error, nothing written
                failed: Future = Future()  # a sidecar's: this photo fails, the others go on
                failed.set_exception(error)
                writes.append((job, failed, 0))
                continue
            if image is None:  # the network's colour: finished in the pool, beside the next
                write = pool.submit(_finish_and_save, colorizer, item, ab_one, job.target,
                                    self.options.overwrite)  # fmt: skip
            else:
                write = pool.submit(save_photo, image, job.target, self.options.overwrite)
            writes.append((job, write, height * width))

    def _guided_colour(self, colorizer, job: Job, item, ab_one, guidance: Guidance):
        """One photo's colour guided by hints and a reference palette, with its uncertainty map
        if asked for; None where the network's own colour is all there is to do (then
        :func:`_finish_and_save` does it in the pool)."""
        hints = guidance.hints.hints_for(job.source)
        palette = guidance.palette(colorizer)
        if not hints and palette is None and guidance.uncertainty_map is None:
            return None
        if hints or palette is not None:
            image = colorizer.colorize_guided(
                item, hints, palette, guidance.strength, self.options.temperature
            )
        else:
            image = colorizer.finish(item, ab_one)
        if guidance.uncertainty_map is not None:  # the one input photo's
            save_photo(
                colorizer.uncertainty(item), guidance.uncertainty_map, self.options.overwrite
            )
        return image

    def _collect(self, writes, keep_pixels: int) -> None:
        """Count finished writes, waiting for the oldest while the photos still waiting to be
        written hold more than ``keep_pixels``; a failed write is one photo's error."""
        while writes and (writes[0][1].done() or sum(w[2] for w in writes) > keep_pixels):
            job, future, _ = writes.pop(0)
            try:
                future.result()
                self.outcome(job, "done")
            except FileExistsError:
                self.outcome(job, "skipped", "the output appeared meanwhile")
            except OSError as error:
                reason = f"cannot write ({error.strerror or error})"
                self.fail(job, reason, f"error: {shown(job.target)}: {reason}")
            except JKSPNetError as error:  # a sidecar's hint outside its photo...
                self.fail(job, str(error), f"error: {shown(job.source)}: {error}")
            self.bar.update()

    # -- films -----------------------------------------------------------------------------
    def film(self, colorizer: Colorizer, job: Job) -> None:
        """Colorize one film with a progress bar of frames (frames per second, time left)."""
        from tqdm import tqdm

        from ..media.video import VideoError, colorize_video, probe

        options = self.options
        try:
            total = probe(job.source).estimated_frames
            with tqdm(
                total=total,
                unit="frame",
                desc=job.source.name,
                disable=not options.progress,
                file=sys.stderr,
                dynamic_ncols=True,
            ) as bar:
                result = colorize_video(
                    colorizer,
                    job.source,
                    job.target,
                    stabilize=options.stabilize,
                    codec=options.codec,
                    crf=options.crf,
                    batch_size=options.batch_size,
                    temperature=options.temperature,
                    size=options.size,
                    overwrite=options.overwrite,
                    progress=bar.update,
                )
            if result.damaged_packets:
                skipped = _count_of(result.damaged_packets, "damaged packet")
                self.say(
                    f"note: {shown(job.source)}: skipped {skipped}; "
                    f"wrote the {result.frames} frames that could be decoded"
                )
            elif result.short:
                self.say(
                    f"note: {shown(job.source)}: only {result.frames} of about "
                    f"{result.expected} frames could be decoded; the film may be truncated"
                )
            self.outcome(job, "done")
        except FileExistsError:
            self.outcome(job, "skipped", "the output appeared meanwhile")
        except VideoError as error:
            self.fail(job, error.reason, f"error: {error}")
        except JKSPNetError as error:  # e.g. an audio stream the output container cannot hold
            self.fail(job, str(error), f"error: {shown(job.source)}: {error}")
        except OSError as error:
            reason = f"cannot write ({error.strerror or error})"
            self.fail(job, reason, f"error: {shown(job.target)}: {reason}")


__all__ = [
    "BatchOptions",
    "BatchResult",
    "FileOutcome",
    "Job",
    "colorize_files",
    "jobs_to_do",
]
