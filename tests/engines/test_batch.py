"""The batch engine: plans of inputs to outputs, shards of pairs, one outcome per file."""

from __future__ import annotations

import pytest
from PIL import Image

from jkspnet import Colorizer
from jkspnet.cli import main
from jkspnet.engines import batch as batch_module
from jkspnet.engines.batch import BatchOptions, FileOutcome, colorize_files
from jkspnet.engines.plan import PlanError, plan_outputs
from jkspnet.media import budget

from ..hostile import deny_writing


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def small(fresh_weights) -> Colorizer:
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    colorizer.config.size = 16
    return colorizer


def test_a_plan_keeps_names_folders_and_formats(tmp_path, photo_dir):
    (photo_dir / "sub").mkdir()
    Image.new("L", (8, 8)).save(photo_dir / "sub" / "small.gif")
    out = tmp_path / "out"
    flat = dict(plan_outputs([photo_dir], out))
    assert {p.name: t for p, t in flat.items()} == {
        "astronaut.jpg": out / "astronaut.jpg",
        "astronaut_grey.png": out / "astronaut_grey.png",
        "coffee.webp": out / "coffee.webp",
    }
    deep = dict(plan_outputs([photo_dir], out, recursive=True, format="png"))
    assert deep[photo_dir / "sub" / "small.gif"] == out / "sub" / "small.png"
    assert deep[photo_dir / "astronaut.jpg"] == out / "astronaut.png"
    one = photo_dir / "coffee.webp"
    assert plan_outputs([one], tmp_path / "colour.jpg") == [(one, tmp_path / "colour.jpg")]


def test_a_plan_that_cannot_be_made_raises(tmp_path, photo_dir):
    blocker = tmp_path / "file.png"
    blocker.write_bytes(b"")
    with pytest.raises(PlanError, match="exists and is not a folder"):
        plan_outputs([photo_dir], blocker)
    with pytest.raises(PlanError, match=r"cannot write \.gif files"):
        plan_outputs([photo_dir / "coffee.webp"], tmp_path / "colour.gif")
    with pytest.raises(PlanError, match="no such file or folder"):
        plan_outputs([tmp_path / "missing.jpg", photo_dir], tmp_path / "out")
    with pytest.raises(PlanError, match="unknown output format"):
        plan_outputs([photo_dir], tmp_path / "out", format="gif")
    problems: list = []
    pairs = plan_outputs([tmp_path / "missing.jpg", photo_dir], tmp_path / "out", problems=problems)
    assert len(pairs) == 3 and [p.reason for p in problems] == ["no such file or folder"]


def test_a_shard_of_pairs_ends_in_one_outcome_per_file(tmp_path, photo_dir, small):
    out = tmp_path / "out"
    (out / "exists.png").parent.mkdir(parents=True)
    (out / "exists.png").write_bytes(b"mine")
    (tmp_path / "bad.png").write_bytes(b"not a photo")
    pairs = [
        (photo_dir / "astronaut.jpg", out / "a.jpg"),
        (photo_dir / "coffee.webp", out / "exists.png"),
        (tmp_path / "bad.png", out / "bad.png"),
        (photo_dir / "astronaut_grey.png", out / "a.jpg"),  # the same output as the first
    ]
    seen: list[FileOutcome] = []
    lines: list[str] = []
    options = BatchOptions(batch_size=2, progress=False)
    result = colorize_files(pairs, small, options, seen.append, report=lines.append)
    assert (result.done, result.skipped, result.failed) == (1, 1, 2)
    assert sorted(seen, key=str) == sorted(result.outcomes, key=str) and len(seen) == 4
    status = {(o.input.name, o.status) for o in result.outcomes}
    assert status == {
        ("astronaut.jpg", "done"),
        ("coffee.webp", "skipped"),
        ("bad.png", "failed"),
        ("astronaut_grey.png", "failed"),
    }
    assert all(o.reason and "\n" not in o.reason for o in result.outcomes if o.status != "done")
    assert (out / "exists.png").read_bytes() == b"mine"
    assert Image.open(out / "a.jpg").size == Image.open(photo_dir / "astronaut.jpg").size
    assert any(line.startswith(f"error: {tmp_path / 'bad.png'}: ") for line in lines)
    assert f"error: {photo_dir / 'astronaut_grey.png'}: its output" in "\n".join(lines)

    again = colorize_files(pairs[:2], small, BatchOptions(overwrite=True, progress=False))
    assert (again.done, again.skipped, again.failed) == (2, 0, 0)
    assert (out / "exists.png").read_bytes() != b"mine"


