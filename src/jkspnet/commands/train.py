"""``jkspnet train``: a run of :class:`jkspnet.train.Trainer`, configured by flags and TOML."""

from __future__ import annotations

import argparse

from .options import EXIT_OK

_FLAGS = {
    "data": (
        "--data",
        {"action": "append", "metavar": "DIR", "help": "photo folder or file list (repeatable)"},
    ),
    "val": (
        "--val",
        {
            "action": "append",
            "metavar": "DIR",
            "help": "validation photos (default: a split of --data)",
        },
    ),
    "val_sources": (
        "--val-sources",
        {
            "type": lambda text: [name.strip() for name in text.split(",") if name.strip()],
            "metavar": "PKG,PKG",
            "help": "hold out the photos of these sources (packages) whole for validation",
        },
    ),
    "val_fraction": (
        "--val-fraction",
        {"type": float, "help": "share of --data held out when no --val (0.1)"},
    ),
    "out": ("--out", {"metavar": "RUN", "help": "run folder"}),
    "max_steps": ("--max-steps", {"type": int, "help": "schedule length in steps"}),
    "epochs": (
        "--epochs",
        {"type": float, "help": "schedule length in epochs (if no --max-steps)"},
    ),
    "time_limit": (
        "--time-limit",
        {
            "type": float,
            "metavar": "SECONDS",
            "help": "stop (with a checkpoint) after this long; resume later",
        },
    ),
    "stop_at": (
        "--stop-at",
        {
            "type": int,
            "metavar": "STEP",
            "help": "stop at this step with a checkpoint; resume later",
        },
    ),
    "init_weights": (
        "--init-weights",
        {
            "metavar": "WEIGHTS",
            "help": "start from these weights (a weights file, a saved folder or a run; "
            "a warm start: fresh optimizer and schedule); ignored by --resume",
        },
    ),
    "cutouts": (
        "--cutouts",
        {
            "choices": ["composite", "white"],
            "help": "photos with transparency: pasted onto crops of other photos, or onto "
            "white (composite)",
        },
    ),
    "batch_size": ("--batch-size", {"type": int, "help": "photos per step per process (16)"}),
    "crop_size": ("--crop-size", {"type": int, "help": "crop side, a multiple of 8 (128)"}),
    "lr": ("--lr", {"type": float, "help": "peak learning rate of AdamW (3e-4)"}),
    "seed": ("--seed", {"type": int, "help": "seed of data order, crops and init (0)"}),
    "device": ("--device", {"help": "auto, cpu, cuda or mps (auto)"}),
    "amp": ("--amp", {"choices": ["auto", "bf16", "off"], "help": "bf16 autocast (auto: on CUDA)"}),
    "workers": ("--workers", {"type": int, "help": "data loader processes (auto)"}),
    "checkpoint_every": (
        "--checkpoint-every",
        {"type": int, "help": "steps between checkpoints (200)"},
    ),
    "val_every": ("--val-every", {"type": int, "help": "steps between validations (200)"}),
    "log_every": ("--log-every", {"type": int, "help": "steps between metric records (10)"}),
}
_SWITCHES = {  # TrainConfig's booleans that a flag turns on
    "compile": ("--compile", "torch.compile the network"),
    "cache": ("--cache", "keep decoded photos in memory (small data sets)"),
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train JKSPNet on a photo folder",
        description="Train JKSPNet on photo folders: soft-encoded, class-rebalanced cross-entropy "
        "over the 313 ab bins plus Huber on ab; AdamW with warm-up and cosine decay. Runs on one "
        "CPU or GPU, or many with `torchrun --nproc_per_node N -m jkspnet train ...`.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config; flags override it")
    parser.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    for name, (flag, options) in _FLAGS.items():
        parser.add_argument(flag, dest=name, default=None, **options)
    for name, (flag, text) in _SWITCHES.items():
        parser.add_argument(
            flag, dest=name, action="store_const", const=True, default=None, help=text
        )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import Trainer, resolve_config  # torch: when the command runs

    flags = {name: getattr(args, name) for name in [*_FLAGS, *_SWITCHES]}
    config = resolve_config(args.resume, args.config, flags)
    trainer = Trainer(config, resume=args.resume is not None, progress=not args.quiet)
    trainer.fit()
    return EXIT_OK
