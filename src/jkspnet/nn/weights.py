"""Reading and writing JKSPNet weights: safetensors plus a small JSON config.

Only data formats are read: safetensors, or a PyTorch pickle through
``torch.load(weights_only=True)``, which refuses to run code. A folder's ``config.json`` records
the sha256 of its weights, checked at load (the bundled default weights included). Every failure
names the file and the reason (and, for a shape mismatch, the layer).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import WeightsError
from ..media.files import fsync_path, new_file_mode, remove_stale_temporaries, temporary_name

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP and torch.compile wrap the model's keys


@dataclass
class ModelConfig:
    """What a set of weights needs beside its tensors to colorize as it was meant to."""

    architecture: str = "JKSPNet"
    size: int = 128
    temperature: float = 1.0
    shape: str = "square"  # the network's input: "square" or "aspect" (jkspnet.colour.decoding)
    confidence: float = (
        0.0  # confidence-aware decoding's strength; 0 = off (jkspnet.colour.decoding)
    )
    saturation: float = 1.0  # gain on every decoded chroma (jkspnet.colour.decoding.saturated_ab)
    neutral: float = 0.0  # chroma taken off every pixel (jkspnet.colour.decoding.neutral_ab)
    neutral_shape: str = "soft"  # or "garrote" (jkspnet.pipeline.spec.NEUTRAL_SHAPES)
    sha256: str | None = None  # of the weights file, set at load once it has been checked

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]
        if config.architecture != "JKSPNet":
            raise WeightsError(f"config names architecture {config.architecture!r}, not JKSPNet")
        return config


def bundled_weights() -> Path | None:
    """The default weights shipped inside the package, or None where none ship yet."""
    folder = Path(str(resources.files("jkspnet").joinpath("assets/weights")))
    return folder if (folder / WEIGHTS_NAME).is_file() else None


def _strip_wrappers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    clean = {}
    for key, value in state.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        clean[key] = value
    return clean


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except Exception as error:  # safetensors' own error type differs across versions
            raise WeightsError(f"{path}: not a valid safetensors file ({error})") from None
    if path.suffix in {".pt", ".pth", ".bin", ".ckpt"}:
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols; we report
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # pickle errors come in many types; all mean a bad file
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise WeightsError(f"{path}: cannot read PyTorch weights safely ({reason})") from None
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise WeightsError(f"{path}: holds no state_dict of tensors")
        return state
    raise WeightsError(f"{path}: unknown weights format (use .safetensors, .pt or .pth)")


def load_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """Tensors and config from a ``save_pretrained`` folder, a training run or a weights file."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such file or folder")
    if path.is_dir() and not (path / WEIGHTS_NAME).exists():
        for name in ("best", "last"):  # a training run's folder: its best, else its newest
            if (path / name / WEIGHTS_NAME).is_file():
                path = path / name
                break
    if path.is_dir():
        folder, file = path, path / WEIGHTS_NAME
        if not file.is_file():
            raise WeightsError(f"{path}: folder holds no {WEIGHTS_NAME}")
    else:
        folder, file = path.parent, path
    config = ModelConfig()
    config_file = folder / CONFIG_NAME
    if config_file.is_file():
        try:
            data = json.loads(config_file.read_text("utf-8"))
            config = ModelConfig.from_dict(data)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:
            raise WeightsError(f"{config_file}: invalid config ({error})") from None
        config.sha256 = None  # the recorded sha256 speaks only for its folder's own file
        expected = data.get("sha256")
        if expected and file.name == WEIGHTS_NAME:
            if _sha256(file) != expected:
                raise WeightsError(
                    f"{file}: sha256 does not match {config_file.name}: "
                    "the file is corrupt or altered"
                )
            config.sha256 = expected
    return _strip_wrappers(_read_tensors(file)), config


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly, naming the first layer that does not fit."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (first: {unexpected[0]})")
        raise WeightsError(f"{source}: not JKSPNet weights: " + ", ".join(parts))
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise WeightsError(
                f"{source}: layer {key} has shape {tuple(state[key].shape)}, "
                f"the network needs {tuple(tensor.shape)}"
            )
        if not (state[key].is_floating_point() or key.endswith("num_batches_tracked")):
            raise WeightsError(f"{source}: layer {key} is not a floating-point tensor")
    # A model built on the meta device (no memory, no random initialisation: a fresh
    # process's start-up is shorter by that) takes the loaded tensors themselves, as copies of
    # their own: what safetensors read may share memory with the file's mapping.
    assign = any(tensor.is_meta for tensor in expected.values())
    converted = {k: v.to(expected[k].dtype, copy=assign) for k, v in state.items()}
    model.load_state_dict(converted, strict=True, assign=assign)


def save_weights(
    model: torch.nn.Module,
    folder: str | os.PathLike[str],
    config: ModelConfig,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (created), atomically.

    ``dtype`` applies to the parameters; buffers (BatchNorm's running statistics) stay float32,
    since running variances after ReLU exceed float16's range (65504) in trained weights.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries([folder])  # what a save killed outright left
    parameters = set(_strip_wrappers(dict(model.named_parameters())))
    state = {
        k: (v.to(dtype) if k in parameters else v).detach().cpu().contiguous()
        for k, v in _strip_wrappers(model.state_dict()).items()
    }
    weights_tmp = temporary_name(folder, WEIGHTS_NAME)
    config_tmp = temporary_name(folder, CONFIG_NAME)
    try:
        _save_tensors(state, weights_tmp)
        data = {
            **asdict(config),
            "jkspnet_version": __version__,
            "dtype": str(dtype).removeprefix("torch."),
            "sha256": _sha256(weights_tmp),
        }
        config_tmp.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
        fsync_path(config_tmp)
        os.chmod(weights_tmp, new_file_mode())  # safetensors creates its file owner-only
    except BaseException:  # a full disk, Ctrl-C: leave no half-written temporary behind
        weights_tmp.unlink(missing_ok=True)
        config_tmp.unlink(missing_ok=True)
        raise
    os.replace(weights_tmp, folder / WEIGHTS_NAME)
    os.replace(config_tmp, folder / CONFIG_NAME)
    return folder


def _save_tensors(state: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' ``save_file``, flushed; its I/O errors (a full disk) become OSErrors."""
    try:
        save_file(state, str(path), metadata={"format": "pt", "jkspnet": __version__})
    except SafetensorError as error:
        code = re.search(r"os error (\d+)", str(error))
        if code is None:
            raise
        raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from None
    fsync_path(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
