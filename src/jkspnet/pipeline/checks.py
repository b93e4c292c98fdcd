"""The inference options' allowed values and checks: device, precision, size, shape, confidence,
reference strength, temperature. One line of error for a bad value."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..errors import JKSPNetError


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


PRECISIONS = ("auto", "fp32", "bf16")


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
    if precision not in PRECISIONS:
        raise JKSPNetError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def check_size(size: int) -> int:
    """The network's input side: a positive multiple of 8 (three stride-2 stages)."""
    if size < 8 or size % 8:
        raise JKSPNetError(f"size must be a positive multiple of 8, got {size}")
    return size


SHAPES = ("square", "aspect")
"""The network's input: the photo squashed to a square, or at its own aspect ratio."""


def check_shape(shape: str) -> str:
    if shape not in SHAPES:
        raise JKSPNetError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    return shape


def check_confidence(confidence: float) -> float:
    if not 0 <= confidence <= 10:
        raise JKSPNetError(f"confidence must be between 0 (off) and 10, got {confidence}")
    return float(confidence)


def check_reference_strength(strength: float) -> float:
    """How much a reference palette re-weights the distribution: a finite number, 0 or more."""
    if not (np.isfinite(strength) and strength >= 0):
        raise JKSPNetError(f"reference strength must be 0 or more, got {strength}")
    return float(strength)


def check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise JKSPNetError(f"temperature must be greater than 0, got {temperature}")
    return float(temperature)


__all__ = [
    "PRECISIONS",
    "SHAPES",
    "check_confidence",
    "check_reference_strength",
    "check_shape",
    "check_size",
    "check_temperature",
    "cpu_has_native_bf16",
    "resolve_device",
    "resolve_precision",
]
