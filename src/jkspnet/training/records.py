"""What a training run records beside its checkpoints: ``metrics.jsonl`` (cut back to the step a
resumed run restarts from, so nothing is logged twice), TensorBoard, and the sample grids of
grey | prediction | truth that it shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from ..media.files import write_atomic
from .data import grey_to_rgb


def open_tensorboard(run: Path, start_step: int, log: Callable[[str], None]):
    """A TensorBoard writer under ``run/tb`` (from ``start_step`` on), or None with a note when
    tensorboard (the train extra) is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log("note: tensorboard is not installed; metrics go to metrics.jsonl only")
        return None
    return SummaryWriter(str(run / "tb"), purge_step=start_step or None)


def sample_grid(x: torch.Tensor, ab: torch.Tensor, rgb: torch.Tensor, count: int) -> torch.Tensor:
    """Rows of grey | prediction | truth, as a (3, H, W) image in [0, 1]."""
    from ..colour.spaces import denormalize_l, lab_to_rgb

    x, ab, rgb = x[:count].float(), ab[:count].float(), rgb[:count]
    prediction = lab_to_rgb(torch.cat([denormalize_l(x), ab], dim=1))
    rows = [
        torch.cat([g, p, t.float() / 255], dim=2)
        for g, p, t in zip(grey_to_rgb(x), prediction, rgb.to(x.device), strict=True)
    ]
    return torch.cat(rows, dim=1).cpu()


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records logged after the checkpoint we resume from: they will be logged again."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text("utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    write_atomic(path, "".join(line + "\n" for line in kept))


__all__ = ["open_tensorboard", "sample_grid", "truncate_metrics"]
