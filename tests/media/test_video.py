"""Films: PyAV in and out, the stabiliser against flicker, and `jkspnet colorize film.mp4`.

Every clip is made here from real photos (scikit-image's samples): a static shot of the
astronaut, a cut, then a pan over the coffee cup, with a silent AAC track. Where colours are
judged, a scripted colorizer stands in for the network: its ab is a fixed function of L plus
noise drawn afresh for every frame, i.e. a network that flickers.
"""

from __future__ import annotations

import builtins
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from jkspnet import Colorizer
from jkspnet.cli import main
from jkspnet.colour.spaces import denormalize_l, lab_to_rgb, rgb_to_lab
from jkspnet.engines.film_metrics import flicker, motion_ab_error
from jkspnet.media.video import (
    Stabilizer,
    VideoError,
    colorize_video,
    output_suffix,
    probe,
    write_video,
)
from jkspnet.nn.weights import ModelConfig

WIDTH, HEIGHT, RATE, SHOT = 128, 96, 24, 12  # two shots of SHOT frames: the cut is at SHOT
JND = 2.3  # a just-noticeable colour difference, in ΔE*ab


def grey(rgb: np.ndarray) -> np.ndarray:
    """A black-and-white copy, still RGB."""
    return np.repeat(np.asarray(Image.fromarray(rgb).convert("L"))[..., None], 3, axis=2)


def shot(photo: np.ndarray, count: int, step: tuple[int, int], size=(HEIGHT, WIDTH)):
    """``count`` crops of ``photo``, each moved by ``step`` (rows, columns) from the last."""
    return [
        np.ascontiguousarray(
            photo[i * step[0] : i * step[0] + size[0], i * step[1] : i * step[1] + size[1]]
        )
        for i in range(count)
    ]


def film_frames(astronaut, coffee) -> list[np.ndarray]:
    return shot(astronaut, SHOT, (0, 0)) + shot(coffee, SHOT, (1, 3))


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def timestamps(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [f.pts for f in container.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, bytes(p)) for p in container.demux(audio=0) if p.size]


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut, coffee) -> Path:
    """A black-and-white H.264 film with a cut at frame SHOT and one second of silence."""
    path = tmp_path_factory.mktemp("films") / "film.mp4"
    frames = [grey(f) for f in film_frames(astronaut, coffee)]
    write_video(path, frames, RATE, crf=0, audio=(np.zeros((1, 8000), np.float32), 8000))
    return path


class ScriptedNetwork:
    """A network (:class:`jkspnet.nn.backends.base.Network`) whose ab is a fixed colour function
    of L, plus coarse noise that differs from frame to frame."""

    gives_distribution = False

    def __init__(self, noise: float = 8.0) -> None:
        self.config = ModelConfig(size=32)
        self.device, self.precision = torch.device("cpu"), "fp32"
        self.noise, self.frames = noise, 0

    def ab_at(self, network_input, temperatures, confidence=0.0):
        lightness = denormalize_l(network_input.float())
        ab = torch.cat([40 * torch.sin(lightness / 12), 40 * torch.cos(lightness / 17)], dim=1)
        for one in ab:
            generator = torch.Generator().manual_seed(self.frames)
            coarse = torch.randn(1, 2, 4, 4, generator=generator) * self.noise
            one += F.interpolate(coarse, size=one.shape[-2:], mode="bilinear")[0]
            self.frames += 1
        return [ab for _ in temperatures]

    def logits(self, network_input):
        raise NotImplementedError

    def save_pretrained(self, folder, config, dtype):
        raise NotImplementedError


def scripted_colorizer(network: ScriptedNetwork | None = None) -> Colorizer:
    return Colorizer(network or ScriptedNetwork())


# ------------------------------------------------------------------ the stabiliser alone


def small_lab(frames: list[np.ndarray], side: int = 48) -> list[torch.Tensor]:
    """LAB of each frame at the network's small size."""
    labs = [rgb_to_lab(torch.from_numpy(f).permute(2, 0, 1).float() / 255) for f in frames]
    return [
        F.interpolate(lab[None], size=(side, side), antialias=True, mode="bilinear")[0]
        for lab in labs
    ]


