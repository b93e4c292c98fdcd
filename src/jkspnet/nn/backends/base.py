"""What a Colorizer needs of its network, whatever runs it (PyTorch, ONNX Runtime...)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from ..weights import ModelConfig


class Network(Protocol):
    """The network behind a Colorizer: normalised L in (N, 1, h, w), ab out.

    ``config`` is what the weights say of themselves (input size, temperature, shape,
    confidence). ``gives_distribution`` tells whether :meth:`logits` works: guided colour, a
    reference palette and the uncertainty map need the whole 313-bin distribution, and an
    exported graph gives ab only.
    """

    config: ModelConfig
    device: torch.device
    precision: str
    gives_distribution: bool

    def ab_at(
        self, network_input: torch.Tensor, temperatures: Sequence[float], confidence: float = 0.0
    ) -> list[torch.Tensor]:
        """ab (N, 2, h, w) at each temperature, from one pass; ``confidence`` > 0 shrinks the
        colour where the network is unsure (:func:`jkspnet.colour.decoding.confident_ab`)."""
        ...

    def logits(self, network_input: torch.Tensor) -> torch.Tensor:
        """The 313 logits (N, 313, h, w) at T = 1."""
        ...

    def ab_projection(self) -> torch.Tensor:
        """The network's map from bin probabilities to ab (313, 2), with :meth:`logits`: a
        distribution decoded with it has the automatic colour."""
        ...

    def save_pretrained(
        self, folder: str | os.PathLike[str], config: ModelConfig, dtype: torch.dtype
    ) -> Path:
        """Write the weights with ``config``, loadable again."""
        ...
