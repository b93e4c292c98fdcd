"""The JKSPNet network, exactly as the seed defines it.

A U-Net over the L channel of CIE LAB: four encoder stages down to 16x16x512, three dilated
3x3 convolutions, three transposed-convolution decoder stages with skip connections, a 1x1
convolution to 313 logits (one per in-gamut ab bin), a softmax over them and a bias-free 1x1
convolution to the two ab channels.

Module names, order and shapes follow the seed's class (`JKPSNET`), so a ``state_dict`` saved
from it loads here with ``strict=True``. On top of the seed we expose the 313 logits (training
needs them) and decoding with a temperature ("annealed mean", Zhang et al. 2016).
"""

from __future__ import annotations

import torch
from torch import nn

from .bins import NUM_BINS, ab_bins


def _conv(in_dim: int, out_dim: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    """A 3x3 convolution and its ReLU; padding keeps the size (stride 1) or halves it."""
    return [
        nn.Conv2d(in_dim, out_dim, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.ReLU(inplace=True),
    ]


def _stage(*convs: list[nn.Module], channels: int) -> nn.Sequential:
    """Convolutions with ReLUs, then BatchNorm last, as in every block of the seed."""
    layers = [layer for conv in convs for layer in conv]
    return nn.Sequential(*layers, nn.BatchNorm2d(channels))


class JKSPNet(nn.Module):
    """The seed's colorization network (17,639,339 parameters).

    Input: the L channel normalised as L - 50 (see :func:`jkspnet.colour.spaces.normalize_l`), shape
    (N, 1, H, W) with H and W multiples of 8 (128 in the seed). Output: ab in LAB units,
    shape (N, 2, H, W): the expected ab under the predicted 313-bin distribution.
    """

    def __init__(self) -> None:
        super().__init__()
        self.input = nn.Sequential()
        self.enc1 = _stage(_conv(1, 64), _conv(64, 64), channels=64)
        self.enc2 = _stage(_conv(64, 64, stride=2), _conv(64, 128), _conv(128, 128), channels=128)
        self.enc3 = _stage(
            _conv(128, 128, stride=2), _conv(128, 256), _conv(256, 256), channels=256
        )
        self.enc4 = _stage(
            _conv(256, 256, stride=2), _conv(256, 512), _conv(512, 512), channels=512
        )
        dilated = [_conv(512, 512, dilation=2) for _ in range(3)]
        self.convR = nn.Sequential(_stage(*dilated, channels=512))

        self.ups1 = nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1)
        self.dec1 = _stage(_conv(512, 256), _conv(256, 256), channels=256)
        self.ups2 = nn.ConvTranspose2d(256, 128, kernel_size=4, stride=2, padding=1)
        self.dec2 = _stage(_conv(256, 128), _conv(128, 128), channels=128)
        self.ups3 = nn.ConvTranspose2d(128, 64, kernel_size=4, stride=2, padding=1)
        self.dec3 = _stage(_conv(128, 64), _conv(64, 64), channels=64)

        self.abp = nn.Conv2d(64, NUM_BINS, kernel_size=1)
        self.softmax = nn.Softmax(dim=1)
        self.out = nn.Conv2d(NUM_BINS, 2, kernel_size=1, bias=False)
        self.print_cat = nn.Sequential()

        self.reset_output_to_bins()

    @torch.no_grad()
    def reset_output_to_bins(self) -> None:
        """Set ``out`` to the bin centres, so the output is the expected ab in LAB units."""
        self.out.weight.copy_(ab_bins().t().reshape(2, NUM_BINS, 1, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The 313 unnormalised bin scores per pixel, shape (N, 313, H, W)."""
        return self.abp(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last decoder stage's output (N, 64, H, W): everything before the 313-bin head."""
        x = self.input(x)
        x1 = self.enc1(x)
        x2 = self.enc2(x1)
        x3 = self.enc3(x2)
        x = self.enc4(x3)
        x = self.convR(x)

        x = self.ups1(x)
        x = self.dec1(self.print_cat(torch.cat([x, x3], dim=1)))
        x = self.ups2(x)
        x = self.dec2(self.print_cat(torch.cat([x, x2], dim=1)))
        x = self.ups3(x)
        return self.dec3(self.print_cat(torch.cat([x, x1], dim=1)))

    def decode(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """ab from logits: ``out(softmax(logits / T))``; T = 1 is the seed, T < 1 is more vivid."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if temperature != 1.0:
            logits = logits / temperature
        if _is_channels_last(logits):
            return self.out(channel_softmax(logits))
        return self.out(self.softmax(logits))

    def forward(self, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return self.decode(self.logits(x), temperature)


def _is_channels_last(x: torch.Tensor) -> bool:
    channels_last = x.is_contiguous(memory_format=torch.channels_last)
    return x.dim() == 4 and channels_last and not x.is_contiguous()


def channel_softmax(logits: torch.Tensor, log: bool = False) -> torch.Tensor:
    """(log-)softmax over dim 1, along the memory's last axis when ``logits`` is channels_last.

    Same values as ``torch.softmax(logits, 1)``, but on a channels_last tensor PyTorch's softmax
    over dim 1 is several times slower (6x for 313 bins on our CPU) than the same reduction over
    the NHWC view, where each pixel's 313 scores lie next to each other.
    """
    function = torch.log_softmax if log else torch.softmax
    if _is_channels_last(logits):
        return function(logits.permute(0, 2, 3, 1), dim=-1).permute(0, 3, 1, 2)
    return function(logits, dim=1)


JKPSNET = JKSPNet
"""The seed's spelling of the class name."""


def summary_text(batch: int = 32, size: int = 128) -> str:
    """torchinfo's summary of a fresh JKSPNet at (batch, 1, size, size), as the seed prints it.

    The model lives on the meta device: shapes and counts without the cost of a real forward.
    torchinfo 1.8 on Python >= 3.11 prints its unit enum's name ("Units.GIGABYTES") where older
    versions printed its value ("G"); we print the value, as the seed does.
    """
    import torchinfo

    with torch.device("meta"):
        model = JKSPNet()
    summary = torchinfo.summary(model, input_size=(batch, 1, size, size), verbose=0, device="meta")
    text = str(summary)
    for unit in torchinfo.Units:
        text = text.replace(f"({unit})", f"({unit.value})")
    return text
