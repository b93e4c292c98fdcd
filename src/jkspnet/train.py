"""``jkspnet train``: train JKSPNet on any photo folder, on a CPU, a GPU or many (torchrun).

A run lives in one folder (RUN):

- ``config.toml``: the resolved configuration (defaults < ``--config`` file < command line);
- ``class_weights.json``: the training set's smoothed ab histogram and the rebalancing weights,
  computed once;
- ``metrics.jsonl``: one JSON object per logged step (``step``, ``loss``, ``lr``, ``img_per_s``...)
  and per validation (``val_loss``...);
- ``tb/``: TensorBoard scalars and a sample grid (grey | prediction | truth), where tensorboard is
  installed;
- ``checkpoints/step_NNNNNNN/``: ``model.safetensors`` + ``config.json`` (loadable by
  ``Colorizer.from_pretrained``) and ``training_state.pt`` (optimizer, scheduler, scaler, RNG,
  step); written to a temporary folder, flushed and renamed, so a kill never leaves half of one;
- ``last`` (a link to the newest checkpoint) and ``best/`` (the weights with the lowest
  validation loss); :mod:`jkspnet.checkpoints` writes, prunes, resumes and tidies these.

``--resume RUN`` continues from ``last`` with the same step, learning rate and data order.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import torch
from torch import nn

from .checkpoints import STATE_NAME, Checkpoints
from .data import (
    CUTOUT_MODES,
    EpochSampler,
    PhotoCrops,
    ScanResult,
    grey_to_rgb,
    lab_batch,
    list_photos,
    scan_photos,
    split_by_source,
)
from .data import split_validation as _split
from .distributed import Dist, any_rank, init_distributed, weight_digests
from .errors import JKSPNetError, TrainingError
from .files import write_atomic
from .losses import ColorizationLoss, ab_histogram, rebalance_weights
from .model import JKSPNet, ab_bins
from .pipeline import resolve_device
from .weights import ModelConfig, load_into, load_weights

_MAX_BAD_STEPS = 10  # consecutive non-finite losses before a run gives up


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
    cutouts: str = "composite"  # photos with transparency: "composite" onto other photos, "white"
    init_weights: str = ""  # start from these weights (a file, folder or run); not on --resume
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
        if self.cutouts not in CUTOUT_MODES:
            modes = ", ".join(CUTOUT_MODES)
            raise JKSPNetError(f"cutouts must be one of {modes}, got {self.cutouts!r}")
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


# ------------------------------------------------------------------------------ the model
class _TrainView(nn.Module):
    """The network as training sees it: logits for the loss and the decoded ab (T = 1)."""

    def __init__(self, net: JKSPNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net.logits(x)
        return logits, self.net.decode(logits)


def _schedule(config: TrainConfig, total: int):
    warmup = min(config.warmup_steps, max(1, total // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine

    return factor


# ------------------------------------------------------------------------------- the data
@dataclass
class _Photos:
    """The training and validation photos of a run, scanned."""

    train: ScanResult
    val: ScanResult


def _scan(config: TrainConfig, world: int, log: Callable[[str], None]) -> _Photos:
    """List, split and scan the photos; raise if they do not fill one batch per process."""
    files = list_photos(config.data)
    if config.val:
        train_files, val_files = files, list_photos(config.val)
    elif config.val_sources:
        train_files, val_files = split_by_source(files, config.val_sources)
        log(
            f"validation by source: {len(val_files)} photos of "
            f"{', '.join(config.val_sources)} held out"
        )
    else:
        train_files, val_files = _split(files, config.val_fraction, config.seed)
    load_side = config.load_side or None
    scanned = scan_photos(
        train_files,
        cache=config.cache,
        load_side=load_side,
        keep_alpha=config.cutouts == "composite",
    )
    log(scanned.report("training set"))
    if len(scanned.photos) < config.batch_size * world:
        raise TrainingError(
            f"only {len(scanned.photos)} usable training photos; need at least one batch "
            f"({config.batch_size * world})"
        )
    val_scanned = scan_photos(val_files, cache=config.cache, load_side=load_side)
    if val_files:
        log(val_scanned.report("validation set"))
    return _Photos(scanned, val_scanned)


def _crops(config: TrainConfig, photos: _Photos) -> tuple[PhotoCrops, PhotoCrops]:
    """Random crops of the training photos; the validation photos' fixed centre crops."""
    common = {
        "crop_size": config.crop_size,
        "seed": config.seed,
        "load_side": config.load_side or None,
    }
    train = PhotoCrops(
        photos.train.photos,
        train=True,
        scale=(config.crop_scale_min, 1.0),
        images=photos.train.images,
        cutouts=config.cutouts,
        **common,
    )
    return train, PhotoCrops(photos.val.photos, train=False, images=photos.val.images, **common)


