"""``jkspnet train``: a run of :class:`jkspnet.training.trainer.Trainer`, configured by flags and
TOML. The flags' help comes from :class:`~jkspnet.training.config.TrainConfig`, beside the TOML
keys and defaults."""

from __future__ import annotations

import argparse

from ..training.config import AMP_MODES, CUTOUT_MODES, flag_help
from .options import EXIT_OK


def _group_times(text: str) -> tuple[str, int]:
    """``GROUP=N`` of ``--repeat-group``: a group name and a whole number of times."""
    group, _, times = text.rpartition("=")
    if not group.strip() or not times.strip().isdigit():
        raise argparse.ArgumentTypeError(f"want GROUP=N (e.g. interiors=4), got {text!r}")
    return group.strip(), int(times)


_FLAGS = {
    "data": (
        "--data",
        {"action": "append", "metavar": "DIR"},
    ),
    "val": (
        "--val",
        {
            "action": "append",
            "metavar": "DIR",
        },
    ),
    "val_sources": (
        "--val-sources",
        {
            "type": lambda text: [name.strip() for name in text.split(",") if name.strip()],
            "metavar": "PKG,PKG",
        },
    ),
    "repeat_groups": (
        "--repeat-group",
        {"action": "append", "type": _group_times, "metavar": "GROUP=N"},
    ),
    "val_fraction": (
        "--val-fraction",
        {"type": float},
    ),
    "out": ("--out", {"metavar": "RUN"}),
    "max_steps": ("--max-steps", {"type": int}),
    "epochs": (
        "--epochs",
        {"type": float},
    ),
    "time_limit": (
        "--time-limit",
        {
            "type": float,
            "metavar": "SECONDS",
        },
    ),
    "stop_at": (
        "--stop-at",
        {
            "type": int,
            "metavar": "STEP",
        },
    ),
    "init_weights": ("--init-weights", {"metavar": "WEIGHTS"}),
    "cutouts": ("--cutouts", {"choices": CUTOUT_MODES}),
    "batch_size": ("--batch-size", {"type": int}),
    "crop_size": ("--crop-size", {"type": int}),
    "lr": ("--lr", {"type": float}),
    "ema_decay": ("--ema-decay", {"type": float}),
    "seed": ("--seed", {"type": int}),
    "device": ("--device", {}),
    "amp": ("--amp", {"choices": AMP_MODES}),
    "workers": ("--workers", {"type": int}),
    "checkpoint_every": (
        "--checkpoint-every",
        {"type": int},
    ),
    "val_every": ("--val-every", {"type": int}),
    "log_every": ("--log-every", {"type": int}),
}
_SWITCHES = {"compile": "--compile", "cache": "--cache"}  # TrainConfig's booleans a flag turns on


HELP = "train JKSPNet on a photo folder"
DESCRIPTION = (
    "Train JKSPNet on photo folders: soft-encoded, class-rebalanced cross-entropy "
    "over the 313 ab bins plus Huber on ab; AdamW with warm-up and cosine decay. Runs on one "
    "CPU or GPU, or many with `torchrun --nproc_per_node N -m jkspnet train ...`."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config; flags override it")
    parser.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    for name, (flag, options) in _FLAGS.items():
        parser.add_argument(flag, dest=name, default=None, help=flag_help(name), **options)
    for name, flag in _SWITCHES.items():
        parser.add_argument(
            flag, dest=name, action="store_const", const=True, default=None, help=flag_help(name)
        )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..training.config import resolve_config
    from ..training.trainer import Trainer  # torch: when the command runs

    flags = {name: getattr(args, name) for name in [*_FLAGS, *_SWITCHES]}
    if flags["repeat_groups"] is not None:
        flags["repeat_groups"] = dict(flags["repeat_groups"])
    config = resolve_config(args.resume, args.config, flags)
    trainer = Trainer(config, resume=args.resume is not None, progress=not args.quiet)
    trainer.fit()
    return EXIT_OK