def render(lab: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    rgb = lab_to_rgb(torch.cat([lab[:1], ab])).mul(255).round().byte()
    return rgb.permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def truth(astronaut, coffee) -> list[torch.Tensor]:
    return small_lab(film_frames(astronaut, coffee))


def noisy(truth: list[torch.Tensor]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [
        lab[1:]
        + F.interpolate(
            torch.randn(1, 2, 6, 6, generator=generator) * 8, size=lab.shape[1:], mode="bilinear"
        )[0]
        for lab in truth
    ]


def test_stabilizer_lowers_flicker_without_smearing_motion(truth):
    predicted = noisy(truth)
    stabilizer = Stabilizer()
    smoothed = [stabilizer.step(ab, lab[0]) for ab, lab in zip(predicted, truth, strict=True)]
    raw = [render(lab, ab) for lab, ab in zip(truth, predicted, strict=True)]
    out = [render(lab, ab) for lab, ab in zip(truth, smoothed, strict=True)]
    exact = [render(lab, lab[1:]) for lab in truth]

    assert flicker(out[:SHOT]) < 0.3 * flicker(raw[:SHOT])  # the static shot calms down
    pan = slice(SHOT, None)
    assert motion_ab_error(out[pan], exact[pan]) <= motion_ab_error(raw[pan], exact[pan])
    # Fed the exact colours of a pan, it lags behind them by less than a visible difference.
    follower = Stabilizer()
    lagging = [render(lab, follower.step(lab[1:], lab[0])) for lab in truth[pan]]
    assert motion_ab_error(lagging, exact[pan]) < JND


def test_stabilizer_resets_at_the_cut_only(truth):
    predicted = noisy(truth)
    stabilizer = Stabilizer()
    smoothed = stabilizer.run(torch.stack(predicted), torch.stack([lab[0] for lab in truth]))
    assert stabilizer.cuts == [SHOT]  # the pan is no cut
    assert torch.equal(smoothed[SHOT], predicted[SHOT])  # the new shot starts afresh
    assert not torch.equal(smoothed[SHOT - 1], predicted[SHOT - 1])

    blind = Stabilizer(cut_threshold=1.0)  # never sees a cut: the old shot's colour bleeds in
    bled = blind.run(torch.stack(predicted), torch.stack([lab[0] for lab in truth]))
    assert blind.cuts == [] and not torch.allclose(bled[SHOT], predicted[SHOT], atol=0.5)


def test_flickering_exposure_and_fades_are_no_cut(astronaut):
    rng = np.random.default_rng(2)
    gains = [*rng.uniform(0.88, 1.12, 12), *np.linspace(1.0, 0.3, 8)]  # flicker, then a fade
    frames = shot(astronaut, len(gains), (1, 2))
    frames = [np.clip(f * g, 0, 255).astype(np.uint8) for f, g in zip(frames, gains, strict=True)]
    lightness = torch.stack([lab[0] for lab in small_lab(frames)])
    stabilizer = Stabilizer()
    stabilizer.run(torch.zeros(len(frames), 2, *lightness.shape[-2:]), lightness)
    assert stabilizer.cuts == []


def test_stabilizer_settings():
    ab, lightness = torch.randn(5, 2, 8, 8), torch.rand(5, 8, 8) * 100
    assert torch.equal(Stabilizer(strength=0).run(ab, lightness), ab)
    for wrong in ({"strength": 1.0}, {"strength": -0.1}, {"motion": 0}):
        with pytest.raises(ValueError):
            Stabilizer(**wrong)


# ------------------------------------------------------------------ films end to end


def test_a_film_keeps_its_size_timing_frames_and_sound(clip, tmp_path):
    target = tmp_path / "colour.mp4"
    result = colorize_video(scripted_colorizer(), clip, target, batch_size=5)
    before, after = probe(clip), probe(target)
    assert result.frames == 2 * SHOT == after.frames == len(decode(target))
    assert (after.width, after.height) == (WIDTH, HEIGHT) == (before.width, before.height)
    assert after.frame_rate == Fraction(RATE) and after.duration == pytest.approx(before.duration)
    assert timestamps(target) == timestamps(clip)
    assert after.audio_streams == 1 and audio_packets(target) == audio_packets(clip)
    for frame in decode(target):  # the grey film came out in colour
        chroma = np.abs(frame.astype(int) - frame.mean(axis=2, keepdims=True)).mean()
        assert chroma > 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("suffix", "sound"), [(".mkv", "aac"), (".mov", "aac"), (".avi", "pcm_s16le")]
)
def test_each_container_keeps_frames_and_sound(tmp_path, coffee, suffix, sound):
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    silence = (np.zeros((1, 4000), np.float32), 8000)
    frames = [grey(f) for f in shot(coffee, 10, (2, 3), (48, 64))]
    write_video(source, frames, 20, audio=silence, audio_codec=sound)
    result = colorize_video(scripted_colorizer(), source, target, batch_size=4)
    before, after = probe(source), probe(target)
    assert result.frames == len(decode(target)) == len(decode(source)) == 10
    assert (after.width, after.height, after.frame_rate) == (64, 48, Fraction(20))
    assert audio_packets(target) == audio_packets(source)
    if suffix != ".avi":  # AVI has no timestamps: frames are numbered one by one
        assert timestamps(target) == timestamps(source)
    # Matroska recomputes the AAC track's length from its packets: within a frame.
    assert after.duration == pytest.approx(before.duration, abs=1 / 20)


def test_the_stabiliser_lowers_flicker_and_resets_at_the_cut(clip, tmp_path):
    steady, loose = tmp_path / "steady.mp4", tmp_path / "loose.mp4"
    result = colorize_video(scripted_colorizer(), clip, steady, crf=0)
    colorize_video(scripted_colorizer(), clip, loose, crf=0, stabilize=False)
    assert result.cuts == [SHOT]
    steady_frames, loose_frames = decode(steady), decode(loose)
    assert flicker(steady_frames[:SHOT]) < 0.5 * flicker(loose_frames[:SHOT])

    def gap(index: int) -> float:
        return np.abs(steady_frames[index].astype(int) - loose_frames[index]).mean()

    assert gap(SHOT) < 1.0 < gap(SHOT - 1)  # after the cut, no trace of the last shot's colour


def test_a_film_is_coloured_as_its_frames_would_be_as_photos(tmp_path, coffee, fresh_weights):
    """Odd sizes are kept (4:4:4), and each frame gets the photo pipeline's colours."""
    frames = [grey(f) for f in shot(coffee, 6, (2, 1), size=(53, 75))]
    source, target = tmp_path / "odd.mkv", tmp_path / "odd-colour.mkv"
    write_video(source, frames, Fraction(30000, 1001), crf=0)
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    colorizer.config.size = 32
    colorize_video(colorizer, source, target, crf=0, stabilize=False)
    info = probe(target)
    assert (info.width, info.height, info.frame_rate) == (75, 53, Fraction(30000, 1001))
    for decoded, frame in zip(decode(target), decode(source), strict=True):
        photo = np.asarray(colorizer.colorize(Image.fromarray(frame).convert("L")))
        assert np.abs(decoded.astype(int) - photo).mean() < 2.0


def test_an_interrupted_film_leaves_no_file(clip, tmp_path):
    class Interrupted(ScriptedNetwork):
        def ab_at(self, network_input, temperatures, confidence=0.0):
            if self.frames >= 8:
                raise KeyboardInterrupt
            return super().ab_at(network_input, temperatures, confidence)

    with pytest.raises(KeyboardInterrupt):
        colorize_video(scripted_colorizer(Interrupted()), clip, tmp_path / "out.mp4", batch_size=4)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_films_raise_one_clear_error(clip, tmp_path):
    cases = {
        "empty.mp4": b"",
        "noise.mkv": bytes(range(256)) * 40,
        "cut-short.mp4": clip.read_bytes()[:1500],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(VideoError) as caught:
            colorize_video(scripted_colorizer(), tmp_path / name, tmp_path / f"out-{name}")
        assert str(caught.value).startswith(str(tmp_path / name))
        assert not (tmp_path / f"out-{name}").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(cases)


def damage_one_packet(clip: Path, target: Path) -> int:
    """Copy ``clip`` to ``target`` with noise over the middle video packet; the frame count."""
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        places = [p.pos for p in container.demux(video) if p.size and p.pos is not None]
    data = bytearray(clip.read_bytes())
    middle = places[len(places) // 2]  # from its first NAL unit's length: undecodable
    data[middle : middle + 256] = np.random.default_rng(0).integers(0, 256, 256, np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return len(places)


def test_a_damaged_packet_is_skipped_not_the_whole_film(clip, tmp_path, capsys, fresh_weights):
    film = tmp_path / "damaged.mp4"
    frames = damage_one_packet(clip, film)
    result = colorize_video(scripted_colorizer(), film, tmp_path / "out.mp4")
    assert result.damaged_packets == 1
    assert frames - 3 <= result.frames < frames
    assert probe(tmp_path / "out.mp4").frames == result.frames

    code, _, err = run(
        capsys, "colorize", film, "-o", tmp_path / "cli.mp4", "--weights", fresh_weights,
        "--size", "32", "-q",
    )  # fmt: skip
    assert code == 0 and "Traceback" not in err
    assert f"note: {film}: skipped 1 damaged packet; wrote the {result.frames} frames" in err


def display_matrix(path: Path) -> list[int] | None:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    for data in frame.side_data:
        if "DISPLAYMATRIX" in str(data.type):
            return np.frombuffer(bytes(data), dtype=np.int32).tolist()
    return None


@pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
    reason="this PyAV cannot write a display matrix",
)
@pytest.mark.parametrize(("degrees", "mirrored"), [(90, False), (-90, False), (0, True)])
def test_a_phone_clip_keeps_its_display_matrix(tmp_path, coffee, degrees, mirrored):
    film = tmp_path / "portrait.mp4"
    with av.open(str(film), "w") as container:  # stored landscape, shown turned or mirrored
        stream = container.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(degrees, hflip=mirrored)
        for frame in shot(coffee, 6, (2, 1), size=(48, 64)):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = colorize_video(scripted_colorizer(), film, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as container:
        first = next(container.decode(video=0))
    assert result.frames == 6 and (first.width, first.height) == (64, 48)
    assert display_matrix(tmp_path / "out.mp4") == display_matrix(film) is not None
    if not mirrored:  # (PyAV reads a mirror as a rotation of -180: the matrix is what counts)
        assert first.rotation == degrees


# ------------------------------------------------------------------ the command line


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_colorize_picks_films_in_a_folder_beside_photos(capsys, tmp_path, clip, fresh_weights):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "film.mp4").write_bytes(clip.read_bytes())
    (folder / "film.webm").write_bytes(b"")  # a film that cannot be read: its own error line
    Image.fromarray(decode(clip)[0]).save(folder / "still.png")
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "colorize", folder, "-o", out, "--weights", fresh_weights, "--size", "32", "-q"
    )
    assert code == 1 and f"error: {folder / 'film.webm'}: empty file (0 bytes)" in err
    assert "colorized 2, failed 1, skipped 0" in stdout and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["film.mp4", "still.png"]
    assert probe(out / "film.mp4").frames == 2 * SHOT

    code, stdout, err = run(
        capsys, "colorize", folder / "film.mp4", "-o", out, "--weights", fresh_weights
    )
    assert code == 0 and "skipped 1 existing" in err


def test_colorize_one_film_with_options(capsys, tmp_path, clip, fresh_weights):
    target = tmp_path / "colour.mkv"
    code, stdout, err = run(
        capsys,
        "colorize",
        clip,
        "-o",
        target,
        "--weights",
        fresh_weights,
        "--size",
        "32",
        "--no-stabilize",
        "--crf",
        "30",
        "--batch-size",
        "7",
    )
    assert code == 0, err
    assert stdout.strip() == f"wrote {target}"
    assert "frame" in err  # the progress bar counts frames
    info = probe(target)
    assert info.frames is None and info.codec == "h264" and info.audio_streams == 1
    assert len(decode(target)) == 2 * SHOT


def test_outputs_keep_the_film_suffix_where_the_codec_fits():
    assert output_suffix(Path("a.MOV")) == ".MOV" and output_suffix(Path("b.avi")) == ".avi"
    assert output_suffix(Path("c.webm")) == ".mkv"  # WebM cannot hold H.264
    assert output_suffix(Path("c.webm"), "libvpx-vp9") == ".webm"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["-o", "{tmp}/x.png"], "cannot write a film as .png"),
        (["-o", "{tmp}/x.mp4", "--codec", "nonesuch"], "unknown video encoder 'nonesuch'"),
        (["-o", "{tmp}/x.mp4", "--codec", "aac"], "aac is not a video encoder"),
    ],
)
def test_film_usage_errors_are_one_line(capsys, tmp_path, clip, fresh_weights, extra, expected):
    extra = [e.format(tmp=tmp_path) for e in extra]
    code, _, err = run(capsys, "colorize", clip, *extra, "--weights", fresh_weights)
    assert code == 2 and err.strip() == f"error: {err.strip()[7:]}" and expected in err
    assert len(err.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


@pytest.fixture
def no_pyav(monkeypatch):
    """Imports of PyAV fail, as where the [video] extra is not installed."""
    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)