def _loader(config: TrainConfig, dataset, sampler, device: torch.device):
    workers = config.workers
    if workers < 0:
        workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
        workers = workers if not config.cache or device.type == "cuda" else 0
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        drop_last=True,
    )


def _class_weights(run: Path, photos: PhotoCrops, config: TrainConfig, env: Dist, device):
    """The rebalancing weights of the 313 bins, from ``run``'s class_weights.json; rank 0 first
    writes it (the training set's smoothed ab histogram and the weights) if it is missing."""
    path = run / "class_weights.json"
    if env.main and not path.exists():
        _write_class_weights(path, photos, config, device)
    env.barrier()
    return torch.tensor(json.loads(path.read_text("utf-8"))["weights"])


def _write_class_weights(path: Path, photos: PhotoCrops, config: TrainConfig, device) -> None:
    loader = torch.utils.data.DataLoader(
        PhotoCrops(
            photos.photos,
            crop_size=config.crop_size,
            train=False,
            images=photos.images,
            load_side=photos.load_side,
        ),
        batch_size=32,
    )
    prior = ab_histogram(
        (lab_batch(rgb.to(device))[1] for rgb in loader),
        ab_bins().to(device),
        sigma=config.sigma,
    )
    weights = rebalance_weights(prior, config.rebalance_lambda)
    data = {
        "lambda": config.rebalance_lambda,
        "sigma": config.sigma,
        "photos": len(photos),
        "prior": prior.cpu().tolist(),
        "weights": weights.cpu().tolist(),
    }
    write_atomic(path, json.dumps(data) + "\n")


def _tensorboard(run: Path, start_step: int, log: Callable[[str], None]):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log("note: tensorboard is not installed; metrics go to metrics.jsonl only")
        return None
    return SummaryWriter(str(run / "tb"), purge_step=start_step or None)


