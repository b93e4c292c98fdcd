"""The ONNX Runtime backend: a model exported by ``jkspnet export`` (inputs ``l`` and
``temperature``, output ``ab``), run on the CPU. Its default size and temperature come from the
file's metadata. The exported graph gives ab only, in float32: no distribution, so no guided
colour, reference palette, uncertainty map or confidence-aware decoding."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...errors import JKSPNetError, require_extra
from ..export import INPUT_NAMES, OUTPUT_NAMES, config_from_metadata
from ..weights import ModelConfig


def _import_onnxruntime():
    """onnxruntime, with its telemetry off where the build allows."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    onnxruntime = require_extra("onnx", "the onnxruntime backend needs onnxruntime", "onnxruntime")
    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None:
        with contextlib.suppress(Exception):  # best effort: builds without telemetry may raise
            disable()
    return onnxruntime


class OnnxNetwork:
    """An exported JKSPNet run by ONNX Runtime on the CPU, in float32."""

    gives_distribution = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: str | torch.device = "auto",
        precision: str = "auto",
        threads: int | None = None,
    ) -> None:
        if str(device) not in {"auto", "cpu"}:
            raise JKSPNetError(f"the onnxruntime backend runs on the CPU only, not {device}")
        if precision not in {"auto", "fp32"}:
            raise JKSPNetError("the onnxruntime backend runs in fp32 only")
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
        self.device = torch.device("cpu")
        self.precision = "fp32"  # the exported graph is float32

    def ab_at(
        self, network_input: torch.Tensor, temperatures: Sequence[float], confidence: float = 0.0
    ) -> list[torch.Tensor]:
        if confidence:
            raise JKSPNetError("the onnxruntime backend has no confidence-aware decoding")
        x = np.ascontiguousarray(network_input.detach().cpu().float().numpy())
        found = []
        for temperature in temperatures:
            t = np.array([temperature], dtype=np.float32)
            (ab,) = self.session.run(None, {"l": x, "temperature": t})
            found.append(torch.from_numpy(ab))
        return found

    def logits(self, network_input: torch.Tensor) -> torch.Tensor:
        raise JKSPNetError("the onnxruntime backend gives ab only, not the distribution")

    def ab_projection(self) -> torch.Tensor:
        raise JKSPNetError("the onnxruntime backend gives ab only, not the distribution")

    def save_pretrained(self, folder, config=None, dtype=torch.float32) -> Path:
        raise JKSPNetError("an ONNX model cannot be saved as PyTorch weights")


def load(
    weights: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
) -> OnnxNetwork:
    if weights is None or not str(weights).lower().endswith(".onnx"):
        raise JKSPNetError(
            "--backend onnxruntime needs --weights FILE.onnx (made by 'jkspnet export')"
        )
    return OnnxNetwork(weights, device=device, precision=precision)


__all__ = ["OnnxNetwork", "load"]
