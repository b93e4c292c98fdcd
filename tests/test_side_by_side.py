"""Tests for scripts/side_by_side.py, which draws README's before-and-after pictures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "side_by_side.py"


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True
    )


def test_panels_share_a_height_and_keep_their_order(tmp_path):
    grey = tmp_path / "grey.png"
    red = tmp_path / "red.png"
    Image.new("L", (40, 20), 128).save(grey)
    Image.new("RGB", (10, 10), (255, 0, 0)).save(red)
    out = tmp_path / "sheet.jpg"
    done = _run(grey, red, "-o", out, "--height", 30, "--gap", 4)
    assert done.returncode == 0, done.stderr
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert sheet.shape == (30, 60 + 4 + 30, 3)  # 40x20 -> 60x30, 10x10 -> 30x30
    assert np.abs(sheet[:, :58] - 128).max() < 8  # grey panel first
    assert sheet[:, 61:63].min() > 240  # the white gap
    assert sheet[:, 66:, 0].min() > 230 and sheet[:, 66:, 1:].max() < 30  # then red


def test_an_existing_picture_is_kept_without_overwrite(tmp_path):
    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (0, 0, 255)).save(photo)
    out = tmp_path / "sheet.jpg"
    out.write_bytes(b"mine")
    done = _run(photo, "-o", out)
    assert done.returncode != 0
    assert "exists" in done.stderr.strip().splitlines()[-1]
    assert out.read_bytes() == b"mine"
    assert _run(photo, "-o", out, "--overwrite").returncode == 0
    assert Image.open(out).size == (341, 341)


def test_an_unreadable_photo_is_one_line(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    done = _run(bad, "-o", tmp_path / "sheet.jpg")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "cannot read a photo" in done.stderr
    assert not (tmp_path / "sheet.jpg").exists()
