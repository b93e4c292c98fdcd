"""Colorizing films: video in and out with PyAV, and a temporal stabiliser against flicker.

A film is colorized frame by frame with the photo pipeline
(:class:`~jkspnet.pipeline.colorizer.Colorizer`): every frame's L goes to the network as the same
small square, so frames batch together, and the predicted ab is joined to the frame's own
full-resolution L. Frames coloured independently
flicker: a small change of grain or exposure can tip a region from one colour to another.
:class:`Stabilizer` smooths the low-resolution ab over time and resets at scene cuts.

Video is streamed: packets are demuxed, decoded, colorized in batches, encoded and muxed as they
come, so memory does not grow with the film's length. The output keeps the input's resolution,
frame timestamps (so frame rate, frame count and duration), and its audio streams, copied packet
for packet. It is written through :func:`jkspnet.media.files.write_atomic`: a temporary file beside
the target, renamed into place at the end, so an interrupted run leaves no half-written film.

PyAV (the ``[video]`` extra) is imported only when a film is read or written.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from ..colour.spaces import denormalize_l
from ..errors import JKSPNetError
from .budget import batches
from .codecs import (
    CONTAINERS,
    DEFAULT_CODEC,
    DEFAULT_CRF,
    VIDEO_SUFFIXES,
    VideoError,
    check_encoder,
    import_av,
    is_video,
    output_suffix,
    pixel_format,
)
from .files import remove_stale_temporaries, write_atomic
from .photos import Photo
from .stabilizer import Stabilizer

# ------------------------------------------------------------------------------ video files


@dataclass(frozen=True)
class VideoInfo:
    """What a film holds: its picture's size and timing, and its audio streams."""

    width: int
    height: int
    frame_rate: Fraction
    frames: int | None
    """Frame count from the container's header; None where it does not say (Matroska, WebM)."""
    duration: float | None
    """Seconds, from the container; None where unknown."""
    codec: str
    audio_streams: int

    @property
    def estimated_frames(self) -> int | None:
        """The header's count, else duration times frame rate (for progress only)."""
        if self.frames:
            return self.frames
        if self.duration:
            return max(1, round(self.duration * self.frame_rate))
        return None


def _unreadable(error: Exception) -> str:
    """Why PyAV could not open a film, in words."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a film"
    if isinstance(error, PermissionError):
        return "permission denied"
    return f"not a video, or a format this program cannot read ({_why(error)})"


def _why(error: Exception) -> str:
    """FFmpeg's reason, without the error number and file name PyAV adds."""
    return getattr(error, "strerror", None) or str(error)


