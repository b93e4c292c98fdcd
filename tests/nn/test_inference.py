"""The inference form of the network: same maths as JKSPNet's forward, fused and cast once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import jkspnet.nn.inference as inference_module
from jkspnet import Colorizer, JKSPNet
from jkspnet.nn.inference import InferenceNet


def trained_looking_net(seed: int = 0) -> JKSPNet:
    """A JKSPNet whose BatchNorms have non-trivial statistics and affine parameters (a fresh
    one's are the identity, which would hide a wrong fold) and whose logits are peaked."""
    torch.manual_seed(seed)
    model = JKSPNet().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                channels = module.num_features
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
                assert module.weight.shape == (channels,)
        model.abp.weight.mul_(5.0)  # peaked distributions, as after training
    return model.to(memory_format=torch.channels_last)


def network_input(batch: int, size: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, size, size, generator=generator) * 100 - 50
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("size", [64, 128, 40])
def test_fp32_matches_the_plain_forward_at_every_temperature(size):
    model = trained_looking_net()
    x = network_input(3, size)
    with torch.inference_mode():
        expected = [model(x, t) for t in (1.0, 0.38, 2.0)]
    got = InferenceNet(model, torch.float32)(x, [1.0, 0.38, 2.0])
    for ab, reference in zip(got, expected, strict=True):
        assert ab.shape == (3, 2, size, size) and ab.dtype == torch.float32
        assert (ab - reference).abs().max() < 1e-3  # LAB units


def test_the_head_folds_the_last_batchnorm_exactly_even_for_nchw_inputs():
    model = trained_looking_net(seed=3)
    x = network_input(2, 64).contiguous()  # plain NCHW, as on Apple's MPS
    with torch.inference_mode():
        features = model.features(x)
        expected = model.decode(model.abp(features), 0.5)
        net = InferenceNet(model, torch.float32)
        pre_norm = net.body.features(x)  # dec3's BatchNorm is left to the head
        (got,) = net.head(pre_norm, [0.5])
    assert not torch.allclose(pre_norm, features)
    assert (got - expected).abs().max() < 1e-3


def test_bf16_stays_close_to_fp32():
    model = trained_looking_net()
    x = network_input(4, 64)
    (exact,) = InferenceNet(model, torch.float32)(x, [0.5])
    (fast,) = InferenceNet(model, torch.bfloat16)(x, [0.5])
    difference = (exact - fast).abs()
    assert fast.dtype == torch.float32
    assert difference.mean() < 1.0 and difference.max() < 15.0


def test_the_onednn_conv_relu_and_the_portable_path_agree(monkeypatch):
    model = trained_looking_net()
    x = network_input(2, 64)
    fused = InferenceNet(model, torch.float32)
    monkeypatch.setattr(inference_module, "_onednn_conv_relu_works", lambda dtype: False)
    portable = InferenceNet(model, torch.float32)
    assert not any(getattr(m, "fused", False) for m in portable.modules())
    (a,), (b,) = fused(x), portable(x)
    assert (a - b).abs().max() < 1e-3


def test_fp32_shares_the_model_weights_and_bf16_copies_them():
    model = trained_looking_net()
    conv = model.enc1[0]
    fp32 = InferenceNet(model, torch.float32)
    bf16 = InferenceNet(model, torch.bfloat16)
    assert fp32.body.enc1[0].weight.data_ptr() == conv.weight.data_ptr()
    assert bf16.body.enc1[0].weight.dtype == torch.bfloat16
    assert bf16.body.ups1.weight.dtype == torch.bfloat16
    assert model.ups1.weight.dtype == torch.float32  # the model itself is untouched
    assert model.dec3[-1].__class__ is torch.nn.BatchNorm2d


def test_the_colorizer_follows_weight_and_precision_changes():
    colorizer = Colorizer.from_model(trained_looking_net(), device="cpu", precision="fp32")
    x = network_input(1, 64)
    before = colorizer.predict_ab(x)
    with torch.no_grad():  # e.g. a fine-tuning step or load_state_dict on the same model
        colorizer.network.model.abp.bias[:5] += 50.0  # favour the first bins
    after = colorizer.predict_ab(x)
    with torch.inference_mode():
        expected = colorizer.network.model(x)
    assert (after - before).abs().max() > 1.0
    assert (after - expected).abs().max() < 1e-3
    assert colorizer.network.inference_net().dtype == torch.float32
    with torch.no_grad():
        colorizer.network.model.abp.bias.data[:5] -= 50.0  # through .data: no version counted
    assert torch.equal(colorizer.predict_ab(x), after)
    assert (colorizer.network.inference_net(rebuild=True)(x)[0] - before).abs().max() < 1e-3
    colorizer.network.precision = "bf16"  # the network follows a change of its arithmetic
    assert colorizer.network.inference_net().dtype == torch.bfloat16
    assert (colorizer.predict_ab(x) - before).abs().mean() < 1.0


def test_a_colorizer_made_under_inference_mode_works():
    x = network_input(1, 32)
    with torch.inference_mode():  # the weights become inference tensors, which count no versions
        colorizer = Colorizer.from_model(trained_looking_net(), device="cpu", precision="fp32")
        ab = colorizer.predict_ab(x)
    assert ab.shape == (1, 2, 32, 32)


def test_large_batches_run_in_passes_with_the_same_result(monkeypatch):
    model = trained_looking_net()
    x = network_input(5, 64)
    net = InferenceNet(model, torch.float32)
    whole = net(x, [1.0, 0.5])
    passes = []
    original = JKSPNet.features

    def counting(self, part):
        passes.append(part.shape[0])
        return original(self, part)

    monkeypatch.setattr(inference_module, "_CPU_PASS_PIXELS", 2 * 64 * 64)
    monkeypatch.setattr(JKSPNet, "features", counting)
    split = net(x, [1.0, 0.5])
    assert passes == [2, 2, 1]
    for a, b in zip(whole, split, strict=True):
        assert a.shape == b.shape == (5, 2, 64, 64)
        assert (a - b).abs().max() < 1e-3


_BF16_WITHOUT_AVX512 = """
import torch
from jkspnet import Colorizer, JKSPNet
torch.manual_seed(0)
x = torch.rand(2, 1, 32, 32) * 100 - 50
fast = Colorizer.from_model(JKSPNet(), device="cpu", precision="bf16")
exact = Colorizer.from_model(fast.network.model, device="cpu", precision="fp32")
fused = any(getattr(m, "fused", False) for m in fast.network.inference_net().modules())
difference = (fast.predict_ab(x) - exact.predict_ab(x)).abs().max().item()
print(fused, difference)
"""


def test_bf16_asked_for_on_a_cpu_without_avx512_still_runs():
    """oneDNN refuses bf16 convolutions below AVX-512; the fused path must step aside."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    result = subprocess.run(
        [sys.executable, "-c", _BF16_WITHOUT_AVX512], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    fused, difference = result.stdout.split()
    assert fused == "False" and float(difference) < 15.0


def test_the_head_gives_the_normalised_entropy_beside_ab_when_asked():
    from jkspnet.nn.distribution import normalized_entropy

    torch.manual_seed(0)
    model = JKSPNet().eval()
    x = torch.randn(2, 1, 16, 24) * 20
    net = InferenceNet(model, torch.float32)
    plain = net(x, [1.0, 0.5])
    with_flatness = net(x, [1.0, 0.5], flatness=True)
    with torch.no_grad():
        logits = model.logits(x)
    for temperature, ab, out in zip([1.0, 0.5], plain, with_flatness, strict=True):
        assert out.shape == (2, 3, 16, 24)
        assert torch.equal(out[:, :2], ab)
        expected = normalized_entropy(logits / temperature)
        assert torch.allclose(out[:, 2], expected, atol=1e-5)
