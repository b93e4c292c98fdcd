"""The loss window: the figures of the training steps since the last metric record."""

from __future__ import annotations

import time
from collections.abc import Sequence


class LossWindow:
    """The figures of the steps since the last metric record."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.terms = tuple(terms)  # the loss's: ColorizationLoss.terms (no list of its own)
        self.skipped = 0  # steps skipped for a non-finite loss or gradient, over the invocation
        self.reset()

    def reset(self) -> None:
        self.sums = dict.fromkeys([*self.terms, "grad_norm"], 0.0)
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
            **{key: total / n for key, total in sums.items()},
            "lr": lr,
            "img_per_s": self.images / elapsed,
            "data_wait": self.waited / elapsed,  # share of time spent on the loader
            "skipped_steps": self.skipped,
        }
        self.reset()
        return record


__all__ = ["LossWindow"]