class _Window:
    """The figures of the steps since the last metric record."""

    def __init__(self) -> None:
        self.skipped = 0  # steps skipped for a non-finite loss or gradient, over the invocation
        self.reset()

    def reset(self) -> None:
        self.sums = {"loss": 0.0, "ce": 0.0, "ab": 0.0, "grad_norm": 0.0}
        self.n = 0
        self.start, self.images, self.waited = time.perf_counter(), 0, 0.0

    def record(self, step: int, epoch: float, lr: float) -> dict[str, float]:
        """The record of the window ending at ``step``; the next window starts."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        n = max(1, self.n)
        sums = self.sums
        record = {
            "step": step,
            "epoch": epoch,
            "loss": sums["loss"] / n,
            "ce": sums["ce"] / n,
            "ab": sums["ab"] / n,
            "grad_norm": sums["grad_norm"] / n,
            "lr": lr,
            "img_per_s": self.images / elapsed,
            "data_wait": self.waited / elapsed,  # share of time spent on the loader
            "skipped_steps": self.skipped,
        }
        self.reset()
        return record


# ------------------------------------------------------------------------------ the run
class Trainer:
    """One training run: the loop, validation and logging; the run folder's checkpoints are
    :class:`~jkspnet.checkpoints.Checkpoints`' (see the module docstring for what it writes)."""

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True):
        config.check()
        self.config = config
        self.run = Path(config.out)
        self.progress = progress
        device = resolve_device(config.device)
        self.env, self.device = init_distributed(device)
        torch.manual_seed(config.seed + self.env.rank)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every batch has the same shape
        self.amp = config.amp == "bf16" or (config.amp == "auto" and self.device.type == "cuda")
        self.start_step = 0
        self.best_val = math.inf
        model_config = ModelConfig(size=config.crop_size, temperature=config.temperature)
        self.checkpoints = Checkpoints(self.run, config.keep_checkpoints, model_config)
        if self.env.main:
            self.checkpoints.start(resume)
            write_atomic(self.run / "config.toml", self.config.to_toml())
        self.env.barrier()
        self._build_data()
        self._build_model()
        if resume:
            self._resume()
        elif config.init_weights:
            self._init_weights(config.init_weights)
        self.writer = _tensorboard(self.run, self.start_step, self._log) if self.env.main else None

    # -- setup ---------------------------------------------------------------------------
    def _log(self, message: str) -> None:
        if self.env.main:
            print(message, file=sys.stderr)

    def _build_data(self) -> None:
        config, env = self.config, self.env
        photos = _scan(config, env.world, self._log)
        if env.main:  # so `jkspnet eval --data RUN/val_photos.txt` scores the held-out set
            listed = "".join(f"{path.resolve()}\n" for path in photos.val.photos)
            write_atomic(self.run / "val_photos.txt", listed)
        self.train_set, self.val_set = _crops(config, photos)
        self.sampler = EpochSampler(
            self.train_set, config.batch_size, env.rank, env.world, config.seed, endless=True
        )
        self.loader = _loader(config, self.train_set, self.sampler, self.device)
        self.steps_per_epoch = self.sampler.batches_per_epoch
        self.total_steps = config.max_steps or math.ceil(config.epochs * self.steps_per_epoch)

    def _build_model(self) -> None:
        config = self.config
        self.net = JKSPNet().to(self.device)
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        view: nn.Module = _TrainView(self.net)
        if self.env.world > 1:
            view = nn.parallel.DistributedDataParallel(
                view, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.view = torch.compile(view) if config.compile else view
        self.loss = ColorizationLoss(
            class_weights=_class_weights(self.run, self.train_set, config, self.env, self.device),
            ce_weight=config.ce_weight,
            ab_weight=config.ab_weight,
            sigma=config.sigma,
        ).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.net.parameters(),
            lr=config.lr,
            weight_decay=config.weight_decay,
            fused=self.device.type == "cuda",  # one kernel for all parameters, not dozens
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _schedule(config, self.total_steps)
        )

    # -- checkpoints -----------------------------------------------------------------------
    def _save_checkpoint(self, step: int) -> None:
        self.checkpoints.save(step, self.net, self.optimizer, self.scheduler, self.best_val)

    def _save_best(self, step: int, figures: dict[str, float]) -> None:
        self.checkpoints.save_best(step, self.net, figures)

    def _init_weights(self, source: str) -> None:
        """Start from trained weights (a warm start): the network only; the optimizer, the
        schedule and the step start afresh. A resumed run takes its checkpoint instead."""
        state, _ = load_weights(source)
        load_into(self.net, state, source)
        self._log(f"starting from the weights of {source}")

    def _resume(self) -> None:
        self.start_step, self.best_val = self.checkpoints.resume(
            self.net, self.optimizer, self.scheduler
        )
        if self.env.main:
            _truncate_metrics(self.run / "metrics.jsonl", self.start_step)
        self._log(f"resuming {self.run} at step {self.start_step}")

    # -- the loop --------------------------------------------------------------------------
    def _log_metrics(self, record: dict[str, float]) -> None:
        with open(self.run / "metrics.jsonl", "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
        if self.writer is not None:
            step = int(record["step"])
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float) and math.isfinite(value):
                    self.writer.add_scalar(key, value, step)

    @torch.no_grad()
    def validate(self, step: int) -> dict[str, float]:
        """Mean losses on the validation crops, and the sample grid."""
        if len(self.val_set) == 0:
            return {}
        self.net.eval()
        totals = {"val_loss": 0.0, "val_ce": 0.0, "val_ab": 0.0}
        count = 0
        loader = torch.utils.data.DataLoader(self.val_set, batch_size=self.config.batch_size)
        first = None
        for rgb in loader:
            x, ab_true = lab_batch(rgb.to(self.device))
            logits = self.net.logits(x)
            ab = self.net.decode(logits)
            parts = self.loss(logits, ab, ab_true)
            for key in totals:
                totals[key] += parts[key[4:]].item() * len(rgb)
            count += len(rgb)
            if first is None:
                first = (x, self.net.decode(logits, self.config.temperature), rgb)
        self.net.train()
        figures = {key: value / count for key, value in totals.items()}
        if self.writer is not None and first is not None:
            self.writer.add_image("samples", _sample_grid(*first, self.config.samples), step)
        return figures

    def _step(self, rgb: torch.Tensor, window: _Window) -> bool:
        """One optimizer step on the batch ``rgb``; False (and no update) if the loss is not
        finite on some rank."""
        x, ab_true = lab_batch(rgb.to(self.device, non_blocking=True))
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits, ab = self.view(x)
        parts = self.loss(logits, ab, ab_true)
        loss = parts["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        if any_rank(not bool(torch.isfinite(loss)), self.env, self.device):
            window.skipped += 1
            return False
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        if torch.isfinite(grad_norm):
            self.optimizer.step()
            window.sums["grad_norm"] += grad_norm.item()
        else:
            window.skipped += 1
        for key in ("loss", "ce", "ab"):
            window.sums[key] += parts[key].item()
        window.n += 1
        return True

    def _validate_and_save(self, step: int, validating: bool, checkpointing: bool) -> None:
        """Rank 0 validates and writes; a failure there must stop every rank, not hang them."""
        env = self.env
        failure: JKSPNetError | None = None
        try:
            if env.main and validating:
                figures = self.validate(step)
                if figures:
                    self._log_metrics({"step": step, **figures})
                    if figures["val_loss"] < self.best_val:
                        self.best_val = figures["val_loss"]
                        self._save_best(step, figures)
            if env.main and checkpointing:
                self._save_checkpoint(step)
        except JKSPNetError as error:
            failure = error
        # Every rank knows when rank 0 saves, so only those steps pay for the extra exchange.
        if (validating or checkpointing) and any_rank(failure is not None, env, self.device):
            raise failure or TrainingError(f"rank 0 failed to save step {step}; see its error")
        env.barrier()

    def fit(self) -> dict[str, object]:
        config, env = self.config, self.env
        step = self.start_step
        self.sampler.start(*divmod(step, self.steps_per_epoch))
        started = time.monotonic()
        window, bad_steps = _Window(), 0
        stop_reason = "max steps reached"
        bar = None
        if env.main and self.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=step, unit="step", file=sys.stderr)
        self.net.train()
        batches = iter(self.loader)  # endless: one iterator for the whole run
        while step < self.total_steps:
            wait_start = time.perf_counter()
            rgb = next(batches)
            window.waited += time.perf_counter() - wait_start
            bad_steps = 0 if self._step(rgb, window) else bad_steps + 1
            if bad_steps >= _MAX_BAD_STEPS:
                raise TrainingError(
                    f"loss was NaN/inf for {bad_steps} steps in a row at step {step}; "
                    "the last good checkpoint is kept; try a lower --lr"
                )
            with warnings.catch_warnings():  # the schedule follows steps, also skipped ones
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler", UserWarning)
                self.scheduler.step()
            step += 1
            window.images += len(rgb) * env.world
            if bar is not None:
                bar.update()
            if env.main and (step % config.log_every == 0 or step == self.total_steps):
                lr = self.scheduler.get_last_lr()[0]
                record = window.record(step, step / self.steps_per_epoch, lr)
                self._log_metrics(record)
                if bar is not None:
                    bar.set_postfix(
                        loss=f"{record['loss']:.3f}", img_s=f"{record['img_per_s']:.1f}"
                    )
            elapsed = time.monotonic() - started
            out_of_time = any_rank(0 < config.time_limit <= elapsed, env, self.device)
            paused = 0 < config.stop_at <= step
            done = step >= self.total_steps or out_of_time or paused
            validating = step % config.val_every == 0 or done
            self._validate_and_save(step, validating, step % config.checkpoint_every == 0 or done)
            if (out_of_time or paused) and step < self.total_steps:
                why = "time limit" if out_of_time else f"stop step {config.stop_at}"
                stop_reason = f"{why} reached; continue with --resume {self.run}"
            if done:
                break
        if bar is not None:
            bar.close()
        return self._finish(step, stop_reason)

    def _finish(self, step: int, reason: str) -> dict[str, object]:
        env = self.env
        digests = weight_digests(self.net, env)
        summary = {
            "step": step,
            "stop_reason": reason,
            "world_size": env.world,
            "rank_weight_digests": digests,
            "best_val_loss": self.best_val,
        }
        if env.main:
            write_atomic(self.run / "final.json", json.dumps(summary, indent=2) + "\n")
            if self.writer is not None:
                self.writer.close()
            self._log(f"stopped at step {step}: {reason}; weights in {self.run / 'last'}")
        env.close()
        return summary


def _sample_grid(x: torch.Tensor, ab: torch.Tensor, rgb: torch.Tensor, count: int) -> torch.Tensor:
    """Rows of grey | prediction | truth, as a (3, H, W) image in [0, 1]."""
    from .color import denormalize_l, lab_to_rgb

    x, ab, rgb = x[:count].float(), ab[:count].float(), rgb[:count]
    prediction = lab_to_rgb(torch.cat([denormalize_l(x), ab], dim=1))
    rows = [
        torch.cat([g, p, t.float() / 255], dim=2)
        for g, p, t in zip(grey_to_rgb(x), prediction, rgb.to(x.device), strict=True)
    ]
    return torch.cat(rows, dim=1).cpu()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records logged after the checkpoint we resume from: they will be logged again."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text("utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    write_atomic(path, "".join(line + "\n" for line in kept))


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


__all__ = ["STATE_NAME", "TrainConfig", "Trainer", "TrainingError", "resolve_config"]
