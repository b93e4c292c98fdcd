"""The network must be the seed's, exactly: layers, names, counts, outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

from jkspnet import JKPSNET, NUM_BINS, JKSPNet, ab_bins
from jkspnet.nn.model import channel_softmax, summary_text

SEED_SUMMARY = Path(__file__).parents[1] / "data" / "seed_summary.txt"


class SeedJKPSNET(nn.Module):
    """The seed's reference class, written out as the seed document gives it."""

    def __init__(self):
        super().__init__()

        def conv_2xs(in_dim, out_dim):
            return nn.Sequential(
                nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=1, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(out_dim, out_dim, kernel_size=3, stride=1, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.BatchNorm2d(out_dim),
            )

        def conv_2x(in_dim, out_dim):
            return nn.Sequential(
                nn.Conv2d(in_dim, in_dim, kernel_size=3, stride=2, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=1, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(out_dim, out_dim, kernel_size=3, stride=1, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.BatchNorm2d(out_dim),
            )

        def conv_3xdil(dim):
            return nn.Sequential(
                nn.Conv2d(dim, dim, kernel_size=3, dilation=2, stride=1, padding=2, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(dim, dim, kernel_size=3, dilation=2, stride=1, padding=2, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(dim, dim, kernel_size=3, dilation=2, stride=1, padding=2, bias=True),
                nn.ReLU(inplace=True),
                nn.BatchNorm2d(dim),
            )

        def conv_up(in_dim, out_dim):
            return nn.Sequential(
                nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=1, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(out_dim, out_dim, kernel_size=3, stride=1, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.BatchNorm2d(out_dim),
            )

        self.input = nn.Sequential()
        self.enc1 = conv_2xs(1, 64)
        self.enc2 = conv_2x(64, 128)
        self.enc3 = conv_2x(128, 256)
        self.enc4 = conv_2x(256, 512)
        self.convR = nn.Sequential(conv_3xdil(512))
        self.ups1 = nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1, bias=True)
        self.dec1 = conv_up(512, 256)
        self.ups2 = nn.ConvTranspose2d(256, 128, kernel_size=4, stride=2, padding=1, bias=True)
        self.dec2 = conv_up(256, 128)
        self.ups3 = nn.ConvTranspose2d(128, 64, kernel_size=4, stride=2, padding=1, bias=True)
        self.dec3 = conv_up(128, 64)
        self.abp = nn.Conv2d(64, 313, kernel_size=1, stride=1, padding=0, bias=True)
        self.softmax = nn.Softmax(dim=1)
        self.out = nn.Conv2d(313, 2, kernel_size=1, padding=0, dilation=1, stride=1, bias=False)
        self.print_cat = nn.Sequential()

    def forward(self, x):
        x = self.input(x)
        x1 = self.enc1(x)
        x2 = self.enc2(x1)
        x3 = self.enc3(x2)
        x = self.enc4(x3)
        x = self.convR(x)
        x = self.ups1(x)
        x = self.print_cat(torch.cat([x, x3], dim=1))
        x = self.dec1(x)
        x = self.ups2(x)
        x = self.print_cat(torch.cat([x, x2], dim=1))
        x = self.dec2(x)
        x = self.ups3(x)
        x = self.print_cat(torch.cat([x, x1], dim=1))
        x = self.dec3(x)
        x = self.abp(x)
        x = self.out(self.softmax(x))
        return x


def _randomise_batchnorm(model: nn.Module) -> None:
    """Give BatchNorm non-trivial statistics so a comparison in eval mode means something."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


def test_parameter_count_matches_seed():
    model = JKSPNet()
    assert sum(p.numel() for p in model.parameters()) == 17_639_339
    assert all(p.requires_grad for p in model.parameters())


def test_seed_spelling_is_the_same_class():
    assert JKPSNET is JKSPNet


def test_state_dicts_interchange_with_the_seed_class():
    torch.manual_seed(0)
    seed, ours = SeedJKPSNET(), JKSPNet()
    _randomise_batchnorm(seed)
    assert list(seed.state_dict()) == list(ours.state_dict())
    ours.load_state_dict(seed.state_dict(), strict=True)
    SeedJKPSNET().load_state_dict(ours.state_dict(), strict=True)

    x = torch.randn(2, 1, 64, 64) * 30
    seed.eval()
    ours.eval()
    with torch.no_grad():
        expected = seed(x)
        torch.testing.assert_close(ours(x), expected)
        torch.testing.assert_close(ours.decode(ours.logits(x), temperature=1.0), expected)


def test_output_layer_starts_at_the_bin_centres():
    bins = ab_bins()
    assert bins.shape == (NUM_BINS, 2)
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 100
    model = JKSPNet()
    assert model.out.bias is None
    # A distribution concentrated on one bin decodes to that bin's centre.
    logits = torch.full((1, NUM_BINS, 1, 1), -1e4)
    logits[0, 42] = 0.0
    ab = model.decode(logits)
    torch.testing.assert_close(ab[0, :, 0, 0], bins[42])


def test_temperature_sharpens_toward_the_most_likely_bin():
    model = JKSPNet()
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(1, NUM_BINS, 4, 4, generator=generator) * 2
    top = ab_bins()[logits.argmax(dim=1)].permute(0, 3, 1, 2)
    errors = [(model.decode(logits, t) - top).abs().mean().item() for t in (1.0, 0.38, 0.01)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05
    with pytest.raises(ValueError):
        model.decode(logits, 0.0)


def test_logits_and_output_shapes_at_other_sizes():
    model = JKSPNet().eval()
    for height, width in [(64, 64), (136, 96)]:
        x = torch.zeros(1, 1, height, width)
        assert model.logits(x).shape == (1, NUM_BINS, height, width)
        assert model(x).shape == (1, 2, height, width)


def test_channels_last_decoding_matches_and_keeps_the_layout():
    torch.manual_seed(0)
    model = JKSPNet().eval()
    logits = torch.randn(2, NUM_BINS, 12, 10) * 3
    fast = logits.contiguous(memory_format=torch.channels_last)
    for log in (False, True):
        expected = (torch.log_softmax if log else torch.softmax)(logits, dim=1)
        result = channel_softmax(fast, log=log)
        torch.testing.assert_close(result, expected)
        assert result.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        # The 1x1 convolution to ab sums 313 products in another order for another layout: on
        # AVX512 CPUs ab (tens of LAB units) differ by up to ~2e-4, far below a visible colour.
        torch.testing.assert_close(
            model.decode(fast, 0.5), model.decode(logits, 0.5), rtol=1e-5, atol=1e-3
        )


def test_summary_matches_the_seed():
    expected = SEED_SUMMARY.read_text().strip().splitlines()
    actual = summary_text(batch=32, size=128).strip().splitlines()
    assert len(actual) == len(expected)
    assert "Total params: 17,639,339" in actual
    assert "Total mult-adds (G): 570.51" in actual
    # Row 4 is the root (named JKSPNet here, JKPSNET in the seed; torchinfo versions differ on
    # whether the root shows its output shape); every other row must match to the character.
    assert actual[3].startswith("JKSPNet") and expected[3].startswith("JKPSNET")
    assert actual[:3] + actual[4:] == expected[:3] + expected[4:]
