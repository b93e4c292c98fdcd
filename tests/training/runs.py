"""What the training tests share: tiny runs through the command line and reading a run back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

from jkspnet import Colorizer
from jkspnet.cli import main

TINY = ["--crop-size", "16", "--batch-size", "4", "--val-every", "1000", "--log-every", "1"]


def tiny_run_module(photos: Path, run: Path, max_steps: int) -> list[str]:
    """``-m jkspnet train ...`` of a tiny run checkpointed every 2 steps, for a child process
    (after ``python`` or ``torchrun``)."""
    return [
        "-m",
        "jkspnet",
        "train",
        "--data",
        str(photos),
        "--out",
        str(run),
        "--max-steps",
        str(max_steps),
        "--checkpoint-every",
        "2",
        *TINY,
        "-q",
    ]


def _train(capsys, *args) -> tuple[int, str]:
    code = main(["train", *map(str, args), "-q"])
    return code, capsys.readouterr().err


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "last" / "model.safetensors"))


def _step_of_last(run: Path) -> str:
    return Path(os.readlink(run / "last")).name


def _assert_whole_checkpoint(run: Path, step: int) -> None:
    assert _step_of_last(run) == f"step_{step:07d}"
    assert Colorizer.from_pretrained(run / "last", device="cpu")  # sha256-checked weights
    state = torch.load(run / "last" / "training_state.pt", weights_only=True)
    assert state["step"] == step
