"""Film colorization speed end to end (decode + colorize + encode), and what the stabiliser does.

Builds a black-and-white 720p clip from two real photos (scikit-image's samples): a static shot
of the astronaut, a cut, then a pan over the rocket, at 24 fps with a silent AAC track, with film
grain and flickering exposure throughout. Colorizes it with the weights given (default: the
bundled ones) as `jkspnet colorize` does, with and without the stabiliser, and reports:

* frames per second end to end, and for decoding alone, the pipeline alone (prepare,
  network, stabiliser, finish; no file) and encoding alone (H.264, CRF 18), so the shares show.
  Timed runs alternate over ``--rounds`` (this machine's speed drifts); medians are reported;
* flicker (mean |Δab| where the picture stands still; `jkspnet.engines.film_metrics.flicker`) over
  the static shot, stabilised and not;
* ab error against the photos' true colours where the pan moves
  (`jkspnet.engines.film_metrics.motion_ab_error`), stabilised and not: smearing would raise it;
* the frames where the stabiliser saw a cut (the clip has one).

    python benchmarks/bench_video.py --seconds 5 --out bench-video.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import skimage.data
import torch
from PIL import Image

from jkspnet import Colorizer
from jkspnet.engines.film_metrics import flicker, motion_ab_error
from jkspnet.media.photos import Photo
from jkspnet.media.video import colorize_video, probe, write_video

RATE = 24


def _cover(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """``photo`` scaled (Lanczos) to cover width x height with room to spare."""
    scale = max(width / photo.shape[1], height / photo.shape[0])
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))


def make_clip(seconds: float, width: int, height: int) -> tuple[list[np.ndarray], int]:
    """Colour frames of the clip (the truth) and the index of the cut."""
    frames = round(seconds * RATE)
    still = frames * 2 // 5
    static = _cover(skimage.data.astronaut(), width, height)
    top, left = (static.shape[0] - height) // 2, (static.shape[1] - width) // 2
    shot = [static[top : top + height, left : left + width]] * still
    rocket = _cover(skimage.data.rocket(), width * 1.3, height * 1.5)
    travel = (rocket.shape[0] - height, rocket.shape[1] - width)
    moving = frames - still
    for i in range(moving):
        y = round(travel[0] * i / max(moving - 1, 1))
        x = round(travel[1] * i / max(moving - 1, 1))
        shot.append(rocket[y : y + height, x : x + width])
    return shot, still


def old_film(frames: list[np.ndarray], grain: float = 3.0, exposure: float = 0.03):
    """Black-and-white frames with an old film's faults: grain, and exposure that flickers."""
    rng = np.random.default_rng(0)
    out = []
    for frame in frames:
        luma = np.asarray(Image.fromarray(frame).convert("L"), dtype=np.float32)
        luma = luma * (1 + rng.normal(0, exposure)) + rng.normal(0, grain, luma.shape)
        noisy = np.clip(luma, 0, 255).astype(np.uint8)
        out.append(np.repeat(noisy[..., None], 3, axis=2))
    return out


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def decode_only(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for f in container.decode(stream) if f.to_ndarray(format="gray") is not None)


def pipeline_only(colorizer: Colorizer, grey: list[np.ndarray], batch: int) -> None:
    """prepare, network and finish in batches, as colorize_video runs them, without files."""
    from jkspnet.colour.spaces import denormalize_l
    from jkspnet.media.video import Stabilizer

    stabilizer = Stabilizer()
    for start in range(0, len(grey), batch):
        prepared = [colorizer.prepare(Photo(f[..., 0])) for f in grey[start : start + batch]]
        small = torch.stack([p.network_input for p in prepared])
        ab = stabilizer.run(colorizer.predict_ab(small), denormalize_l(small))
        for item, one in zip(prepared, ab, strict=True):
            np.asarray(colorizer.finish(item, one))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--weights", help="default: the bundled weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="write the results as JSON here too")
    args = parser.parse_args()

    colorizer = Colorizer.from_pretrained(args.weights, device=args.device)
    truth, cut = make_clip(args.seconds, args.width, args.height)
    grey = old_film(truth)
    with tempfile.TemporaryDirectory() as folder:
        clip, steady, loose = (Path(folder) / n for n in ("clip.mp4", "steady.mp4", "loose.mp4"))
        silence = (np.zeros((1, round(args.seconds * 48000)), np.float32), 48000)
        encode_seconds = timed(lambda: write_video(clip, grey, RATE, audio=silence))
        decode_seconds = timed(lambda: decode_only(clip))
        pipeline_only(colorizer, grey[: args.batch_size], args.batch_size)  # warm-up
        times: dict[str, list[float]] = {"pipeline": [], "stabilised": [], "independent": []}
        cuts: dict[str, list[int]] = {}
        for _ in range(args.rounds):
            times["pipeline"].append(timed(lambda: pipeline_only(colorizer, grey, args.batch_size)))
            for name, target in (("stabilised", steady), ("independent", loose)):
                start = time.perf_counter()
                result = colorize_video(
                    colorizer,
                    clip,
                    target,
                    stabilize=target == steady,
                    batch_size=args.batch_size,
                    overwrite=True,
                )
                times[name].append(time.perf_counter() - start)
                cuts[name] = result.cuts
        results = {}
        for name, target in (("stabilised", steady), ("independent", loose)):
            frames = decode(target)
            results[name] = {
                "end_to_end_fps": len(frames) / statistics.median(times[name]),
                "cuts": cuts[name],
                "flicker_static_shot": flicker(frames[:cut]),
                "ab_error_where_the_pan_moves": motion_ab_error(frames[cut:], truth[cut:]),
            }
        info = probe(steady)
    frames = len(truth)
    report = {
        "clip": f"{args.width}x{args.height}, {frames} frames at {RATE} fps, cut at {cut}",
        "output": f"{info.width}x{info.height}, {info.frames} frames, {info.frame_rate} fps",
        "weights": args.weights or "bundled",
        "network_size": colorizer.config.size,
        "device": str(colorizer.device),
        "torch_threads": torch.get_num_threads(),
        "decode_fps": frames / decode_seconds,
        "pipeline_fps": frames / statistics.median(times["pipeline"]),
        "rounds": args.rounds,
        "encode_fps": frames / encode_seconds,
        **results,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "pyav": av.__version__,
    }
    assert Fraction(info.frame_rate) == RATE and info.frames == frames
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
