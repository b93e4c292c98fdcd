"""Colorizing films: video in and out with PyAV, and a temporal stabiliser against flicker.

A film is colorized frame by frame with the photo pipeline (:class:`~jkspnet.pipeline.Colorizer`):
every frame's L goes to the network as the same small square, so frames batch together, and the
predicted ab is joined to the frame's own full-resolution L. Frames coloured independently
flicker: a small change of grain or exposure can tip a region from one colour to another.
:class:`Stabilizer` smooths the low-resolution ab over time and resets at scene cuts.

Video is streamed: packets are demuxed, decoded, colorized in batches, encoded and muxed as they
come, so memory does not grow with the film's length. The output keeps the input's resolution,
frame timestamps (so frame rate, frame count and duration), and its audio streams, copied packet
for packet. It is written through :func:`jkspnet.files.write_atomic`: a temporary file beside the
target, renamed into place at the end, so an interrupted run leaves no half-written film.

PyAV (the ``[video]`` extra) is imported only when a film is read or written.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F

from .color import denormalize_l
from .errors import JKSPNetError, PhotoError
from .files import write_atomic
from .filmfiles import (
    _CONTAINERS,
    DEFAULT_CODEC,
    DEFAULT_CRF,
    VIDEO_HINT,
    VIDEO_SUFFIXES,
    is_video,
    output_suffix,
)
from .photos import Photo

_BATCH_PIXELS = 1 << 25  # full-resolution frames held at once: about 32 M pixels


class VideoError(PhotoError):
    """A film that cannot be read or written; the message names the file and the reason."""


def import_av():
    """PyAV, or a one-line error that names the extra to install."""
    try:
        import av
    except ImportError:
        raise JKSPNetError(f"colorizing video needs PyAV: {VIDEO_HINT}") from None
    return av


def check_encoder(codec: str):
    """PyAV's encoder named ``codec``, or a one-line error (PyAV missing, no such encoder)."""
    av = import_av()
    try:
        encoder = av.Codec(codec, "w")
    except (av.FFmpegError, ValueError):
        raise JKSPNetError(f"unknown video encoder {codec!r} (try libx264)") from None
    if encoder.type != "video":
        raise JKSPNetError(f"{codec} is not a video encoder")
    return encoder


# ------------------------------------------------------------------------------ stabiliser


