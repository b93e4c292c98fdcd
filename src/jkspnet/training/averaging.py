"""A moving average of the weights during training (``ema_decay``).

On a small data set the last steps' weights are noisy; their exponential moving average can
score better on held-out photos, at no cost at inference (issue 22 measured more colour at the
same PSNR on one run; MODEL_CARD.md). PyTorch's own ``AveragedModel`` keeps it, batch-norm
statistics averaged too. The trainer validates and saves the average; the optimizer trains the
raw weights, which the checkpoints keep beside it for ``--resume``.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightAverage:
    """The exponential moving average, with decay ``decay``, of ``net``'s weights."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self._model = AveragedModel(
            net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True
        ).eval()

    @property
    def module(self) -> nn.Module:
        """A copy of the network holding the averaged weights."""
        return self._model.module

    def update(self, net: nn.Module) -> None:
        """Fold ``net``'s weights after an optimizer step into the average (the first update
        copies them)."""
        self._model.update_parameters(net)

    def resumed(self) -> None:
        """``module`` now holds a checkpoint's average: the next update goes on averaging,
        instead of starting afresh from the raw weights."""
        self._model.n_averaged.fill_(1)


__all__ = ["WeightAverage"]
