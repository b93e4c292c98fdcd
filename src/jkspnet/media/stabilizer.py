"""The temporal stabiliser of a film's colours: a moving average of ab, reset at scene cuts."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class Stabilizer:
    """Temporal smoothing of the predicted colours, reset at scene cuts.

    Works on the network's own small square: the predicted ab (2, s, s) and the frame's L at the
    same size. Each frame's output is an exponential moving average::

        out_t = keep * out_{t-1} + (1 - keep) * ab_t,   keep = strength * exp(-change / motion)

    per pixel, where ``change`` is the frame-to-frame |ΔL| there (averaged over 3x3 pixels of
    the small square). Where the picture stands still, ``keep`` is ``strength`` and colour noise
    is averaged over the last few frames (about ``1 / (1 - strength)``); where something moves
    or the light changes, ``keep`` falls towards 0 and the new frame's colour is taken, so
    motion is not smeared.

    Smoothing ab is smoothing the 313-bin distributions: ab is ``sum_q p_q c_q``, linear in the
    probabilities ``p`` for the bin centres ``c``, so the moving average of ab is exactly the ab of
    the moving average of the distributions, at 2 numbers per pixel instead of 313, and for any
    backend (ONNX Runtime gives ab only).

    A scene cut resets the average: the new shot starts from its own prediction, so colour never
    bleeds across the cut. A cut is a change in the shape of the frame's distribution of tones:
    each frame's small L is standardised (minus its mean, over its standard deviation), sorted,
    and compared with the last frame's as the mean absolute difference (the Wasserstein distance
    of the two standardised distributions). Exposure flicker, fades and contrast changes leave
    it near 0; pans over one scene stayed below 0.09 and cuts between different photos above 0.12
    on scikit-image's samples, so a cut is a distance over ``cut_threshold`` (0.11). A cut it
    misses (two shots with tones of the same shape) is still kept apart pixel by pixel, since L
    differs where the pictures differ, as is a sudden jump of brightness.
    """

    strength: float = 0.8
    motion: float = 4.0
    cut_threshold: float = 0.11
    cuts: list[int] = field(default_factory=list)
    """Frame indices (counted from 0) where a cut reset the average."""

    def __post_init__(self) -> None:
        if not 0 <= self.strength < 1:
            raise ValueError(f"strength must be in [0, 1), got {self.strength}")
        if not self.motion > 0:
            raise ValueError(f"motion must be greater than 0, got {self.motion}")
        self.frames = 0
        self._ab: torch.Tensor | None = None
        self._lightness: torch.Tensor | None = None
        self._tones: torch.Tensor | None = None

    def restart(self) -> None:
        """Start a new film: forget the past, the frame count and the cuts found."""
        self.reset()
        self.frames = 0
        self.cuts.clear()

    def reset(self) -> None:
        """Forget the past: the next frame is taken as predicted."""
        self._ab = self._lightness = self._tones = None

    @staticmethod
    def _tones_of(lightness: torch.Tensor) -> torch.Tensor:
        """The frame's L values, standardised and sorted: the shape of its tones."""
        values = lightness.float().flatten()
        spread = values.std().clamp(min=1.0)  # a flat (black) frame: do not blow up its noise
        return ((values - values.mean()) / spread).sort().values

    def step(self, ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        """The stabilised ab (2, s, s) for the next frame's predicted ab and its L (s, s)."""
        tones = self._tones_of(lightness)
        if self._tones is not None:
            distance = float((tones - self._tones).abs().mean())
            if distance > self.cut_threshold:
                self.cuts.append(self.frames)
                self.reset()
        if self._ab is None or self._lightness is None:
            out = ab.clone()
        else:
            change = (lightness - self._lightness).abs()[None, None]
            change = F.avg_pool2d(change, 3, stride=1, padding=1, count_include_pad=False)[0]
            keep = self.strength * torch.exp(-change / self.motion)
            out = torch.lerp(ab, self._ab, keep)
        self._ab, self._lightness, self._tones = out, lightness, tones
        self.frames += 1
        return out

    def run(self, ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        """Stabilise a batch of consecutive frames: ab (N, 2, s, s), L (N, s, s) or (N, 1, s, s)."""
        lightness = lightness.reshape(ab.shape[0], *ab.shape[-2:])
        return torch.stack([self.step(a, lum) for a, lum in zip(ab, lightness, strict=True)])
