"""The PyTorch backend (the default): JKSPNet's weights run by PyTorch in its fused inference
form (:mod:`jkspnet.nn.inference`), on the CPU, a CUDA GPU or Apple's MPS."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import torch

from ...colour.decoding import confident_ab
from ...errors import JKSPNetError, WeightsError, check_choice
from ..inference import InferenceNet
from ..model import JKSPNet
from ..weights import ModelConfig, bundled_weights, load_into, load_weights, save_weights
from . import PRECISIONS


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise JKSPNetError(f"unknown device {name!r} (use auto, cpu, cuda or mps)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise JKSPNetError("device cuda was asked for, but no CUDA GPU is available")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise JKSPNetError("device mps was asked for, but MPS is not available")
    return resolved


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX): then bf16 inference
    is about twice as fast as float32. Elsewhere bf16 is emulated and slower, so auto is fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: stay with float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA GPUs and CPUs with native bf16, else fp32 (the network's
    ab then differ from float32's by about 0.1 on average, far below what the eye sees)."""
    if check_choice("precision", precision, PRECISIONS) != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def _version_of(tensor: torch.Tensor) -> tuple[int, int]:
    """Where a tensor's data lives and how often it was changed in place (tensors made under
    inference_mode count no changes)."""
    return tensor.data_ptr(), 0 if tensor.is_inference() else tensor._version


class TorchNetwork:
    """A JKSPNet run by PyTorch on ``device`` in ``precision`` (see :func:`resolve_precision`)."""

    gives_distribution = True

    def __init__(
        self,
        model: JKSPNet,
        config: ModelConfig | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
    ) -> None:
        self.config = config or ModelConfig()
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        if self.device.type != "mps":
            self.model = self.model.to(memory_format=torch.channels_last)
        self._net: InferenceNet | None = None
        self._net_key: tuple = ()
        self._net_lock = threading.Lock()

    def inference_net(self, rebuild: bool = False) -> InferenceNet:
        """The network's fast inference form (:mod:`jkspnet.nn.inference`) in this precision.

        Rebuilt when the model's weights are changed in place (``load_state_dict``, an
        optimiser step: PyTorch counts those). Edits made through ``.data`` are not counted:
        pass ``rebuild=True`` after them.
        """
        key = (self.precision, *(_version_of(t) for t in self.model.state_dict().values()))
        with self._net_lock:  # server threads: build once
            if rebuild or self._net is None or key != self._net_key:
                dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
                self._net, self._net_key = InferenceNet(self.model, dtype), key
            return self._net

    def _input(self, network_input: torch.Tensor) -> torch.Tensor:
        x = network_input.to(self.device, torch.float32)
        if self.device.type != "mps":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def ab_at(
        self, network_input: torch.Tensor, temperatures: Sequence[float], confidence: float = 0.0
    ) -> list[torch.Tensor]:
        x = self._input(network_input)
        if not confidence:
            return self.inference_net()(x, list(temperatures))
        outputs = self.inference_net()(x, list(temperatures), flatness=True)
        return [confident_ab(out[:, :2], out[:, 2], confidence) for out in outputs]

    def logits(self, network_input: torch.Tensor) -> torch.Tensor:
        return self.inference_net().logits(self._input(network_input))

    def ab_projection(self) -> torch.Tensor:
        """The network's own map from bin probabilities to ab, (313, 2) float32: its bias-free
        1x1 convolution, which training moves away from the bin centres it starts at (0.4's by
        3 ab units on average). Decoding a distribution with it gives the automatic colour: it
        is the inference head's own copy, the one the automatic path decodes with."""
        return self.inference_net().head.bins.cpu()

    def save_pretrained(
        self,
        folder: str | os.PathLike[str],
        config: ModelConfig | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Path:
        """Write ``model.safetensors`` and ``config.json``, loadable by :func:`load`."""
        return save_weights(self.model, folder, config or self.config, dtype=dtype)


def load_model(weights: str | os.PathLike[str] | None) -> tuple[JKSPNet, ModelConfig]:
    """A float32 JKSPNet in eval mode and its config, from a ``save_pretrained`` folder or a
    weights file; None takes the weights bundled with the package, where they ship."""
    if weights is None:
        weights = bundled_weights()
        if weights is None:
            raise WeightsError(
                "no default weights are bundled with this version yet; pass --weights PATH "
                "(a folder written by save_pretrained or a .safetensors file)"
            )
    state, config = load_weights(weights)
    with torch.device("meta"):  # every tensor is loaded: a random initialisation is wasted
        model = JKSPNet()
    load_into(model, state, str(weights))
    return model.float().eval(), config


def load(
    weights: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
) -> TorchNetwork:
    if weights is not None and str(weights).lower().endswith(".onnx"):
        raise JKSPNetError(f"{weights}: an ONNX model; run it with --backend onnxruntime")
    model, config = load_model(weights)
    return TorchNetwork(model, config, device=device, precision=precision)


__all__ = [
    "TorchNetwork",
    "cpu_has_native_bf16",
    "load",
    "load_model",
    "resolve_device",
    "resolve_precision",
]