def _open_input(path: Path, max_pixels: int | None = None):
    """An open PyAV input with a video stream, or a :class:`VideoError` naming the problem."""
    av = import_av()
    name = str(path)
    if path.is_file() and path.stat().st_size == 0:
        raise VideoError(name, "empty file (0 bytes)")
    try:
        container = av.open(name, "r")
    except av.FFmpegError as error:
        raise VideoError(name, _unreadable(error)) from None
    if not container.streams.video:
        container.close()
        raise VideoError(name, "has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width < 1 or height < 1:
        container.close()
        raise VideoError(name, "truncated or corrupt video (no picture size)")
    if max_pixels is not None and width * height > max_pixels:
        container.close()
        raise VideoError(
            name, f"frames of {width}x{height} are over the limit of {max_pixels:,} pixels"
        )
    return container


def _info(container) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    duration = None
    if container.duration:
        duration = container.duration / 1_000_000
    elif stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    return VideoInfo(
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        frame_rate=Fraction(rate),
        frames=stream.frames or None,
        duration=duration,
        codec=stream.codec_context.name,
        audio_streams=len(container.streams.audio),
    )


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a film's header: size, frame rate, frame count, duration, audio."""
    container = _open_input(Path(path))
    with container:
        return _info(container)


@dataclass
class VideoResult:
    """What :func:`colorize_video` wrote: the frame count, and where cuts reset the stabiliser.

    ``expected`` is the count the input's header promised or its duration implies (None if
    neither says): a film that decodes to fewer frames is probably truncated.
    ``damaged_packets``: packets the decoder could not use, skipped (their frames are missing).
    """

    frames: int
    cuts: list[int]
    expected: int | None = None
    damaged_packets: int = 0  # skipped: the decoder could not use them

    @property
    def short(self) -> bool:
        """Fewer frames than expected (by more than one, for rounding of the duration)."""
        return self.expected is not None and self.frames < self.expected - 1


@dataclass
class _Frame:
    pixels: np.ndarray
    pts: int | None
    time_base: Fraction | None
    duration: int | None


def _add_stream(output, what: str, codec: str | None = None, template=None, **options):
    """A new stream in ``output`` (a copy of ``template``'s if given), or a one-line error."""
    try:
        if template is not None:
            return output.add_stream_from_template(template)
        return output.add_stream(codec, **options)
    except ValueError:  # the container cannot hold this codec
        raise JKSPNetError(
            f"{output.format.long_name} cannot hold {what}; choose another output suffix "
            "(.mkv holds any codec) or --codec"
        ) from None


class _Writer:
    """Encodes colour frames into a new video stream, keeping the timestamps it is given.

    Timestamps are rescaled to the stream's ``time_base`` (the input's) and kept strictly
    increasing.
    """

    def __init__(
        self,
        av,
        output,
        codec: str,
        crf: int | None,
        size: tuple[int, int],
        rate: Fraction,
        time_base: Fraction | None = None,
    ) -> None:
        encoder = check_encoder(codec)
        width, height = size
        stream = _add_stream(output, f"{codec} video", codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pixel_format(encoder, width, height)
        # AVI stores frames at a constant rate, in decoding order, without timestamps: number
        # them one by one, and leave out B-frames, which it cannot reorder.
        self.renumber = output.format.name == "avi"
        if self.renumber:
            time_base = None
            stream.codec_context.max_b_frames = 0
        self.time_base = Fraction(time_base or 1 / Fraction(rate))
        stream.time_base = stream.codec_context.time_base = self.time_base
        # The colours are converted with the BT.709 matrix, and labelled so.
        context = stream.codec_context
        context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
        context.color_range = 1  # limited ("tv") range, as players expect
        if crf is not None:
            stream.options = {"crf": str(crf)}
        self.av, self.output, self.stream = av, output, stream
        self.frame_ticks = max(1, round(1 / (Fraction(rate) * self.time_base)))
        self.next_pts = 0

    def _ticks(self, value: int | None, time_base: Fraction | None) -> int | None:
        if value is None or time_base is None:
            return None
        return round(value * Fraction(time_base) / self.time_base)

    def write(self, rgb: np.ndarray, frame: _Frame) -> None:
        picture = self.av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format=self.stream.pix_fmt, dst_colorspace="ITU709"
        )
        pts = None if self.renumber else self._ticks(frame.pts, frame.time_base)
        if pts is None or pts < self.next_pts:  # no timestamp, or one out of order
            pts = self.next_pts
        duration = self._ticks(frame.duration, frame.time_base) or self.frame_ticks
        picture.pts, picture.time_base, picture.duration = pts, self.time_base, duration
        self.next_pts = pts + 1
        for packet in self.stream.encode(picture):
            self.output.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.output.mux(packet)


def write_video(
    target: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    frame_rate: Fraction | int,
    *,
    codec: str = DEFAULT_CODEC,
    crf: int | None = DEFAULT_CRF,
    audio: tuple[np.ndarray, int] | None = None,
    audio_codec: str = "aac",
) -> int:
    """Encode RGB frames (uint8 (H, W, 3), all one size) into a new film; returns the count.

    ``audio`` is (samples, rate): float32 samples of shape (channels, n) in [-1, 1], encoded
    with ``audio_codec`` beside the picture (for test clips and benchmarks). Written atomically,
    replacing ``target``.
    """
    av = import_av()
    target = Path(target)
    rate = Fraction(frame_rate)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames")
    count = 0

    def encode(stream: BinaryIO) -> None:
        nonlocal count
        with av.open(stream, "w", format=CONTAINERS[target.suffix.lower()]) as output:
            size = (first.shape[1], first.shape[0])
            writer = _Writer(av, output, codec, crf, size, rate)
            if audio is not None:
                samples, sample_rate = audio
                layout = "mono" if samples.shape[0] == 1 else "stereo"
                sound = output.add_stream(audio_codec, rate=sample_rate, layout=layout)
                block = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=layout
                )
                block.sample_rate, block.pts = sample_rate, 0
                for packet in [*sound.encode(block), *sound.encode(None)]:
                    output.mux(packet)
            for index, rgb in enumerate(itertools.chain([first], frames)):
                writer.write(rgb, _Frame(rgb, index, 1 / rate, None))
                count += 1
            writer.close()

    write_atomic(target, encode)
    return count


