"""Export JKSPNet to ONNX or TorchScript for runtimes without the Python package.

The exported graph is :class:`ExportWrapper`: inputs are the normalised L channel ``l``
(N, 1, H, W), float32, L - 50 as :func:`jkspnet.colour.spaces.normalize_l` makes it, and the
decoding temperature ``temperature`` (shape (1,), float32, > 0); the output ``ab`` (N, 2, H, W),
float32, is ``out(softmax(logits / T))`` in LAB units. Batch, height and width are dynamic (H and W
multiples of 8). The weights' config travels with the file: ONNX ``metadata_props``
(``jkspnet.size``, ``jkspnet.temperature``, ...) or, for TorchScript, the extra file
``jkspnet.json`` and the same keys as attributes of the scripted module. The decoding steps
after the graph (``jkspnet.saturation``, ``jkspnet.neutral``, ``jkspnet.neutral_shape``) travel
too, so ``--backend onnxruntime`` decodes an exported file as ``torch`` decodes its weights;
another runtime applies them itself (:mod:`jkspnet.colour.decoding`).

    jkspnet export -o jkspnet.onnx --weights weights/
    jkspnet colorize old.jpg -o colour.png --backend onnxruntime --weights jkspnet.onnx
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from ..errors import JKSPNetError, check_choice, require_extra
from ..media.files import remove_stale_temporaries, write_atomic
from .formats import DEFAULT_OPSET, FORMATS, TORCHSCRIPT_EXTRA
from .model import JKSPNet
from .weights import ModelConfig

INPUT_NAMES = ("l", "temperature")
OUTPUT_NAMES = ("ab",)


class ExportWrapper(nn.Module):
    """JKSPNet with the temperature as a tensor input: ``(l, temperature) -> ab``.

    The head (``abp``, softmax, ``out``) is written on the channels-last view, as matrix
    products with the softmax over the last axis: the same values, but ONNX Runtime runs the
    whole network 2.4x faster than with a softmax over the channel axis of NCHW logits.
    """

    def __init__(self, model: JKSPNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, l: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:  # noqa: E741
        features = self.model.features(l).permute(0, 2, 3, 1)  # (N, H, W, 64)
        abp, out = self.model.abp, self.model.out
        logits = features @ abp.weight.flatten(1).t() + abp.bias  # (N, H, W, 313)
        probabilities = torch.softmax(logits / temperature.reshape(1, 1, 1, 1), dim=-1)
        return (probabilities @ out.weight.flatten(1).t()).permute(0, 3, 1, 2)


_METADATA_FIELDS = {
    "jkspnet.architecture": ("architecture", str),
    "jkspnet.size": ("size", int),
    "jkspnet.temperature": ("temperature", float),
    "jkspnet.shape": ("shape", str),
    "jkspnet.saturation": ("saturation", float),
    "jkspnet.neutral": ("neutral", float),
    "jkspnet.neutral_shape": ("neutral_shape", str),
}
"""The config fields a file carries, by key, with their types; a missing key keeps the default
(files exported before a field existed decode as before it)."""


def metadata(config: ModelConfig) -> dict[str, str]:
    """The key/value pairs written into an exported file."""
    fields = {
        key: repr(float(getattr(config, field))) if kind is float else str(getattr(config, field))
        for key, (field, kind) in _METADATA_FIELDS.items()
    }
    return {
        **fields,
        "jkspnet.version": __version__,
        "jkspnet.inputs": "l: (N,1,H,W) float32 L-50, H and W multiples of 8; "
        "temperature: (1,) float32 > 0",
        "jkspnet.outputs": "ab: (N,2,H,W) float32, LAB units",
    }


def config_from_metadata(data: dict[str, str], source: str) -> ModelConfig:
    """The ModelConfig stored by :func:`metadata` (defaults for keys that are missing)."""
    config = ModelConfig()
    try:
        for key, (field, kind) in _METADATA_FIELDS.items():
            if key in data:
                setattr(config, field, kind(data[key]))
    except ValueError as error:
        raise JKSPNetError(f"{source}: invalid jkspnet metadata ({error})") from None
    if config.architecture != "JKSPNet":
        raise JKSPNetError(f"{source}: model is {config.architecture!r}, not JKSPNet")
    return config


def _example(config: ModelConfig, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    size = config.size
    l = torch.rand(batch, 1, size, size, generator=generator) * 100 - 50  # noqa: E741
    return l, torch.tensor([config.temperature], dtype=torch.float32)


def _require_onnx_exporter() -> None:
    for name in ("onnx", "onnxscript"):
        require_extra("onnx", f"ONNX export needs the {name} package", name)


def export_onnx(
    model: JKSPNet, config: ModelConfig, path: str | os.PathLike[str], opset: int = DEFAULT_OPSET
) -> Path:
    """Write ``model`` as one self-contained ONNX file with dynamic batch, height and width."""
    _require_onnx_exporter()
    import onnx

    path = Path(path)
    wrapper = ExportWrapper(model).eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    height = 8 * torch.export.Dim("height_8", min=1, max=2048)
    width = 8 * torch.export.Dim("width_8", min=1, max=2048)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed" notes and the like
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            torch.no_grad(),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                _example(config),
                dynamo=True,
                opset_version=opset,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=({0: batch, 2: height, 3: width}, None),
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    proto = program.model_proto
    del proto.metadata_props[:]
    for key, value in metadata(config).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.doc_string = (
        "jkspnet",
        "JKSPNet colorization: (l, temperature) -> ab",
    )
    onnx.checker.check_model(proto)
    return _atomic_write(path, proto.SerializeToString())


def export_torchscript(model: JKSPNet, config: ModelConfig, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` traced to TorchScript (batch, height and width stay dynamic)."""
    path = Path(path)
    wrapper = ExportWrapper(model).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notes
        traced = torch.jit.trace(wrapper, _example(config), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(
            traced, buffer, _extra_files={TORCHSCRIPT_EXTRA: json.dumps(metadata(config))}
        )
    return _atomic_write(path, buffer.getvalue())


def load_torchscript(path: str | os.PathLike[str]) -> tuple[torch.jit.ScriptModule, ModelConfig]:
    """A TorchScript export and the config stored beside it."""
    extra = {TORCHSCRIPT_EXTRA: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as error:  # torch raises RuntimeError or ValueError for foreign files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise JKSPNetError(f"{path}: not a TorchScript model ({reason})") from None
    data = json.loads(extra[TORCHSCRIPT_EXTRA] or "{}")
    return module.eval(), config_from_metadata(data, str(path))


def _atomic_write(path: Path, data: bytes) -> Path:
    try:
        remove_stale_temporaries([path.parent])  # what a killed export left there
        write_atomic(path, data)
    except OSError as error:
        raise JKSPNetError(f"{path}: cannot write ({error.strerror or error})") from None
    return path


def export(
    format: str,
    output: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    size: int | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export weights (None: bundled) to ``output`` as ``onnx`` or ``torchscript``."""
    from .backends.torch_network import load_model

    model, config = load_model(weights)
    if size is not None:
        config.size = size
    if check_choice("format", format, FORMATS) == "onnx":
        return export_onnx(model, config, output, opset=opset)
    return export_torchscript(model, config, output)


__all__ = [
    "ExportWrapper",
    "config_from_metadata",
    "export",
    "export_onnx",
    "export_torchscript",
    "load_torchscript",
    "metadata",
]
