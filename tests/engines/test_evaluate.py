"""``jkspnet eval``: report files, the grey baseline as a reference, temperature sweeps, failures.

Fresh, untrained weights test the plumbing only: no number here says anything about colours.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import skimage.color
import torch
from PIL import Image

import jkspnet.engines.evaluate as evaluate_module
from jkspnet import JKSPNet
from jkspnet.cli import main
from jkspnet.engines import metrics, scores
from jkspnet.engines.evaluate import evaluate
from jkspnet.engines.report import GRID_CELL_HEIGHT, GRID_GAP

from ..hostile import deny_writing

BLOCK_KEYS = {
    "psnr",
    "ssim",
    "cf",
    "delta_cf",
    "delta_cf_per_image",
    "cast",
    "auc",
    "auc_rebalanced",
}


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def eval_args(photo_dir: Path, weights: Path, out: Path, *extra: object) -> list[object]:
    return ["eval", "--data", photo_dir, "--weights", weights, "--out", out, "-q", *extra]


def rows_of(report: Path) -> list[dict[str, str]]:
    with open(report / "per_image.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def truth_of(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_report_and_grey_baseline(capsys, tmp_path, photo_dir, fresh_weights):
    report = tmp_path / "report"
    code, out, err = run(capsys, *eval_args(photo_dir, fresh_weights, report, "--temperature", 1))
    assert code == 0, err
    assert sorted(p.name for p in report.iterdir()) == ["grid.png", "per_image.csv", "summary.json"]

    summary = json.loads((report / "summary.json").read_text())
    assert summary["n"] == 2 and summary["failed"] == 0
    assert summary["skipped_grey_truth"] == 1  # astronaut_grey.png: no colour to score against
    assert err.count("warning:") == 1 and "grey truth" in err
    assert summary["temperature"] == 1.0 and set(summary["model"]) == BLOCK_KEYS
    assert set(summary["gray"]) == BLOCK_KEYS and set(summary["truth"]) == {"cf"}
    assert summary["weights"] == str(fresh_weights)
    assert summary["size"] == 128 and summary["device"] == "cpu"
    assert summary["precision"] in {"fp32", "bf16"}

    rows = rows_of(report)
    assert [(Path(r["file"]).name, r["variant"]) for r in rows] == [
        ("astronaut.jpg", "gray"),
        ("astronaut.jpg", "T=1"),
        ("coffee.webp", "gray"),
        ("coffee.webp", "T=1"),
    ]
    gray_rows = [r for r in rows if r["variant"] == "gray"]
    assert summary["gray"]["psnr"] == pytest.approx(
        np.mean([float(r["psnr"]) for r in gray_rows]), abs=1e-3
    )
    assert summary["truth"]["cf"] == pytest.approx(
        np.mean([float(r["cf_truth"]) for r in gray_rows]), abs=1e-3
    )

    # The grey baseline is the photo's own L with ab = 0, computed here independently.
    truth = truth_of(photo_dir / "astronaut.jpg")
    lab = skimage.color.rgb2lab(truth)
    lab[..., 1:] = 0
    grey = np.clip(np.round(skimage.color.lab2rgb(lab) * 255), 0, 255).astype(np.uint8)
    astronaut_gray = gray_rows[0]
    assert float(astronaut_gray["psnr"]) == pytest.approx(metrics.psnr(grey, truth), abs=0.01)
    assert float(astronaut_gray["ssim"]) == pytest.approx(metrics.ssim(grey, truth), abs=1e-4)
    assert float(astronaut_gray["cf"]) < 0.5 and summary["gray"]["cf"] < 0.5
    # AuC at 128x128: the grey's ab error is the truth's own |ab|.
    small = np.asarray(Image.fromarray(truth).resize((128, 128), Image.Resampling.BILINEAR))
    truth_ab = metrics.ab_of(small, torch.float64)
    expected_auc = metrics.auc_ab(torch.zeros_like(truth_ab), truth_ab)
    assert float(astronaut_gray["auc"]) == pytest.approx(expected_auc, abs=1e-3)
    assert summary["gray"]["delta_cf"] == pytest.approx(
        summary["truth"]["cf"] - summary["gray"]["cf"], abs=1e-3
    )
    # The cast, at full resolution: grey paints no colour on the truth's neutral pixels; the
    # model's figure is its output's chroma there, computed here from the same files. The
    # baseline is rendered on OpenCV, within one code value of scikit-image's: as for PSNR, 0.01.
    assert float(astronaut_gray["cast"]) == pytest.approx(metrics.cast(grey, truth), abs=0.01)
    assert float(astronaut_gray["cast"]) < 0.5
    model_rows = [r for r in rows if r["variant"] == "T=1"]
    assert summary["model"]["cast"] == pytest.approx(
        np.mean([float(r["cast"]) for r in model_rows]), abs=1e-3
    )

    # Each figure the defaults are chosen by has its bootstrap interval, around the figure.
    spread = summary["intervals"]
    gain = summary["model"]["psnr"] - summary["gray"]["psnr"]
    assert spread["psnr_over_grey"][0] - 1e-3 <= gain <= spread["psnr_over_grey"][1] + 1e-3
    kept = summary["model"]["cf"] / summary["truth"]["cf"]
    assert spread["cf_share"][0] - 1e-3 <= kept <= spread["cf_share"][1] + 1e-3
    assert summary["interval"]["level"] == 0.9 and summary["interval"]["resamples"] == 2000
    assert "90 % intervals (2000 draws of the photos):" in out
    assert any(line.strip().startswith("T=1: PSNR-grey ") for line in out.splitlines())

    for variant in ("gray", "T=1", "truth"):
        assert any(line.split()[:1] == [variant] for line in out.splitlines())
    assert "PSNR" in out and "AuC(rebal)" in out and "cast" in out

    grid = Image.open(report / "grid.png")
    assert grid.height == 2 * GRID_CELL_HEIGHT + GRID_GAP


def test_a_new_metric_is_one_entry_in_the_table(
    capsys, tmp_path, photo_dir, fresh_weights, monkeypatch
):
    """docs/architecture.md's recipe: one entry in ``scores.METRICS`` puts a metric in every
    block of summary.json, a column of per_image.csv and a column of the printed table."""

    def mean_abs_error(pair: metrics.PhotoPair) -> float:
        return float(np.abs(pair.pred.astype(float) - pair.truth.astype(float)).mean())

    entry = scores.Metric("mae", 3, mean_abs_error, label="MAE")
    monkeypatch.setattr(scores, "METRICS", (*scores.METRICS, entry))
    report = tmp_path / "report"
    code, out, err = run(capsys, *eval_args(photo_dir, fresh_weights, report, "--temperature", 1))
    assert code == 0, err

    rows = rows_of(report)
    assert list(rows[0])[-4:] == ["mae", "leak", "harm", "gain"]
    assert all(float(r["mae"]) > 0 for r in rows)
    summary = json.loads((report / "summary.json").read_text())
    for block in (summary["gray"], summary["model"]):
        assert set(block) == BLOCK_KEYS | {"mae"}
    assert summary["model"]["mae"] == pytest.approx(
        np.mean([float(r["mae"]) for r in rows if r["variant"] == "T=1"]), abs=1e-3
    )
    header = next(line for line in out.splitlines() if line.startswith("variant"))
    assert header.split()[-1] == "MAE"


def test_temperature_sweep_runs_the_network_once_per_batch(
    capsys, tmp_path, photo_dir, fresh_weights, monkeypatch
):
    calls = []
    original = JKSPNet.features

    def counting(self, x):
        calls.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(JKSPNet, "features", counting)
    sweep = tmp_path / "sweep"
    code, out, err = run(
        capsys,
        *eval_args(photo_dir, fresh_weights, sweep, "--temperature", "1,0.38"),
        "--batch-size",
        1,
        "--grid",
        1,
    )
    assert code == 0, err
    assert calls == [1, 1]  # two photos, batches of one: one pass each, not one per temperature
    summary = json.loads((sweep / "summary.json").read_text())
    assert "temperature" not in summary
    assert list(summary["model"]) == ["1", "0.38"]
    assert all(set(block) == BLOCK_KEYS for block in summary["model"].values())
    assert [r["variant"] for r in rows_of(sweep)] == ["gray", "T=1", "T=0.38"] * 2
    assert "T=0.38" in out
    assert Image.open(sweep / "grid.png").height == GRID_CELL_HEIGHT

    single = tmp_path / "single"
    assert run(capsys, *eval_args(photo_dir, fresh_weights, single, "--temperature", 1))[0] == 0
    alone = json.loads((single / "summary.json").read_text())
    assert alone["model"] == summary["model"]["1"] and alone["gray"] == summary["gray"]


def test_bad_photos_are_skipped_and_counted(capsys, tmp_path, photo_dir, fresh_weights):
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    report = tmp_path / "report"
    code, _, err = run(capsys, *eval_args(photo_dir, fresh_weights, report))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.jpg" in errors[0]
    assert "Traceback" not in err
    summary = json.loads((report / "summary.json").read_text())
    assert summary["n"] == 2 and summary["failed"] == 1
    assert {Path(r["file"]).name for r in rows_of(report)} == {"astronaut.jpg", "coffee.webp"}


def test_a_txt_list_names_the_photos_to_score(capsys, tmp_path, photo_dir, fresh_weights):
    listed = tmp_path / "val_photos.txt"  # as a training run writes it: one path a line
    listed.write_text(f"{(photo_dir / 'coffee.webp').resolve()}\n# a comment\nastronaut.jpg\n")
    (tmp_path / "astronaut.jpg").write_bytes((photo_dir / "astronaut.jpg").read_bytes())
    report = tmp_path / "report"
    code, _, err = run(capsys, *eval_args(listed, fresh_weights, report, "--grid", 0))
    assert code == 0, err
    assert {Path(r["file"]).name for r in rows_of(report)} == {"astronaut.jpg", "coffee.webp"}


def test_nothing_to_score(capsys, tmp_path, photo_dir, fresh_weights):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, *eval_args(empty, fresh_weights, tmp_path / "r1"))
    assert code == 2 and err.strip().splitlines() == [
        f"error: {empty}: no photos found in this folder"
    ]
    assert not (tmp_path / "r1").exists()

    grey_only = tmp_path / "grey"
    grey_only.mkdir()
    (photo_dir / "astronaut_grey.png").rename(grey_only / "a.png")
    code, _, err = run(capsys, *eval_args(grey_only, fresh_weights, tmp_path / "r2"))
    assert code == 2 and "no photo could be scored" in err and "Traceback" not in err


def test_report_folder_is_not_overwritten_unless_asked(capsys, tmp_path, photo_dir, fresh_weights):
    report = tmp_path / "report"
    report.mkdir()
    (report / "notes.txt").write_text("mine")
    args = eval_args(photo_dir, fresh_weights, report, "--limit", 1)
    code, _, err = run(capsys, *args)
    assert code == 2 and "not empty" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in report.iterdir()) == ["notes.txt"]

    code, _, err = run(capsys, *args, "--overwrite", "--grid", 0)
    assert code == 0, err
    assert sorted(p.name for p in report.iterdir()) == [
        "notes.txt",
        "per_image.csv",
        "summary.json",
    ]
    assert json.loads((report / "summary.json").read_text())["n"] == 1  # --limit 1
    assert (report / "notes.txt").read_text() == "mine"


def test_an_unwritable_report_folder_is_found_before_scoring(
    capsys, tmp_path, photo_dir, fresh_weights, monkeypatch
):
    locked = tmp_path / "locked"
    locked.mkdir()
    deny_writing(locked, monkeypatch)
    scored = []
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: scored.append(1))
    code, _, err = run(capsys, *eval_args(photo_dir, fresh_weights, locked / "report"))
    assert code == 2 and not scored
    assert (
        err.strip()
        == f"error: {locked / 'report'}: cannot write the report there (Permission denied)"
    )


@pytest.mark.parametrize("value", ["0", "1,-2", "x", ","])
def test_bad_temperatures_are_usage_errors(tmp_path, photo_dir, value):
    with pytest.raises(SystemExit) as caught:
        main(["eval", "--data", str(photo_dir), "--out", str(tmp_path), "--temperature", value])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    "flags",
    [
        ["--reference", "other"],
        ["--reference", ","],
        ["--reference", "self", "--reference-strength", "1,-1"],
    ],
)
def test_bad_references_are_usage_errors(tmp_path, photo_dir, flags):
    with pytest.raises(SystemExit) as caught:
        main(["eval", "--data", str(photo_dir), "--out", str(tmp_path), *flags])
    assert caught.value.code == 2


def test_a_reference_strength_without_a_reference_is_one_line(capsys, tmp_path, photo_dir):
    args = ["eval", "--data", photo_dir, "--out", tmp_path / "r", "--reference-strength", "2"]
    code, _, err = run(capsys, *args)
    assert code == 2 and err.strip().splitlines() == [
        "error: --reference-strength needs --reference (self, shuffled or both)"
    ]
    assert not (tmp_path / "r").exists()


def test_evaluate_api_returns_what_it_writes(tmp_path, photo_dir, colorizer):
    photos = sorted(photo_dir.iterdir())
    summary = evaluate(colorizer, photos, [0.5], tmp_path / "r", grid_count=1, progress=False)
    assert summary == json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["temperature"] == 0.5 and summary["n"] == 2
    assert all(math.isfinite(value) for value in summary["model"].values())


def test_sampled_hints_are_seeded_nested_patch_means(astronaut):
    from jkspnet.engines.evaluate import sample_hints
    from jkspnet.engines.metrics import ab_of

    ten = sample_hints(astronaut, 10, seed="a.jpg")
    assert sample_hints(astronaut, 10, seed="a.jpg") == ten
    assert sample_hints(astronaut, 5, seed="a.jpg") == ten[:5]
    assert sample_hints(astronaut, 10, seed="b.jpg") != ten
    hint = ten[0]
    x, y = int(hint.x), int(hint.y)
    patch = ab_of(astronaut)[:, max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
    assert hint.a == pytest.approx(float(patch[0].mean()), abs=1e-3)
    assert hint.radius == 2.5


def test_eval_with_hints_and_the_reference_oracle(capsys, tmp_path, photo_dir, fresh_weights):
    code = main(
        [
            "eval", "--data", str(photo_dir), "--weights", str(fresh_weights), "--out",
            str(tmp_path / "r"), "--hints", "0,1,20", "--reference", "self", "-q",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert set(summary["hints"]) == {"1", "20"} and "reference_self" in summary
    assert summary["hints"]["20"]["psnr"] > summary["model"]["psnr"]
    for row in ("hints=1", "hints=20", "reference=self"):
        assert row in out
    variants = (tmp_path / "r" / "per_image.csv").read_text()
    assert "hints=20" in variants and "reference=self" in variants
    # one colour hint's leak, harm and gain: the astronaut and the coffee have colour
    one_hint = summary["one_hint"]
    assert one_hint["photos"] == 2 and one_hint["without_colour"] == 0
    assert all(isinstance(one_hint[key], float) for key in ("leak", "harm", "gain"))
    assert "one hint (on chroma >= 20, 2 photos): leak" in out
    rows = [row for row in rows_of(tmp_path / "r") if row["variant"] == "one hint"]
    assert len(rows) == 2 and all(row["leak"] and not row["psnr"] for row in rows)
    mean_leak = np.mean([float(row["leak"]) for row in rows])
    assert mean_leak == pytest.approx(one_hint["leak"], abs=1e-3)


def test_groups_from_the_manifest(capsys, tmp_path, photo_dir, fresh_weights):
    (photo_dir / "manifest.csv").write_text(
        "file,package,group\nastronaut.jpg,pkg-a,people\ncoffee.webp,pkg-a,objects\n"
    )
    report = tmp_path / "report"
    args = eval_args(photo_dir, fresh_weights, report, "--temperature", "1,0.5", "--groups")
    code, out, err = run(capsys, *args)
    assert code == 0, err
    summary = json.loads((report / "summary.json").read_text())
    groups = summary["groups"]
    assert set(groups) == {"people", "objects"}
    rows = rows_of(report)
    for name, photo in (("people", "astronaut.jpg"), ("objects", "coffee.webp")):
        group = groups[name]
        assert group["n"] == 1 and set(group["model"]) == {"1", "0.5"}
        mine = {r["variant"]: r for r in rows if Path(r["file"]).name == photo}
        assert group["gray"]["psnr"] == pytest.approx(float(mine["gray"]["psnr"]), abs=1e-3)
        assert group["model"]["0.5"]["cast"] == pytest.approx(
            float(mine["T=0.5"]["cast"]), abs=1e-3
        )
        assert group["truth"]["cf"] == pytest.approx(float(mine["gray"]["cf_truth"]), abs=1e-3)
    lines = [line.split() for line in out.splitlines()]
    interval = "90%-interval"
    header = ["group", "n", "T", "PSNR-grey", interval, "CF", "kept", interval, "cast", interval]
    assert header in lines
    people = [line for line in lines if line[:3] == ["people", "1", "0.5"]]
    gain = groups["people"]["model"]["0.5"]["psnr"] - groups["people"]["gray"]["psnr"]
    assert len(people) == 1 and people[0][3] == f"{gain:+.2f}"
    # One photo in a group: every draw is that photo, so its interval is its figure.
    assert groups["people"]["intervals"]["0.5"]["psnr_over_grey"] == pytest.approx(
        [gain] * 2, abs=1e-3
    )
    assert people[0][4] == f"{gain:+.2f}..{gain:+.2f}"

    # Without a group column, photos are grouped by source: here the folder's name.
    (photo_dir / "manifest.csv").unlink()
    report2 = tmp_path / "report2"
    code, out, err = run(capsys, *eval_args(photo_dir, fresh_weights, report2, "--groups"))
    assert code == 0, err
    assert set(json.loads((report2 / "summary.json").read_text())["groups"]) == {"photos"}


def test_eval_with_a_mismatched_reference_at_several_strengths(
    capsys, tmp_path, photo_dir, fresh_weights, colorizer
):
    """``--reference shuffled`` gives each photo another's palette (of two, the other one), and
    each strength is its own variant; the astronaut's score is that of colorizing it with the
    coffee as the reference."""
    report = tmp_path / "r"
    code, out, err = run(
        capsys,
        *eval_args(photo_dir, fresh_weights, report, "--reference", "self,shuffled"),
        *("--reference-strength", "1,2"),
    )
    assert code == 0, err
    summary = json.loads((report / "summary.json").read_text())
    assert summary["reference_strength"] == [1.0, 2.0]
    for kind in ("self", "shuffled"):
        assert set(summary[f"reference_{kind}"]) == {"1", "2"}
        assert set(summary[f"reference_{kind}"]["2"]) == BLOCK_KEYS
        assert f"reference={kind}@2" in out
    assert "PSNR against T=" in out and "reference=shuffled@1 " in out
    rows = {(Path(r["file"]).name, r["variant"]): r for r in rows_of(report)}
    expected = colorizer.colorize(
        photo_dir / "astronaut.jpg", reference=photo_dir / "coffee.webp", reference_strength=2
    )
    truth = truth_of(photo_dir / "astronaut.jpg")
    psnr = float(rows["astronaut.jpg", "reference=shuffled@2"]["psnr"])
    assert psnr == pytest.approx(metrics.psnr(np.asarray(expected), truth), abs=1e-3)
    assert psnr != pytest.approx(float(rows["astronaut.jpg", "reference=self@2"]["psnr"]))


def test_against_another_report_gives_paired_differences(
    capsys, tmp_path, photo_dir, fresh_weights
):
    first = tmp_path / "first"
    code, _, err = run(capsys, *eval_args(photo_dir, fresh_weights, first, "--temperature", 1))
    assert code == 0, err
    second = tmp_path / "second"
    args = eval_args(photo_dir, fresh_weights, second, "--temperature", 0.5, "--against", first)
    code, out, err = run(capsys, *args)
    assert code == 0, err
    block = json.loads((second / "summary.json").read_text())["against"]
    assert block["report"] == str(first) and block["variant"] == "T=1" and block["photos"] == 2
    mine = {Path(r["file"]).name: r for r in rows_of(second) if r["variant"] == "T=0.5"}
    theirs = {Path(r["file"]).name: r for r in rows_of(first) if r["variant"] == "T=1"}
    psnr = np.mean([float(mine[n]["psnr"]) - float(theirs[n]["psnr"]) for n in mine])
    assert block["difference"]["psnr_over_grey"] == pytest.approx(psnr, abs=1e-3)
    cf = np.mean([float(mine[n]["cf"]) - float(theirs[n]["cf"]) for n in mine])
    truth = np.mean([float(mine[n]["cf_truth"]) for n in mine])
    assert block["difference"]["cf_share"] == pytest.approx(cf / truth, abs=1e-3)
    low, high = block["intervals"]["psnr_over_grey"]
    assert low - 1e-3 <= psnr <= high + 1e-3
    assert any(line.startswith(f"against {first} (T=1), 2 photos") for line in out.splitlines())

    # Against itself: the same photos at the same setting differ by nothing, every draw.
    third = tmp_path / "third"
    args = eval_args(photo_dir, fresh_weights, third, "--temperature", 1, "--against", first)
    assert run(capsys, *args)[0] == 0
    same = json.loads((third / "summary.json").read_text())["against"]
    assert same["difference"]["psnr_over_grey"] == pytest.approx(0, abs=1e-3)
    assert same["intervals"]["cf_share"] == pytest.approx([0, 0], abs=1e-3)


@pytest.mark.parametrize("make", ["missing", "not_a_report"])
def test_a_bad_against_report_is_one_line_before_scoring(
    capsys, tmp_path, photo_dir, fresh_weights, make
):
    other = tmp_path / "other"
    if make == "not_a_report":
        other.mkdir()
        (other / "per_image.csv").write_text("name,score\na.jpg,1\n")
    report = tmp_path / "report"
    code, _, err = run(capsys, *eval_args(photo_dir, fresh_weights, report, "--against", other))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(other / "per_image.csv") in err
    assert not report.exists()