_IDENTITY_MATRIX = [1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30]


def _display_matrix(path: Path) -> list[int] | None:
    """The display matrix a player applies to the film (phones store portrait clips turned, with
    a rotation to apply; some clips are mirrored), in FFmpeg's 9-integer layout, from the first
    frame that decodes; None for none, the identity, or a PyAV that cannot say."""
    av = import_av()
    try:
        with av.open(str(path), "r") as container:
            for index, packet in enumerate(container.demux(container.streams.video[0])):
                if index == 64:  # nothing decodes near the start: the main pass will say so
                    return None
                try:
                    frames = packet.decode()
                except av.FFmpegError:  # a damaged packet: the next may decode
                    continue
                for frame in frames:
                    for data in getattr(frame, "side_data", ()):
                        if "DISPLAYMATRIX" in str(data.type):
                            matrix = np.frombuffer(bytes(data), dtype=np.int32).tolist()
                            return None if matrix == _IDENTITY_MATRIX else matrix
                    return None
    except av.FFmpegError:
        return None
    return None


@dataclass
class _Damage:
    """Packets the decoder refused, and FFmpeg's reason for the last one."""

    packets: int = 0
    reason: str = ""


def _frames(container, output, audio: dict, damage: _Damage) -> Iterator[_Frame]:
    """Decoded grey frames of the first video stream; audio packets are muxed on the way.

    A packet the decoder refuses is skipped (it picks up again at the next one it can use) and
    counted in ``damage``. FFmpeg's demuxers resynchronise past damage themselves; one that
    raises fails the film.
    """
    from av import FFmpegError

    video = container.streams.video[0]
    video.thread_type = "AUTO"
    packets = container.demux(video, *audio)
    while True:
        try:
            packet = next(packets, None)
        except FFmpegError as error:
            raise VideoError(
                container.name, f"truncated or corrupt video ({_why(error)})"
            ) from None
        if packet is None:
            return
        decoded = []
        if packet.stream is video:
            try:
                decoded = packet.decode()
            except FFmpegError as error:
                if packet.size:  # not the empty packet that flushes the decoder at the end
                    damage.packets += 1
                    damage.reason = _why(error)
        for frame in decoded:
            yield _Frame(
                frame.to_ndarray(format="gray"),
                frame.pts,
                frame.time_base,
                getattr(frame, "duration", None),
            )
        if packet.stream is not video and packet.dts is not None:  # audio, not a flush marker
            packet.stream = audio[packet.stream]
            output.mux(packet)


