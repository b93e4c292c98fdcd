"""``jkspnet colorize`` with colour hints, a reference photo and the uncertainty map (issue 16
moves cli.py into a package; these tests follow the colorize command wherever it lives)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from jkspnet.cli import main


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def two_regions(tmp_path):
    """A grey photo 120 x 80: dark left, light right; and its hints sidecar (red, left)."""
    pixels = np.full((80, 120), 60, np.uint8)
    pixels[:, 60:] = 200
    path = tmp_path / "in" / "scan.png"
    path.parent.mkdir()
    Image.fromarray(pixels).save(path)
    return path


def _redness(path, columns=slice(0, 50)) -> float:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)[:, columns]
    return float((rgb[..., 0] - rgb[..., 2]).mean())


def test_hint_options_sidecar_and_no_hints(capsys, tmp_path, two_regions, fresh_weights):
    weights = ("--weights", fresh_weights)
    out = tmp_path / "out"
    code, _, err = run(capsys, "colorize", two_regions, "-o", out / "auto.png", *weights)
    assert code == 0, err
    code, _, err = run(
        capsys, "colorize", two_regions, "-o", out / "hint.png", "--hint", "20,40,#e01010", *weights
    )
    assert code == 0, err
    assert _redness(out / "hint.png") > _redness(out / "auto.png") + 30

    # a sidecar is picked up (also for a folder), --hints wins over it, --no-hints ignores it
    sidecar = two_regions.with_name("scan.hints.json")
    sidecar.write_text(json.dumps([{"x": 20, "y": 40, "color": "#1010e0"}]))
    code, _, err = run(capsys, "colorize", two_regions.parent, "-o", out / "folder", *weights)
    assert code == 0, err
    assert sorted(p.name for p in (out / "folder").iterdir()) == ["scan.png"]  # no sidecar copy
    assert _redness(out / "folder" / "scan.png") < _redness(out / "auto.png") - 30
    hints_file = tmp_path / "mine.json"
    hints_file.write_text(json.dumps([{"x": 20, "y": 40, "color": "#e01010", "radius": 3}]))
    code, _, err = run(
        capsys, "colorize", two_regions, "-o", out / "given.png", "--hints", hints_file, *weights
    )
    assert code == 0, err
    assert _redness(out / "given.png") > _redness(out / "auto.png") + 30
    code, _, err = run(
        capsys, "colorize", two_regions, "-o", out / "none.png", "--no-hints", *weights
    )
    assert code == 0, err
    assert np.array_equal(
        np.asarray(Image.open(out / "none.png")), np.asarray(Image.open(out / "auto.png"))
    )


def test_sidecars_are_never_input_photos(capsys, tmp_path, two_regions, fresh_weights):
    two_regions.with_name("scan.hints.json").write_text("[]")
    code, _, err = run(
        capsys, "colorize", str(two_regions.parent / "*"), "-o", tmp_path / "out",
        "--weights", fresh_weights,
    )  # fmt: skip
    assert code == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["scan.png"]


def test_reference_and_uncertainty_map(capsys, tmp_path, two_regions, fresh_weights, astronaut):
    reference = tmp_path / "reference.png"
    Image.fromarray(astronaut).save(reference)
    out = tmp_path / "out.png"
    code, _, err = run(
        capsys, "colorize", two_regions, "-o", out, "--reference", reference,
        "--reference-strength", "2", "--uncertainty-map", tmp_path / "unsure.png",
        "--weights", fresh_weights,
    )  # fmt: skip
    assert code == 0, err
    unsure = Image.open(tmp_path / "unsure.png")
    assert unsure.mode == "L" and unsure.size == (120, 80)
    assert Image.open(out).size == (120, 80)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--hint", "500,10,#ff0000"], "outside the photo"),
        (["--hint", "10,10,#ff00"], "cannot read colour"),
        (["--hint", "10,10"], "cannot read hint"),
        (["--hints", "BAD_JSON"], "not valid JSON"),
        (["--hints", "MISSING"], "no such hints file"),
        (["--reference", "MISSING"], "no such file"),
        (["--uncertainty-map", "OUT/map.xyz"], "cannot write .xyz"),
        (["--hints", "STROKE_AWAY"], "stroke (hint 1): point 2 at (10, 80) is outside"),
        (["--hints", "STROKE_THIN"], "stroke (hint 1): stroke width must be above 0"),
        (["--hints", "STROKE_SHORT"], "stroke (hint 1): a stroke needs at least 2 points"),
    ],
)
def test_bad_guidance_is_one_line_exit_2_nothing_written(
    capsys, tmp_path, two_regions, fresh_weights, extra, words
):
    (tmp_path / "bad.json").write_text('[{"x": 1,')
    strokes = {
        "STROKE_AWAY": {"points": [[10, 10], [10, 80]], "color": "#e01010", "width": 6},
        "STROKE_THIN": {"points": [[10, 10], [10, 20]], "color": "#e01010", "width": 0},
        "STROKE_SHORT": {"points": [[10, 10]], "color": "#e01010", "width": 6},
    }
    for name, stroke in strokes.items():
        (tmp_path / f"{name}.json").write_text(json.dumps([stroke]))
    extra = [str(tmp_path / f"{a}.json") if a in strokes else a for a in extra]
    extra = [
        a.replace("BAD_JSON", str(tmp_path / "bad.json"))
        .replace("MISSING", str(tmp_path / "missing.jpg"))
        .replace("OUT", str(tmp_path / "out"))
        for a in extra
    ]
    out = tmp_path / "out"
    code, _, err = run(
        capsys, "colorize", two_regions, "-o", out / "x.png", *extra, "--weights", fresh_weights
    )
    assert code == 2
    assert words in err and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert not out.exists() or not any(out.iterdir())


def test_a_stroke_colours_its_region_from_a_sidecar(capsys, tmp_path, two_regions, fresh_weights):
    weights = ("--weights", fresh_weights)
    out = tmp_path / "out"
    code, _, err = run(capsys, "colorize", two_regions, "-o", out / "auto.png", *weights)
    assert code == 0, err
    stroke = {"points": [[10, 10], [40, 30], [20, 70]], "color": "#e01010", "width": 12}
    two_regions.with_name("scan.hints.json").write_text(json.dumps([stroke]))
    code, _, err = run(capsys, "colorize", two_regions, "-o", out / "stroke.png", *weights)
    assert code == 0, err
    assert _redness(out / "stroke.png") > _redness(out / "auto.png") + 30
    far = slice(80, 120)  # the light half, across the edge
    assert abs(_redness(out / "stroke.png", far) - _redness(out / "auto.png", far)) < 3


def test_hints_for_several_photos_is_a_usage_error(capsys, tmp_path, photo_dir, fresh_weights):
    code, _, err = run(
        capsys, "colorize", photo_dir, "-o", tmp_path / "out", "--hint", "1,1,#ff0000",
        "--weights", fresh_weights,
    )  # fmt: skip
    assert code == 2 and "apply to one photo" in err
    assert not (tmp_path / "out").exists()


def test_a_bad_sidecar_in_a_folder(capsys, tmp_path, two_regions, fresh_weights):
    two_regions.with_name("scan.hints.json").write_text("{oops")
    code, _, err = run(
        capsys, "colorize", two_regions.parent, "-o", tmp_path / "out", "--weights", fresh_weights
    )
    assert code == 2 and "scan.hints.json: hints are not valid JSON" in err
    assert not (tmp_path / "out").exists()
    # a hint outside its photo fails that photo only
    two_regions.with_name("scan.hints.json").write_text('[{"x": 999, "y": 1, "color": "#ff0000"}]')
    Image.new("L", (30, 20), 90).save(two_regions.with_name("other.png"))
    code, out, err = run(
        capsys, "colorize", two_regions.parent, "-o", tmp_path / "out", "--weights", fresh_weights
    )
    assert code == 1 and "outside the photo" in err
    assert "colorized 1, failed 1" in out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["other.png"]
