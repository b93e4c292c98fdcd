"""JKSPNet's forward pass rearranged for inference: the same weights and maths, less memory traffic.

Training needs the 313 logits of every pixel; inference only needs their annealed mean, two
numbers per pixel. On a CPU most of the plain forward's time goes to passes over large
activations rather than to arithmetic, so :class:`InferenceNet`

- runs the head (1x1 convolution to 313 logits, softmax, 1x1 convolution to ab) on blocks of
  pixels small enough to stay in cache (softmax and expectation in float32), instead of writing
  and re-reading a 313-channel tensor the size of the input (82 MB in bf16 for a batch of 8 at
  128x128);
- folds the last BatchNorm into that head (exact: the head's first convolution is 1x1);
- runs each convolution and its ReLU as one oneDNN call on the CPU (one pass over the output
  instead of two);
- casts the weights once to the arithmetic's dtype, not on every call as autocast does.

Together about 1.4x the throughput of the plain bf16 forward on our CPU
(``benchmarks/bench_backends.py``). In float32 the results match the plain forward to 1e-3.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .distribution import MAX_ENTROPY
from .model import NUM_BINS, JKSPNet

_CPU_HEAD_PIXELS = 4096  # 4096 x 313 float32 logits: 5 MB, about what the caches of a core hold
_GPU_HEAD_PIXELS = 1 << 18
# On the CPU, larger batches run in passes of at most 8 x 128 x 128 pixels: beyond that the
# activations outgrow the caches and throughput falls (by 15 % at a batch of 32 here).
_CPU_PASS_PIXELS = 8 * 128 * 128


@functools.cache
def _onednn_conv_relu_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN's convolution with a fused ReLU (what torch.compile emits on the CPU)
    runs here in ``dtype``: tried once on a tiny input, since a CPU without AVX-512 refuses bf16
    in it (the unfused path then still works, slowly) and other builds may lack the op."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        x = torch.ones(1, 2, 4, 4, dtype=dtype)
        weight, bias = torch.ones(2, 2, 3, 3, dtype=dtype), torch.zeros(2, dtype=dtype)
        y = torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, [1, 1], [1, 1], [1, 1], 1, "relu", [], ""
        )
        return bool((y == F.conv2d(x, weight, bias, padding=1).relu()).all())
    except Exception:  # an unsupported ISA, a missing op, a changed signature: fall back
        return False


class ConvReLU(nn.Module):
    """``relu(conv(x))`` as one oneDNN call on the CPU; a convolution then an in-place ReLU
    elsewhere. Shares the convolution's weights when they are already in ``dtype``."""

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype, fused: bool) -> None:
        super().__init__()
        self.register_buffer("weight", conv.weight.detach().to(dtype), persistent=False)
        bias = None if conv.bias is None else conv.bias.detach().to(dtype)
        self.register_buffer("bias", bias, persistent=False)
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and x.device.type == "cpu":
            return torch.ops.mkldnn._convolution_pointwise(
                x,
                self.weight,
                self.bias,
                self.padding,
                self.stride,
                self.dilation,
                1,
                "relu",
                [],
                "",
            )
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        return x.relu_()


def _fuse_stage(stage: nn.Sequential, dtype: torch.dtype, fused: bool) -> nn.Sequential:
    """A stage's Conv2d + ReLU pairs as ConvReLU; its BatchNorms shared (they take float32
    parameters with bf16 inputs)."""
    layers: list[nn.Module] = []
    modules = list(stage)
    i = 0
    while i < len(modules):
        layer = modules[i]
        if isinstance(layer, nn.Sequential):
            layers.append(_fuse_stage(layer, dtype, fused))
        elif (
            isinstance(layer, nn.Conv2d)
            and i + 1 < len(modules)
            and isinstance(modules[i + 1], nn.ReLU)
        ):
            layers.append(ConvReLU(layer, dtype, fused))
            i += 1
        elif isinstance(layer, nn.BatchNorm2d):
            layers.append(layer)
        else:
            raise TypeError(f"no inference form for {type(layer).__name__} in a JKSPNet stage")
        i += 1
    return nn.Sequential(*layers)


