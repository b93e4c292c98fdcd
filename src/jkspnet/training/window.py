"""The loss window: the figures of the training steps since the last metric record."""

from __future__ import annotations

import time


class LossWindow:
    """The figures of the steps since the last metric record."""

    def __init__(self) -> None:
        self.skipped = 0  # steps skipped for a non-finite loss or gradient, over the invocation
        self.reset()

    def reset(self) -> None:
        self.sums = {"loss": 0.0, "ce": 0.0, "ab": 0.0, "grad_norm": 0.0}
        self.n = 0
        self.start, self.images, self.waited = time.perf_counter(), 0, 0.0

    def record(self, step: int, epoch: float, lr: float) -> dict[str, float]:
        """The record of the window ending at ``step``; the next window starts."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        n = max(1, self.n)
        sums = self.sums
        record = {
            "step": step,
            "epoch": epoch,
            "loss": sums["loss"] / n,
            "ce": sums["ce"] / n,
            "ab": sums["ab"] / n,
            "grad_norm": sums["grad_norm"] / n,
            "lr": lr,
            "img_per_s": self.images / elapsed,
            "data_wait": self.waited / elapsed,  # share of time spent on the loader
            "skipped_steps": self.skipped,
        }
        self.reset()
        return record


__all__ = ["LossWindow"]
