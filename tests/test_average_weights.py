"""Tests for scripts/average_weights.py, which averages runs from one start (a model soup)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jkspnet import Colorizer
from jkspnet.nn.backends.torch_network import load_model
from jkspnet.nn.model import JKSPNet

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "average_weights.py"


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    for seed, name in ((0, "a"), (1, "b")):
        torch.manual_seed(seed)
        model = JKSPNet()
        with torch.no_grad():  # running statistics that differ, as two trainings leave them
            model.enc1[4].running_mean.fill_(float(seed + 1))
        Colorizer.from_model(model, device="cpu", neutral=float(seed + 2)).save_pretrained(
            folder / name
        )
    return folder / "a", folder / "b"


def test_the_soup_is_the_weighted_mean_with_the_first_inputs_config(two_runs, tmp_path):
    a, b = two_runs
    done = _run(a, b, "--ratio", "2,1", "--out", tmp_path / "soup")
    assert done.returncode == 0, done.stderr
    assert "the average of" in done.stdout
    soup, config = load_model(tmp_path / "soup")
    (first, first_config), (second, _) = load_model(a), load_model(b)
    for key, value in soup.state_dict().items():
        if value.is_floating_point():
            expected = (2 * first.state_dict()[key] + second.state_dict()[key]) / 3
            torch.testing.assert_close(value, expected)
    assert float(soup.enc1[4].running_mean[0]) == pytest.approx((2 * 1 + 2) / 3)
    assert config.neutral == first_config.neutral == 2.0


def test_bad_input_is_one_line_and_nothing_is_overwritten(two_runs, tmp_path):
    a, b = two_runs
    cases = [
        (a, "--out", tmp_path / "x"),
        (a, b, "--ratio", "1", "--out", tmp_path / "x"),
        (a, b, "--ratio", "one,two", "--out", tmp_path / "x"),
        (a, tmp_path / "missing", "--out", tmp_path / "x"),
        (a, b, "--out", a),
    ]
    before = (a / "model.safetensors").read_bytes()
    for case in cases:
        done = _run(*case)
        assert done.returncode == 2, (case, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (a / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "x").exists()