@dataclass
class Stabilizer:
    """Temporal smoothing of the predicted colours, reset at scene cuts.

    Works on the network's own small square: the predicted ab (2, s, s) and the frame's L at the
    same size. Each frame's output is an exponential moving average::

        out_t = keep * out_{t-1} + (1 - keep) * ab_t,   keep = strength * exp(-change / motion)

    per pixel, where ``change`` is the frame-to-frame |ΔL| there (averaged over 3x3 pixels of
    the small square). Where the picture stands still, ``keep`` is ``strength`` and colour noise
    is averaged over the last few frames (about ``1 / (1 - strength)``); where something moves
    or the light changes, ``keep`` falls towards 0 and the new frame's colour is taken, so
    motion is not smeared.

    Smoothing ab is smoothing the 313-bin distributions: ab is ``sum_q p_q c_q``, linear in the
    probabilities ``p`` for the bin centres ``c``, so the moving average of ab is exactly the ab of
    the moving average of the distributions, at 2 numbers per pixel instead of 313, and for any
    backend (ONNX Runtime gives ab only).

    A scene cut resets the average: the new shot starts from its own prediction, so colour never
    bleeds across the cut. A cut is a change in the shape of the frame's distribution of tones:
    each frame's small L is standardised (minus its mean, over its standard deviation), sorted,
    and compared with the last frame's as the mean absolute difference (the Wasserstein distance
    of the two standardised distributions). Exposure flicker, fades and contrast changes leave
    it near 0; pans over one scene stayed below 0.09 and cuts between different photos above 0.12
    on scikit-image's samples, so a cut is a distance over ``cut_threshold`` (0.11). A cut it
    misses (two shots with tones of the same shape) is still kept apart pixel by pixel, since L
    differs where the pictures differ, as is a sudden jump of brightness.
    """

    strength: float = 0.8
    motion: float = 4.0
    cut_threshold: float = 0.11
    cuts: list[int] = field(default_factory=list)
    """Frame indices (counted from 0) where a cut reset the average."""

    def __post_init__(self) -> None:
        if not 0 <= self.strength < 1:
            raise ValueError(f"strength must be in [0, 1), got {self.strength}")
        if not self.motion > 0:
            raise ValueError(f"motion must be greater than 0, got {self.motion}")
        self.frames = 0
        self._ab: torch.Tensor | None = None
        self._lightness: torch.Tensor | None = None
        self._tones: torch.Tensor | None = None

    def restart(self) -> None:
        """Start a new film: forget the past, the frame count and the cuts found."""
        self.reset()
        self.frames = 0
        self.cuts.clear()

    def reset(self) -> None:
        """Forget the past: the next frame is taken as predicted."""
        self._ab = self._lightness = self._tones = None

    @staticmethod
    def _tones_of(lightness: torch.Tensor) -> torch.Tensor:
        """The frame's L values, standardised and sorted: the shape of its tones."""
        values = lightness.float().flatten()
        spread = values.std().clamp(min=1.0)  # a flat (black) frame: do not blow up its noise
        return ((values - values.mean()) / spread).sort().values

    def step(self, ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        """The stabilised ab (2, s, s) for the next frame's predicted ab and its L (s, s)."""
        tones = self._tones_of(lightness)
        if self._tones is not None:
            distance = float((tones - self._tones).abs().mean())
            if distance > self.cut_threshold:
                self.cuts.append(self.frames)
                self.reset()
        if self._ab is None or self._lightness is None:
            out = ab.clone()
        else:
            change = (lightness - self._lightness).abs()[None, None]
            change = F.avg_pool2d(change, 3, stride=1, padding=1, count_include_pad=False)[0]
            keep = self.strength * torch.exp(-change / self.motion)
            out = torch.lerp(ab, self._ab, keep)
        self._ab, self._lightness, self._tones = out, lightness, tones
        self.frames += 1
        return out

    def run(self, ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        """Stabilise a batch of consecutive frames: ab (N, 2, s, s), L (N, s, s) or (N, 1, s, s)."""
        lightness = lightness.reshape(ab.shape[0], *ab.shape[-2:])
        return torch.stack([self.step(a, lum) for a, lum in zip(ab, lightness, strict=True)])


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


def _pixel_format(codec, width: int, height: int) -> str:
    """4:2:0 where the codec takes it and the size is even (every player's format), else 4:4:4."""
    formats = [f.name for f in (codec.video_formats or ())]
    even = width % 2 == 0 and height % 2 == 0
    for name in ("yuv420p", "yuv444p") if even else ("yuv444p",):
        if not formats or name in formats:
            return name
    if formats:
        return formats[0]
    raise JKSPNetError(f"codec {codec.name} cannot encode a {width}x{height} picture")


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
        stream.pix_fmt = _pixel_format(encoder, width, height)
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
        with av.open(stream, "w", format=_CONTAINERS[target.suffix.lower()]) as output:
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


def _batches(frames: Iterator[_Frame], size: int) -> Iterator[list[_Frame]]:
    batch: list[_Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
    container_format = _CONTAINERS.get(target.suffix.lower())
    if container_format is None:
        writable = ", ".join(sorted(_CONTAINERS))
        raise JKSPNetError(f"{target}: cannot write {target.suffix} films (use one of {writable})")
    stabilizer = Stabilizer() if stabilize is True else (stabilize or None)
    if stabilizer is not None:  # a Stabilizer serves one film: forget any earlier one's
        stabilizer.restart()
    if not overwrite and target.exists():
        raise FileExistsError(str(target))
    container = _open_input(source, colorizer.max_pixels)
    info = _info(container)
    per_batch = max(1, min(batch_size, _BATCH_PIXELS // (info.width * info.height)))
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
            for batch in _batches(_frames(container, output, audio, damage), per_batch):
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
]