def test_the_colorizer_is_made_only_for_work(tmp_path, photo_dir, small):
    target = tmp_path / "done.png"
    target.write_bytes(b"")
    made = []
    result = colorize_files(
        [(photo_dir / "coffee.webp", target)], lambda: made.append(1) or small, BatchOptions()
    )
    assert result.skipped == 1 and not made
    result = colorize_files(
        [(photo_dir / "coffee.webp", tmp_path / "new.png")], lambda: made.append(1) or small
    )
    assert result.done == 1 and made == [1]


def test_an_unwritable_folder_fails_its_files_in_one_line(tmp_path, photo_dir, small, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    deny_writing(locked, monkeypatch)
    pairs = [(photo_dir / name, locked / name) for name in ("astronaut.jpg", "coffee.webp")]
    lines: list[str] = []
    result = colorize_files(pairs, small, BatchOptions(progress=False), report=lines.append)
    assert result.failed == 2
    assert {o.reason for o in result.outcomes} == {"cannot write there (Permission denied)"}
    assert lines == [
        f"error: {locked}: cannot write there (Permission denied): 2 output(s) not written"
    ]


def test_options_reach_the_network_and_the_files(tmp_path, photo_dir, small, monkeypatch):
    calls = []
    real_prepare, real_predict = Colorizer.prepare, Colorizer.predict_ab
    monkeypatch.setattr(
        Colorizer,
        "prepare",
        lambda self, photo, size=None: calls.append(size) or real_prepare(self, photo, size),
    )
    monkeypatch.setattr(
        Colorizer,
        "predict_ab",
        lambda self, x, t=None: calls.append(t) or real_predict(self, x, t),
    )
    source = photo_dir / "astronaut.jpg"
    Image.open(source).save(tmp_path / "dated.jpg", exif=_exif_with_a_date())
    options = BatchOptions(size=24, temperature=0.5, metadata=False, progress=False)
    result = colorize_files([(tmp_path / "dated.jpg", tmp_path / "out.jpg")], small, options)
    assert result.done == 1 and calls == [24, 0.5]
    assert not Image.open(tmp_path / "out.jpg").getexif()


def _exif_with_a_date() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0132] = "2001:02:03 04:05:06"  # DateTime
    return exif


def test_folders_are_batched_by_count_and_by_pixels(tmp_path, monkeypatch, capsys, fresh_weights):
    """Big photos batch fewer at a time, so memory stays bounded whatever the photos' sizes."""
    sizes = {"a": (10, 10), "b": (20, 20), "c": (30, 10), "d": (40, 40), "e": (5, 5), "f": (9, 9)}
    for name, size in sizes.items():
        Image.new("L", size, 128).save(tmp_path / f"{name}.png")
    (tmp_path / "g.png").write_bytes(b"not a photo")  # no header: counted as 0, fails later
    jobs = [batch_module.Job(tmp_path / f"{n}.png", tmp_path / "out" / n) for n in "abcdefg"]
    batches = batch_module.photo_batches(jobs, size=3, pixels=800)
    names = [[job.source.stem for job in batch] for batch in batches]
    # a + b + c: 800 pixels, the budget; d (1,600) is over it, so alone; then count bounds e, f, g
    assert names == [["a", "b", "c"], ["d"], ["e", "f", "g"]]

    monkeypatch.setattr(budget, "BATCH_PIXELS", 800)
    seen = []
    real = Colorizer.predict_ab
    monkeypatch.setattr(
        Colorizer, "predict_ab", lambda self, x, t=None: seen.append(len(x)) or real(self, x, t)
    )
    code, _, _ = run(
        capsys, "colorize", tmp_path, "-o", tmp_path / "out", "--weights", fresh_weights,
        "--size", "16", "--batch-size", "3",
    )  # fmt: skip
    assert code == 1  # g.png
    assert seen == [3, 1, 2]
    assert len(list((tmp_path / "out").iterdir())) == 6
