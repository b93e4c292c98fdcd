"""Inference backends: PyTorch (the default) or ONNX Runtime over an exported model.

:class:`OnnxColorizer` is a :class:`~jkspnet.pipeline.colorizer.Colorizer` whose network runs in
ONNX Runtime: decoding, full-resolution L and the upsampling of ab stay in PyTorch (``prepare`` and
``finish`` are reused), only ``predict_ab`` changes. The ONNX file is one written by
``jkspnet export`` (inputs ``l`` and ``temperature``, output ``ab``); its default size and
temperature come from the file's metadata.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch

from ..colour.upsample import check_upsample
from ..errors import JKSPNetError
from ..media.photos import DEFAULT_MAX_PIXELS
from ..nn.export import INPUT_NAMES, ONNX_HINT, OUTPUT_NAMES, config_from_metadata
from ..nn.weights import ModelConfig
from .checks import check_confidence, check_shape, check_size, check_temperature, resolve_precision
from .colorizer import Colorizer

BACKENDS = ("torch", "onnxruntime")


def _import_onnxruntime():
    """onnxruntime, with its telemetry off where the build allows."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import onnxruntime
    except ImportError:
        raise JKSPNetError(f"the onnxruntime backend needs onnxruntime: {ONNX_HINT}") from None
    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None:
        with contextlib.suppress(Exception):  # best effort: builds without telemetry may raise
            disable()
    return onnxruntime


class OnnxColorizer(Colorizer):
    """A Colorizer whose network is an exported ONNX model run by ONNX Runtime (on the CPU)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: str | torch.device = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        threads: int | None = None,
        upsample: str = "guided",
        shape: str | None = None,
    ) -> None:
        if str(device) not in {"auto", "cpu"}:
            raise JKSPNetError(f"the onnxruntime backend runs on the CPU only, not {device}")
        ort = _import_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise JKSPNetError(f"{path}: no such ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ORT raises its own pybind types (InvalidProtobuf, Fail, ...)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise JKSPNetError(f"{path}: not a usable ONNX model ({reason})") from None
        inputs = tuple(i.name for i in session.get_inputs())
        outputs = tuple(o.name for o in session.get_outputs())
        if inputs != INPUT_NAMES or outputs != OUTPUT_NAMES:
            raise JKSPNetError(
                f"{path}: not a JKSPNet export (inputs {list(inputs)}, outputs {list(outputs)}; "
                "expected inputs ['l', 'temperature'] and output ['ab'] from 'jkspnet export')"
            )
        meta = session.get_modelmeta().custom_metadata_map
        self.session = session
        self.path = path
        self.config: ModelConfig = config_from_metadata(dict(meta), str(path))
        check_size(self.config.size)
        check_temperature(self.config.temperature)
        self.device = torch.device("cpu")
        self.precision = "fp32"  # the exported graph is float32
        self.max_pixels = max_pixels
        self.upsample = check_upsample(upsample)
        self.shape = check_shape(self.config.shape if shape is None else shape)
        self.confidence = 0.0  # the exported graph gives ab only, no distribution
        self.model = None

    @classmethod
    def from_pretrained(
        cls,
        path=None,
        device="auto",
        max_pixels=DEFAULT_MAX_PIXELS,
        upsample="guided",
        shape=None,
    ):
        if path is None:
            raise JKSPNetError("the onnxruntime backend needs --weights FILE.onnx")
        return cls(path, device=device, max_pixels=max_pixels, upsample=upsample, shape=shape)

    def save_pretrained(self, folder, dtype=torch.float32):
        raise JKSPNetError("an ONNX model cannot be saved as PyTorch weights")

    def predict_ab(self, network_input: torch.Tensor, temperature: float | None = None):
        """ab (N, 2, s, s) for a batch of normalised L (N, 1, s, s), as Colorizer's."""
        temperature = check_temperature(
            self.config.temperature if temperature is None else temperature
        )
        x = np.ascontiguousarray(network_input.detach().cpu().float().numpy())
        t = np.array([temperature], dtype=np.float32)
        (ab,) = self.session.run(None, {"l": x, "temperature": t})
        return torch.from_numpy(ab)

    def predict_ab_at(self, network_input: torch.Tensor, temperatures) -> list[torch.Tensor]:
        return [self.predict_ab(network_input, t) for t in temperatures]


def load_colorizer(
    backend: str,
    weights: str | os.PathLike[str] | None,
    device: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Colorizer:
    """A Colorizer for ``backend``: torch weights, or (onnxruntime) an exported ONNX file."""
    onnx_file = weights is not None and str(weights).lower().endswith(".onnx")
    if backend == "onnxruntime":
        if weights is None or not onnx_file:
            raise JKSPNetError(
                "--backend onnxruntime needs --weights FILE.onnx (made by 'jkspnet export')"
            )
        return OnnxColorizer(weights, device=device, max_pixels=max_pixels)
    if backend != "torch":
        raise JKSPNetError(f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})")
    if onnx_file:
        raise JKSPNetError(f"{weights}: an ONNX model; run it with --backend onnxruntime")
    return Colorizer.from_pretrained(weights, device=device, max_pixels=max_pixels)


def configured_colorizer(
    backend: str = "torch",
    weights: str | os.PathLike[str] | None = None,
    device: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    size: int | None = None,
    precision: str = "auto",
    upsample: str = "guided",
    shape: str | None = None,
    confidence: float | None = None,
) -> Colorizer:
    """:func:`load_colorizer`, then the network input side, the precision and the decoding
    asked for (None and ``auto``: the weights' and the device's own)."""
    colorizer = load_colorizer(backend, weights, device=device, max_pixels=max_pixels)
    if size is not None:
        colorizer.config.size = check_size(size)
    colorizer.upsample = check_upsample(upsample)
    if shape is not None:
        colorizer.shape = check_shape(shape)
    if confidence is not None:
        if colorizer.model is None and confidence:
            raise JKSPNetError(f"the {backend} backend has no confidence-aware decoding")
        colorizer.confidence = check_confidence(confidence)
    if precision != "auto" and precision != colorizer.precision:
        if colorizer.model is None:
            raise JKSPNetError(f"the {backend} backend runs in {colorizer.precision} only")
        colorizer.precision = resolve_precision(precision, colorizer.device)
    return colorizer


__all__ = ["BACKENDS", "OnnxColorizer", "configured_colorizer", "load_colorizer"]