class ExpectedAB(nn.Module):
    """The head without the full-size logits: ``out(softmax(abp(bn(x)) / T))`` per pixel block.

    The BatchNorm before the head is folded into the 1x1 ``abp`` (exact), and so is 1 / T.
    The softmax and the expectation over the bin centres are float32 whatever the features' dtype.
    """

    def __init__(self, bn: nn.BatchNorm2d, abp: nn.Conv2d, out: nn.Conv2d, dtype: torch.dtype):
        super().__init__()
        device = abp.weight.device

        def exact(tensor: torch.Tensor) -> torch.Tensor:  # float64 on the CPU (not on MPS)
            return tensor.detach().to("cpu", torch.float64)

        scale = exact(bn.weight) / torch.sqrt(exact(bn.running_var) + bn.eps)
        shift = exact(bn.bias) - exact(bn.running_mean) * scale
        weight = exact(abp.weight).reshape(NUM_BINS, -1)
        folded = (weight * scale).t().contiguous()  # (channels, 313)
        self.register_buffer("weight", folded.to(device, torch.float32))
        self.register_buffer("bias", (exact(abp.bias) + weight @ shift).to(device, torch.float32))
        self.register_buffer("bins", out.weight.detach().reshape(2, NUM_BINS).t().float())
        self.dtype = dtype

    def forward(
        self,
        features: torch.Tensor,
        temperatures: Sequence[float] = (1.0,),
        flatness: bool = False,
    ) -> list[torch.Tensor]:
        """ab (N, 2, H, W) at each temperature; with ``flatness``, (N, 3, H, W) whose third
        channel is the distribution's normalised entropy (0 = one bin, 1 = uniform), computed in
        the same pixel blocks, for confidence-aware decoding (:mod:`jkspnet.colour.decoding`)."""
        batch, channels, height, width = features.shape
        pixels = features.permute(0, 2, 3, 1).reshape(-1, channels)  # a view when channels_last
        block = _CPU_HEAD_PIXELS if features.device.type == "cpu" else _GPU_HEAD_PIXELS
        columns = 3 if flatness else 2
        results = []
        for temperature in temperatures:  # 1/T folded into abp: 20 k numbers, no big tensor
            weight = (self.weight / temperature).to(self.dtype)
            bias = (self.bias / temperature).to(self.dtype)
            out = torch.empty((pixels.shape[0], columns), dtype=torch.float32, device=pixels.device)
            for start in range(0, pixels.shape[0], block):
                logits = torch.addmm(bias, pixels[start : start + block], weight)
                probabilities = torch.softmax(logits, dim=1, dtype=torch.float32)
                rows = out[start : start + block]
                if flatness:
                    torch.mm(probabilities, self.bins, out=rows[:, :2])
                    rows[:, 2] = torch.special.entr(probabilities).sum(dim=1) / MAX_ENTROPY
                else:
                    torch.mm(probabilities, self.bins, out=rows)
            results.append(out.view(batch, height, width, columns).permute(0, 3, 1, 2))
        return results

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """The 313 logits (N, 313, H, W) float32, channels_last: guidance needs the whole
        distribution (see :mod:`jkspnet.nn.distribution`), not only its mean. At the network's
        small size this is 20 MB a photo, so it is computed in one go."""
        batch, channels, height, width = features.shape
        pixels = features.permute(0, 2, 3, 1).reshape(-1, channels)
        logits = torch.addmm(self.bias, pixels.float(), self.weight)
        return logits.view(batch, height, width, NUM_BINS).permute(0, 3, 1, 2)


class InferenceNet(nn.Module):
    """A JKSPNet's inference-only twin in ``dtype`` (float32 or bfloat16); see the module doc.

    Float32 weights are shared with the model, bf16 ones are copies, and the head is always a
    copy: the twin reflects the model as it was when built.
    """

    def __init__(self, model: JKSPNet, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        fused = model.abp.weight.device.type == "cpu" and _onednn_conv_relu_works(dtype)
        with torch.device("meta"):
            body = JKSPNet()  # the topology (``features``); every part is replaced below
        for name, part in model.named_children():
            if isinstance(part, nn.Sequential):
                setattr(body, name, _fuse_stage(part, dtype, fused))
            elif isinstance(part, nn.ConvTranspose2d):
                setattr(body, name, part if part.weight.dtype == dtype else _cast(part, dtype))
        body.dec3[-1] = nn.Identity()  # this BatchNorm is folded into the head
        body.abp = body.out = None  # the head replaces them
        self.body = body
        self.head = ExpectedAB(model.dec3[-1], model.abp, model.out, dtype)
        self.dtype = dtype

    @torch.inference_mode()
    def forward(
        self, x: torch.Tensor, temperatures: Sequence[float] = (1.0,), flatness: bool = False
    ) -> list[torch.Tensor]:
        """ab (N, 2, H, W) float32 at each temperature, for normalised L (N, 1, H, W); with
        ``flatness``, a third channel: the normalised entropy (see :class:`ExpectedAB`)."""
        x = x.to(self.dtype)
        per_pass = max(1, _CPU_PASS_PIXELS // (x.shape[-2] * x.shape[-1]))
        if x.device.type != "cpu" or x.shape[0] <= per_pass:
            return self.head(self.body.features(x), temperatures, flatness)
        parts = [
            self.head(self.body.features(part), temperatures, flatness)
            for part in x.split(per_pass)
        ]
        return [torch.cat(abs_at_t) for abs_at_t in zip(*parts, strict=True)]

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The 313 logits (N, 313, H, W) float32 at T = 1, for normalised L (N, 1, H, W)."""
        x = x.to(self.dtype)
        per_pass = max(1, _CPU_PASS_PIXELS // (x.shape[-2] * x.shape[-1]))
        return torch.cat([self.head.logits(self.body.features(part)) for part in x.split(per_pass)])


def _cast(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    return copy.deepcopy(module).to(dtype)


__all__ = ["ExpectedAB", "InferenceNet"]