def test_without_pyav_films_ask_for_the_extra(capsys, tmp_path, clip, no_pyav):
    code, _, err = run(capsys, "colorize", clip, "-o", tmp_path / "x.mp4")
    assert code == 2
    assert err.strip() == (
        "error: colorizing video needs PyAV: install the [video] extra: "
        "pip install 'jkspnet[video]'"
    )


def test_without_pyav_the_photos_beside_a_film_are_still_colorized(
    capsys, tmp_path, clip, photo_dir, fresh_weights, no_pyav
):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "film.mp4").write_bytes(clip.read_bytes())
    (folder / "coffee.webp").write_bytes((photo_dir / "coffee.webp").read_bytes())
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "colorize", folder, "-o", out, "--weights", fresh_weights)
    assert code == 1 and "colorized 1, failed 1" in stdout
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: {folder / 'film.mp4'}: colorizing video needs PyAV: install the [video] "
        "extra: pip install 'jkspnet[video]'"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["coffee.webp"]


def test_a_stabilizer_serves_each_film_afresh(tmp_path, clip, colorizer):
    stabilizer = Stabilizer()
    first = colorize_video(colorizer, clip, tmp_path / "a.mp4", stabilize=stabilizer)
    second = colorize_video(colorizer, clip, tmp_path / "b.mp4", stabilize=stabilizer)
    assert second.cuts == first.cuts and stabilizer.frames == second.frames
