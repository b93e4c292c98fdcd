"""Tests for scripts/gpu_v3.sh's way back: a device call returns files of at most 16 MiB, so the
weights come back in parts with their SHA-256, and ``--join`` must rebuild them exactly or fail."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_v3.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("split") is None, reason="needs bash and split"
)


def _parts(tmp_path: Path, payload: bytes) -> Path:
    """What a device call brings back, made as the script makes it (split and sha256sum)."""
    built = tmp_path / "built"
    built.mkdir()
    (built / "model.safetensors").write_bytes(payload)
    files = tmp_path / "files"
    files.mkdir()
    (files / "config.json").write_text('{"size": 128}')
    digest = hashlib.sha256(payload).hexdigest()
    (files / "sha256").write_text(f"{digest}  model.safetensors\n")
    subprocess.run(
        ["split", "-b", "1000", "-d", "-a", "2", str(built / "model.safetensors"),
         str(files / "model.safetensors.part-")],
        check=True,
    )  # fmt: skip
    return files


def _join(files: Path, weights: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "--join", str(files), str(weights)],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
        cwd=cwd,
    )


def test_join_rebuilds_the_weights_byte_for_byte(tmp_path):
    payload = os.urandom(3500)  # four parts of 1000 bytes, the last one short
    files = _parts(tmp_path, payload)
    assert len(list(files.glob("model.safetensors.part-*"))) == 4
    result = _join(Path("files"), Path("weights"), cwd=tmp_path)  # paths relative to the caller
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "weights" / "model.safetensors").read_bytes() == payload
    assert (tmp_path / "weights" / "config.json").read_text() == '{"size": 128}'


def test_join_fails_on_a_damaged_part(tmp_path):
    files = _parts(tmp_path, os.urandom(3500))
    part = files / "model.safetensors.part-01"
    part.write_bytes(part.read_bytes()[:-1])  # one byte lost on the way
    result = _join(files, tmp_path / "weights")
    assert result.returncode == 1
    assert "do not match their SHA-256" in result.stderr
