"""A training run's configuration: :class:`TrainConfig` (the TOML keys, the defaults and the
checks) and :func:`resolve_config`. No torch, so the command line reads it cheaply."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import JKSPNetError

_PER_INVOCATION = {"stop_at"}  # controls one invocation; not saved, not inherited by --resume


@dataclass
class TrainConfig:
    """Everything a run depends on. Field names are the TOML keys; CLI flags use dashes."""

    data: list[str] = field(default_factory=list)
    out: str = ""
    val: list[str] = field(default_factory=list)
    val_sources: list[str] = field(default_factory=list)  # hold out these packages whole
    val_fraction: float = 0.1
    max_steps: int = 0
    epochs: float = 0.0
    time_limit: float = 0.0  # seconds; 0 = none
    stop_at: int = 0  # stop (with a checkpoint) at this step; 0 = run the whole schedule
    batch_size: int = 16
    crop_size: int = 128
    crop_scale_min: float = 0.35
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ce_weight: float = 1.0
    ab_weight: float = 0.02
    rebalance_lambda: float = 0.5
    sigma: float = 5.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto (bf16 on CUDA, off on CPU), bf16, off
    channels_last: bool = True
    compile: bool = False
    workers: int = -1  # -1 = auto
    cache: bool = False
    load_side: int = 0  # decode photos at this short side (0 = full size)
    log_every: int = 10
    val_every: int = 200
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    samples: int = 4
    temperature: float = 1.0  # stored with the weights; pick it with `jkspnet eval`

    @classmethod
    def from_toml(cls, path: Path) -> dict[str, object]:
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise JKSPNetError(f"{path}: cannot read config ({error})") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise JKSPNetError(f"{path}: unknown config keys: {', '.join(unknown)}")
        return data

    def to_toml(self) -> str:
        lines = []
        for key, value in asdict(self).items():
            if key in _PER_INVOCATION:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def check(self) -> None:
        if not self.data:
            raise JKSPNetError("no training data: give --data DIR")
        if not self.out:
            raise JKSPNetError("no run folder: give --out RUN")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise JKSPNetError("give --max-steps or --epochs: the schedule needs a length")
        if self.crop_size % 8 or self.crop_size < 8:
            raise JKSPNetError(f"crop size must be a multiple of 8, got {self.crop_size}")
        if self.amp not in {"auto", "bf16", "off"}:
            raise JKSPNetError(f"amp must be auto, bf16 or off, got {self.amp!r}")
        if not 0 < self.crop_scale_min <= 1:
            raise JKSPNetError(f"crop_scale_min must be in (0, 1], got {self.crop_scale_min}")
        if self.keep_checkpoints < 1:
            raise JKSPNetError(f"keep_checkpoints must be at least 1, got {self.keep_checkpoints}")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def resolve_config(
    resume: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> TrainConfig:
    """Defaults < the run's saved config (``resume``, a run folder) < ``config_file`` (TOML) <
    ``overrides`` (TrainConfig fields; None values are ignored)."""
    values: dict[str, object] = {}
    if resume is not None:
        saved = Path(resume) / "config.toml"
        if not saved.is_file():
            raise JKSPNetError(f"{resume}: not a run folder (no config.toml)")
        values.update(TrainConfig.from_toml(saved))
        values["out"] = os.fspath(resume)
    if config_file:
        values.update(TrainConfig.from_toml(Path(config_file)))
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return TrainConfig(**values)  # type: ignore[arg-type]
    except TypeError as error:
        raise JKSPNetError(f"invalid config: {error}") from None


__all__ = ["TrainConfig", "resolve_config"]