def colorize_video(
    colorizer,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    stabilize: bool | Stabilizer = True,
    codec: str = DEFAULT_CODEC,
    crf: int | None = DEFAULT_CRF,
    batch_size: int = 16,
    temperature: float | None = None,
    size: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> VideoResult:
    """Colorize the film ``source`` into ``target`` (its suffix picks the container).

    ``stabilize`` is True for a default :class:`Stabilizer`, False for frames coloured
    independently, or a Stabilizer of your own. ``crf`` is the encoder's constant-quality
    setting (for codecs that take one: libx264, libx265, libvpx-vp9, ...). ``size`` is the network
    input side (default: the colorizer's). ``progress`` is called
    with the number of frames finished after each batch. Raises :class:`VideoError` for a film
    that cannot be read, :class:`FileExistsError` if ``target`` exists and not ``overwrite``.
    """
    av = import_av()
    source, target = Path(source), Path(target)
    container_format = CONTAINERS.get(target.suffix.lower())
    if container_format is None:
        writable = ", ".join(sorted(CONTAINERS))
        raise JKSPNetError(f"{target}: cannot write {target.suffix} films (use one of {writable})")
    stabilizer = Stabilizer() if stabilize is True else (stabilize or None)
    if stabilizer is not None:  # a Stabilizer serves one film: forget any earlier one's
        stabilizer.restart()
    if not overwrite and target.exists():
        raise FileExistsError(str(target))
    container = _open_input(source, colorizer.max_pixels)
    info = _info(container)
    written = 0
    damage = _Damage()
    matrix = _display_matrix(source)

    def encode(stream: BinaryIO) -> None:
        nonlocal written
        with av.open(stream, "w", format=container_format) as output:
            video = container.streams.video[0]
            shape = (info.width, info.height)
            writer = _Writer(av, output, codec, crf, shape, info.frame_rate, video.time_base)
            if video.codec_context.sample_aspect_ratio:  # anamorphic film: keep its shape
                writer.stream.codec_context.sample_aspect_ratio = (
                    video.codec_context.sample_aspect_ratio
                )
            if matrix and hasattr(writer.stream, "set_display_matrix"):  # PyAV >= 18
                writer.stream.set_display_matrix(matrix)  # played upright, as the input
            audio = {
                s: _add_stream(output, f"{s.codec_context.name} audio", template=s)
                for s in container.streams.audio
            }
            frames = _frames(container, output, audio, damage)
            for batch in batches(frames, batch_size, lambda _: info.width * info.height):
                prepared = [colorizer.prepare(Photo(frame.pixels), size) for frame in batch]
                small = torch.stack([p.network_input for p in prepared])
                ab = colorizer.predict_ab(small, temperature)
                if stabilizer is not None:
                    ab = stabilizer.run(ab, denormalize_l(small.to(ab.device)))
                for item, ab_one, frame in zip(prepared, ab, batch, strict=True):
                    writer.write(np.asarray(colorizer.finish(item, ab_one)), frame)
                written += len(batch)
                if progress is not None:
                    progress(len(batch))
            if written == 0:
                why = f" ({damage.reason})" if damage.reason else ""
                raise VideoError(str(source), f"no frames could be decoded{why}")
            writer.close()

    remove_stale_temporaries([Path(target).parent])  # what a killed run left there
    with container:
        try:
            write_atomic(target, encode, overwrite)
        except (JKSPNetError, FileExistsError):
            raise
        except av.FFmpegError as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise VideoError(
                str(source), f"truncated or corrupt video, or cannot write {target} ({reason})"
            ) from None
    cuts = list(stabilizer.cuts) if stabilizer is not None else []
    return VideoResult(written, cuts, info.estimated_frames, damage.packets)


__all__ = [
    "DEFAULT_CODEC",
    "DEFAULT_CRF",
    "VIDEO_SUFFIXES",
    "Stabilizer",
    "VideoError",
    "VideoInfo",
    "VideoResult",
    "check_encoder",
    "colorize_video",
    "import_av",
    "is_video",
    "output_suffix",
    "probe",
    "write_video",
]
