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
  step; with ``ema_decay``, the raw weights the optimizer trains, while ``model.safetensors``
  holds their moving average); written to a temporary folder, flushed and renamed, so a kill
  never leaves half of one;
- ``last`` (a link to the newest checkpoint) and ``best/`` (the weights with the lowest
  validation loss); :mod:`jkspnet.training.checkpoints` writes, prunes, resumes and tidies these.

``--resume RUN`` continues from ``last`` with the same step, learning rate and data order.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import JKSPNetError, TrainingError
from ..media.files import write_atomic
from ..nn.backends.torch_network import resolve_device
from ..nn.bins import smoothed_prior
from ..nn.model import JKSPNet, ab_bins
from ..nn.weights import ModelConfig, load_into, load_weights
from .averaging import WeightAverage
from .checkpoints import STATE_NAME, Checkpoints
from .config import TrainConfig
from .data import (
    EpochSampler,
    PhotoCrops,
    ScanResult,
    lab_batch,
    list_photos,
    repeat_groups,
    scan_photos,
    split_by_source,
)
from .data import split_validation as _split
from .distributed import Dist, any_rank, init_distributed, weight_digests
from .losses import ColorizationLoss, rebalance_weights
from .records import open_tensorboard, sample_grid, truncate_metrics
from .stopping import SignalStop
from .window import LossWindow

_MAX_BAD_STEPS = 10  # consecutive non-finite losses before a run gives up


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
    scanned.photos = repeat_groups(scanned.photos, config.repeat_groups, log)
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
    prior = smoothed_prior(
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


# ------------------------------------------------------------------------------ the run
class Trainer:
    """One training run: the loop, validation and logging; the run folder's checkpoints are
    :class:`~jkspnet.training.checkpoints.Checkpoints`' (see the module docstring for what it
    writes)."""

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
        self.stop = SignalStop()
        afresh = resume and not self.checkpoints.has_checkpoint()
        if afresh:  # killed before its first checkpoint: the same seed and data order again
            self._log(f"note: {self.run} has no checkpoint yet; starting it afresh")
            resume = False
        if self.env.main:
            self.checkpoints.start(resume, afresh=afresh)
            write_atomic(self.run / "config.toml", self.config.to_toml())
        self.env.barrier()
        self._build_data()
        self._build_model()
        if resume:
            self._resume()
        else:
            if afresh and self.env.main:
                truncate_metrics(self.run / "metrics.jsonl", 0)
            if config.init_weights:
                self._init_weights(config.init_weights)
        self.writer = (
            open_tensorboard(self.run, self.start_step, self._log) if self.env.main else None
        )

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
            sigma=config.sigma,
            **config.loss_weights(),
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
        self.average = WeightAverage(self.net, config.ema_decay) if config.ema_decay else None

    @property
    def weights(self) -> nn.Module:
        """The network validation scores and checkpoints hold: the moving average, if any."""
        return self.net if self.average is None else self.average.module

    # -- checkpoints -----------------------------------------------------------------------
    def _save_checkpoint(self, step: int) -> None:
        raw = None if self.average is None else self.net
        self.checkpoints.save(
            step, self.weights, self.optimizer, self.scheduler, self.best_val, raw=raw
        )

    def _save_best(self, step: int, figures: dict[str, float]) -> None:
        self.checkpoints.save_best(step, self.weights, figures)

    def _init_weights(self, source: str) -> None:
        """Start from trained weights (a warm start): the network only; the optimizer, the
        schedule and the step start afresh. A resumed run takes its checkpoint instead."""
        state, _ = load_weights(source)
        load_into(self.net, state, source)
        self._log(f"starting from the weights of {source}")

    def _resume(self) -> None:
        average = None if self.average is None else self.average.module
        self.start_step, self.best_val = self.checkpoints.resume(
            self.net, self.optimizer, self.scheduler, average
        )
        if self.average is not None:  # it holds the checkpoint's average: go on averaging
            self.average.resumed()
        if self.env.main:
            truncate_metrics(self.run / "metrics.jsonl", self.start_step)
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
        net = self.weights
        self.net.eval()
        totals = {f"val_{key}": 0.0 for key in self.loss.terms}
        count = 0
        loader = torch.utils.data.DataLoader(self.val_set, batch_size=self.config.batch_size)
        first = None
        for rgb in loader:
            x, ab_true = lab_batch(rgb.to(self.device))
            logits = net.logits(x)
            ab = net.decode(logits)
            parts = self.loss(logits, ab, ab_true)
            for key in totals:
                totals[key] += parts[key[4:]].item() * len(rgb)
            count += len(rgb)
            if first is None:
                first = (x, net.decode(logits, self.config.temperature), rgb)
        self.net.train()
        figures = {key: value / count for key, value in totals.items()}
        if self.writer is not None and first is not None:
            self.writer.add_image("samples", sample_grid(*first, self.config.samples), step)
        return figures

    def _step(self, rgb: torch.Tensor, window: LossWindow) -> bool:
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
            if self.average is not None:
                self.average.update(self.net)
            window.sums["grad_norm"] += grad_norm.item()
        else:
            window.skipped += 1
        for key in window.terms:
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
        """Train to the end of the schedule, a time limit or a stop step. SIGTERM, SIGHUP and
        Ctrl-C end the step in progress and write its checkpoint, then are raised (as
        :class:`~jkspnet.errors.Interrupted`, or KeyboardInterrupt): ``--resume`` loses nothing."""
        with self.stop:
            summary = self._fit()
        self.stop.raise_if_signalled()
        return summary

    def _fit(self) -> dict[str, object]:
        config, env = self.config, self.env
        step = self.start_step
        self.sampler.start(*divmod(step, self.steps_per_epoch))
        started = time.monotonic()
        window, bad_steps = LossWindow(self.loss.terms), 0
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
            signalled = self.stop.signalled is not None
            stopping = any_rank(0 < config.time_limit <= elapsed or signalled, env, self.device)
            paused = 0 < config.stop_at <= step
            done = step >= self.total_steps or stopping or paused
            validating = step % config.val_every == 0 or (done and not signalled)
            self._validate_and_save(step, validating, step % config.checkpoint_every == 0 or done)
            if (stopping or paused) and step < self.total_steps:
                why = "time limit reached" if stopping else f"stop step {config.stop_at} reached"
                why = self.stop.reason() if self.stop.signalled is not None else why
                stop_reason = f"{why}; continue with --resume {self.run}"
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


__all__ = ["STATE_NAME", "Trainer", "TrainingError"]
