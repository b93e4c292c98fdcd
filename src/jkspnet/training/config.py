"""A training run's configuration: :class:`TrainConfig` (the TOML keys, the defaults and the
checks) and :func:`resolve_config`. No torch, so the command line reads it cheaply."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import JKSPNetError, check_choice

_WEIGHT = "_weight"
_PER_INVOCATION = {"stop_at"}  # controls one invocation; not saved, not inherited by --resume


AMP_MODES = ("auto", "bf16", "off")
CUTOUT_MODES = ("composite", "white")
"""How a training photo with transparency (a cut-out) becomes a crop: pasted onto a crop of
another, opaque photo of the set (copy-paste augmentation), or flattened onto white."""


def _flag(text: str) -> dict[str, str]:
    """A field's command-line help; ``{default}`` is filled in with the field's default."""
    return {"help": text}


@dataclass
class TrainConfig:
    """Everything a run depends on. Field names are the TOML keys; CLI flags use dashes."""

    data: list[str] = field(
        default_factory=list, metadata=_flag("photo folder or file list (repeatable)")
    )
    out: str = field(default="", metadata=_flag("run folder"))
    val: list[str] = field(
        default_factory=list, metadata=_flag("validation photos (default: a split of --data)")
    )
    val_sources: list[str] = field(
        default_factory=list,
        metadata=_flag("hold out the photos of these sources (packages) whole for validation"),
    )  # hold out these packages whole
    repeat_groups: dict[str, int] = field(
        default_factory=dict,
        metadata=_flag(
            "draw the training photos of GROUP N times as often (repeatable); a group is a "
            "manifest.csv's group column, else the photo's source"
        ),
    )  # TOML: repeat_groups = {people = 3, interiors = 6}
    val_fraction: float = field(
        default=0.1, metadata=_flag("share of --data held out when no --val ({default})")
    )
    max_steps: int = field(default=0, metadata=_flag("schedule length in steps"))
    epochs: float = field(
        default=0.0, metadata=_flag("schedule length in epochs (if no --max-steps)")
    )
    time_limit: float = field(
        default=0.0, metadata=_flag("stop (with a checkpoint) after this long; resume later")
    )  # seconds; 0 = none
    stop_at: int = field(
        default=0, metadata=_flag("stop at this step with a checkpoint; resume later")
    )  # stop (with a checkpoint) at this step; 0 = run the whole schedule
    batch_size: int = field(default=16, metadata=_flag("photos per step per process ({default})"))
    crop_size: int = field(default=128, metadata=_flag("crop side, a multiple of 8 ({default})"))
    crop_scale_min: float = 0.35
    lr: float = field(default=3e-4, metadata=_flag("peak learning rate of AdamW ({default})"))
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = field(
        default=0.0,
        metadata=_flag(
            "keep an exponential moving average of the weights with this decay (e.g. 0.999), "
            "validated and saved in their place; 0 = off ({default})"
        ),
    )  # averages out the last steps' noise; the raw weights go on training (training_state.pt)
    # A field <term>_weight is the weight of ColorizationLoss's term <term> (loss_weights).
    ce_weight: float = 1.0
    ab_weight: float = 0.02
    rebalance_lambda: float = 0.5
    sigma: float = 5.0
    seed: int = field(default=0, metadata=_flag("seed of data order, crops and init ({default})"))
    device: str = field(default="auto", metadata=_flag("auto, cpu, cuda or mps ({default})"))
    amp: str = field(
        default="auto", metadata=_flag("bf16 autocast (auto: on CUDA)")
    )  # auto (bf16 on CUDA, off on CPU), bf16, off
    channels_last: bool = True
    compile: bool = field(default=False, metadata=_flag("torch.compile the network"))
    workers: int = field(default=-1, metadata=_flag("data loader processes (auto)"))  # -1 = auto
    cache: bool = field(
        default=False, metadata=_flag("keep decoded photos in memory (small data sets)")
    )
    load_side: int = 0  # decode photos at this short side (0 = full size)
    cutouts: str = field(
        default="composite",
        metadata=_flag(
            "photos with transparency: pasted onto crops of other photos, or onto white ({default})"
        ),
    )
    init_weights: str = field(
        default="",
        metadata=_flag(
            "start from these weights (a weights file, a saved folder or a run; a warm start: "
            "fresh optimizer and schedule); ignored by --resume"
        ),
    )
    log_every: int = field(default=10, metadata=_flag("steps between metric records ({default})"))
    val_every: int = field(default=200, metadata=_flag("steps between validations ({default})"))
    checkpoint_every: int = field(
        default=200, metadata=_flag("steps between checkpoints ({default})")
    )
    keep_checkpoints: int = 3
    samples: int = 4
    temperature: float = 1.0  # stored with the weights; pick it with `jkspnet eval`

    def loss_weights(self) -> dict[str, float]:
        """The loss terms' weights, ``{"ce_weight": ..., "ab_weight": ...}``: every field named
        ``<term>_weight``. :class:`~jkspnet.training.losses.ColorizationLoss` takes them as they
        are, so a new term's weight is one field here (its TOML key, its default)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name.endswith(_WEIGHT)}

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
        check_choice("amp", self.amp, AMP_MODES)
        check_choice("cutouts", self.cutouts, CUTOUT_MODES)
        if not 0 < self.crop_scale_min <= 1:
            raise JKSPNetError(f"crop_scale_min must be in (0, 1], got {self.crop_scale_min}")
        if not 0 <= self.ema_decay < 1:
            raise JKSPNetError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for group, times in self.repeat_groups.items():
            if not group or isinstance(times, bool) or not isinstance(times, int) or times < 1:
                raise JKSPNetError(
                    f"repeat_groups: {group!r} = {times!r}; want a group name and a whole number "
                    ">= 1"
                )
        if self.keep_checkpoints < 1:
            raise JKSPNetError(f"keep_checkpoints must be at least 1, got {self.keep_checkpoints}")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + pairs + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _shown(value: object) -> str:
    """A default as help text shows it: 3e-4, 0.1, 16, auto."""
    if isinstance(value, float) and 0 < abs(value) < 1e-3:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def flag_help(name: str) -> str:
    """The help of the command-line flag for TrainConfig's field ``name``."""
    found = {f.name: f for f in fields(TrainConfig)}[name]
    default = found.default if found.default is not MISSING else found.default_factory()  # type: ignore[misc]
    return found.metadata["help"].format(default=_shown(default))


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


__all__ = ["AMP_MODES", "TrainConfig", "flag_help", "resolve_config"]
