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
  validation loss).

``--resume RUN`` continues from ``last`` with the same step, learning rate and data order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import torch
import torch.distributed as dist
from torch import nn

from .data import (
    EpochSampler,
    PhotoCrops,
    grey_to_rgb,
    lab_batch,
    list_photos,
    scan_photos,
    split_by_source,
)
from .data import split_validation as _split
from .errors import JKSPNetError
from .files import write_atomic
from .losses import ColorizationLoss, ab_histogram, rebalance_weights
from .model import JKSPNet, ab_bins
from .pipeline import resolve_device
from .weights import ModelConfig, load_into, load_weights, save_weights

STATE_NAME = "training_state.pt"
_MAX_BAD_STEPS = 10  # consecutive non-finite losses before a run gives up


class TrainingError(JKSPNetError):
    """A run that cannot go on (diverged, nothing to train on, nothing to resume)."""


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


# ----------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _init_distributed(device: torch.device) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Dist(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return _Dist(rank, world, local_rank), device


def _any_rank(flag: bool, env: _Dist, device: torch.device) -> bool:
    if env.world == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return value.item() > 0


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


def _digest(module: nn.Module) -> str:
    sha = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        sha.update(name.encode())
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


@contextlib.contextmanager
def _keeping_the_previous(temp: Path, what: str, kept: str) -> Iterator[None]:
    """A write that fails (a full disk...) removes its half-written copy and says what is kept."""
    try:
        yield
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        reason = error.strerror or str(error)
        raise TrainingError(f"cannot write {what} ({reason}); {kept}") from None


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------ the run
class Trainer:
    """One training run; see the module docstring for what it writes."""

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True):
        config.check()
        self.config = config
        self.run = Path(config.out)
        self.progress = progress
        device = resolve_device(config.device)
        self.env, self.device = _init_distributed(device)
        torch.manual_seed(config.seed + self.env.rank)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every batch has the same shape
        self.amp = config.amp == "bf16" or (config.amp == "auto" and self.device.type == "cuda")
        self.start_step = 0
        self.best_val = math.inf
        if self.env.main:
            self._prepare_run_folder(resume)
        self.env.barrier()
        self._build_data()
        self._build_model()
        if resume:
            self._load_checkpoint()
        self.writer = self._tensorboard() if self.env.main else None

    # -- setup ---------------------------------------------------------------------------
    def _prepare_run_folder(self, resume: bool) -> None:
        if not resume and (self.run / "last").exists():
            raise JKSPNetError(
                f"{self.run}: already holds a run; use --resume {self.run} or another --out"
            )
        self.run.mkdir(parents=True, exist_ok=True)
        if resume:
            self._tidy_after_kill()
        write_atomic(self.run / "config.toml", self.config.to_toml())

    def _tidy_after_kill(self) -> None:
        """Undo what a run killed while saving left: half-written copies, a best set aside."""
        best, old = self.run / "best", self.run / ".best.old"
        if old.is_dir() and not best.exists():  # killed between setting old aside and renaming
            os.rename(old, best)
        for temp in [self.run / ".best.tmp", *(self.run / "checkpoints").glob(".tmp-step_*")]:
            shutil.rmtree(temp, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.run / ".last.tmp").unlink()
        last = self.run / "last"
        if last.is_symlink():  # killed after renaming a checkpoint, before `last` pointed to it
            current = os.readlink(last)
            for folder in (self.run / "checkpoints").glob("step_*"):
                if folder.name > Path(current).name:
                    shutil.rmtree(folder, ignore_errors=True)

    def _log(self, message: str) -> None:
        if self.env.main:
            print(message, file=sys.stderr)

    def _build_data(self) -> None:
        config = self.config
        files = list_photos(config.data)
        if config.val:
            train_files, val_files = files, list_photos(config.val)
        elif config.val_sources:
            train_files, val_files = split_by_source(files, config.val_sources)
            self._log(
                f"validation by source: {len(val_files)} photos of "
                f"{', '.join(config.val_sources)} held out"
            )
        else:
            train_files, val_files = _split(files, config.val_fraction, config.seed)
        load_side = config.load_side or None
        scanned = scan_photos(train_files, cache=config.cache, load_side=load_side)
        self._log(scanned.report("training set"))
        if len(scanned.photos) < config.batch_size * self.env.world:
            raise TrainingError(
                f"only {len(scanned.photos)} usable training photos; need at least one batch "
                f"({config.batch_size * self.env.world})"
            )
        val_scanned = scan_photos(val_files, cache=config.cache, load_side=load_side)
        if val_files:
            self._log(val_scanned.report("validation set"))
        if self.env.main:  # so `jkspnet eval --data RUN/val_photos.txt` scores the held-out set
            listed = "".join(f"{path.resolve()}\n" for path in val_scanned.photos)
            write_atomic(self.run / "val_photos.txt", listed)
        common = {"crop_size": config.crop_size, "seed": config.seed, "load_side": load_side}
        self.train_set = PhotoCrops(
            scanned.photos,
            train=True,
            scale=(config.crop_scale_min, 1.0),
            images=scanned.images,
            **common,
        )
        self.val_set = PhotoCrops(
            val_scanned.photos, train=False, images=val_scanned.images, **common
        )
        self.sampler = EpochSampler(
            self.train_set,
            config.batch_size,
            self.env.rank,
            self.env.world,
            config.seed,
            endless=True,
        )
        workers = config.workers
        if workers < 0:
            workers = min(8, os.cpu_count() or 1) if self.device.type == "cuda" else 0
            workers = workers if not config.cache or self.device.type == "cuda" else 0
        self.loader = torch.utils.data.DataLoader(
            self.train_set,
            batch_size=config.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
            drop_last=True,
        )
        per_epoch = self.sampler.batches_per_epoch
        self.total_steps = config.max_steps or math.ceil(config.epochs * per_epoch)
        self.steps_per_epoch = per_epoch

    def _class_weights(self) -> torch.Tensor:
        path = self.run / "class_weights.json"
        if self.env.main and not path.exists():
            loader = torch.utils.data.DataLoader(
                PhotoCrops(
                    self.train_set.photos,
                    crop_size=self.config.crop_size,
                    train=False,
                    images=self.train_set.images,
                    load_side=self.train_set.load_side,
                ),
                batch_size=32,
            )
            prior = ab_histogram(
                (lab_batch(rgb.to(self.device))[1] for rgb in loader),
                ab_bins().to(self.device),
                sigma=self.config.sigma,
            )
            weights = rebalance_weights(prior, self.config.rebalance_lambda)
            data = {
                "lambda": self.config.rebalance_lambda,
                "sigma": self.config.sigma,
                "photos": len(self.train_set),
                "prior": prior.cpu().tolist(),
                "weights": weights.cpu().tolist(),
            }
            write_atomic(path, json.dumps(data) + "\n")
        self.env.barrier()
        return torch.tensor(json.loads(path.read_text("utf-8"))["weights"])

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
            class_weights=self._class_weights(),
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

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self._log("note: tensorboard is not installed; metrics go to metrics.jsonl only")
            return None
        return SummaryWriter(str(self.run / "tb"), purge_step=self.start_step or None)

    # -- checkpoints -----------------------------------------------------------------------
    def _model_config(self) -> ModelConfig:
        return ModelConfig(size=self.config.crop_size, temperature=self.config.temperature)

    def _check_finite(self, step: int, what: str) -> None:
        if not all(torch.isfinite(p).all() for p in self.net.state_dict().values()):
            raise TrainingError(f"weights hold NaN/inf at step {step}; {what} not written")

    def _previous(self, name: str) -> str:
        """What a failed save keeps, for its error message."""
        path = self.run / name
        if path.is_symlink():
            return f"{path} still points to {Path(os.readlink(path)).name}"
        return f"{path} is kept as it was" if path.exists() else f"nothing is in {path} yet"

    def _save_checkpoint(self, step: int) -> None:
        self._check_finite(step, "checkpoint")
        folder = self.run / "checkpoints"
        final = folder / f"step_{step:07d}"
        temp = folder / f".tmp-step_{step:07d}"
        shutil.rmtree(temp, ignore_errors=True)
        with _keeping_the_previous(temp, f"the checkpoint of step {step}", self._previous("last")):
            self._write_checkpoint(step, temp, final)
        kept = sorted(p for p in folder.glob("step_*") if p.is_dir() and p != final)
        for old in kept[: len(kept) - (self.config.keep_checkpoints - 1)]:
            shutil.rmtree(old, ignore_errors=True)  # never the one `last` now points to

    def _write_checkpoint(self, step: int, temp: Path, final: Path) -> None:
        """Weights and training state into ``temp``, flushed, renamed to ``final``, linked."""
        save_weights(self.net, temp, self._model_config())
        state = {
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "best_val": self.best_val,
        }
        with open(temp / STATE_NAME, "wb") as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        _fsync_dir(temp)
        if final.exists():
            shutil.rmtree(final)
        os.rename(temp, final)
        link = self.run / ".last.tmp"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.symlink(Path("checkpoints") / final.name, link)
        os.replace(link, self.run / "last")
        _fsync_dir(self.run)

    def _save_best(self, step: int, figures: dict[str, float]) -> None:
        self._check_finite(step, "best weights")
        temp, best = self.run / ".best.tmp", self.run / "best"
        shutil.rmtree(temp, ignore_errors=True)
        with _keeping_the_previous(
            temp, f"the best weights of step {step}", self._previous("best")
        ):
            save_weights(self.net, temp, self._model_config())
            write_atomic(temp / "meta.json", json.dumps({"step": step, **figures}) + "\n")
        old = self.run / ".best.old"
        shutil.rmtree(old, ignore_errors=True)
        if best.exists():
            os.rename(best, old)
        os.rename(temp, best)
        shutil.rmtree(old, ignore_errors=True)

    def _load_checkpoint(self) -> None:
        last = self.run / "last"
        if not last.exists():
            raise TrainingError(f"{self.run}: no checkpoint to resume from")
        state_dict, _ = load_weights(last)
        load_into(self.net, state_dict, str(last))
        try:
            state = torch.load(last / STATE_NAME, map_location="cpu", weights_only=True)
        except Exception as error:
            raise TrainingError(f"{last / STATE_NAME}: cannot read ({error})") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.start_step = int(state["step"])
        self.best_val = float(state["best_val"])
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

    def fit(self) -> dict[str, object]:
        config, env = self.config, self.env
        step = self.start_step
        self.sampler.start(*divmod(step, self.steps_per_epoch))
        started = time.monotonic()
        window = {"loss": 0.0, "ce": 0.0, "ab": 0.0, "n": 0, "grad_norm": 0.0}
        window_start, window_images, waited = time.perf_counter(), 0, 0.0
        bad_steps = skipped = 0
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
            waited += time.perf_counter() - wait_start
            x, ab_true = lab_batch(rgb.to(self.device, non_blocking=True))
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits, ab = self.view(x)
            parts = self.loss(logits, ab, ab_true)
            loss = parts["loss"]
            finite = bool(torch.isfinite(loss))
            if _any_rank(not finite, env, self.device):
                self.optimizer.zero_grad(set_to_none=True)
                bad_steps, skipped = bad_steps + 1, skipped + 1
                if bad_steps >= _MAX_BAD_STEPS:
                    raise TrainingError(
                        f"loss was NaN/inf for {bad_steps} steps in a row at step {step}; "
                        "the last good checkpoint is kept; try a lower --lr"
                    )
            else:
                bad_steps = 0
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.grad_clip)
                if torch.isfinite(grad_norm):
                    self.optimizer.step()
                    window["grad_norm"] += grad_norm.item()
                else:
                    skipped += 1
                for key in ("loss", "ce", "ab"):
                    window[key] += parts[key].item()
                window["n"] += 1
            with warnings.catch_warnings():  # the schedule follows steps, also skipped ones
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler", UserWarning)
                self.scheduler.step()
            step += 1
            window_images += len(rgb) * env.world
            if bar is not None:
                bar.update()
            if env.main and (step % config.log_every == 0 or step == self.total_steps):
                elapsed = time.perf_counter() - window_start
                n = max(1, window["n"])
                record = {
                    "step": step,
                    "epoch": step / self.steps_per_epoch,
                    "loss": window["loss"] / n,
                    "ce": window["ce"] / n,
                    "ab": window["ab"] / n,
                    "grad_norm": window["grad_norm"] / n,
                    "lr": self.scheduler.get_last_lr()[0],
                    "img_per_s": window_images / max(elapsed, 1e-9),
                    "data_wait": waited / max(elapsed, 1e-9),  # share of time spent on the loader
                    "skipped_steps": skipped,
                }
                self._log_metrics(record)
                if bar is not None:
                    bar.set_postfix(
                        loss=f"{record['loss']:.3f}", img_s=f"{record['img_per_s']:.1f}"
                    )
                window = dict.fromkeys(window, 0.0)
                window["n"] = 0
                window_start, window_images, waited = time.perf_counter(), 0, 0.0
            out_of_time = config.time_limit > 0 and (
                time.monotonic() - started >= config.time_limit
            )
            out_of_time = _any_rank(out_of_time, env, self.device)
            paused = 0 < config.stop_at <= step
            done = step >= self.total_steps or out_of_time or paused
            validating = step % config.val_every == 0 or done
            saving = validating or step % config.checkpoint_every == 0
            failure: JKSPNetError | None = None
            try:  # rank 0 alone writes; a failure there must stop every rank, not hang them
                if env.main and validating:
                    figures = self.validate(step)
                    if figures:
                        self._log_metrics({"step": step, **figures})
                        if figures["val_loss"] < self.best_val:
                            self.best_val = figures["val_loss"]
                            self._save_best(step, figures)
                if env.main and (step % config.checkpoint_every == 0 or done):
                    self._save_checkpoint(step)
            except JKSPNetError as error:
                failure = error
            # Every rank knows when rank 0 saves, so only those steps pay for the extra exchange.
            if saving and _any_rank(failure is not None, env, self.device):
                raise failure or TrainingError(f"rank 0 failed to save step {step}; see its error")
            env.barrier()
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
        digests = [_digest(self.net)]
        if env.world > 1:
            for buffer in self.net.buffers():  # BatchNorm statistics drift apart per rank
                dist.broadcast(buffer, src=0)
            digests = [None] * env.world
            dist.all_gather_object(digests, _digest(self.net))
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
        if env.world > 1:
            dist.barrier()
            dist.destroy_process_group()
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
