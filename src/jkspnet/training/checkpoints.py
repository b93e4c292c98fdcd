"""The checkpoints of a training run: each written whole or not at all, ``last``, ``best``,
pruning, resuming, and tidying what a kill left.

In the run folder RUN:

- ``checkpoints/step_NNNNNNN/``: ``model.safetensors`` + ``config.json`` (loadable by
  ``Colorizer.from_pretrained``) and ``training_state.pt`` (optimizer, scheduler, RNG, step, best
  validation loss). Written into a temporary folder ``checkpoints/.jkspnet-tmp.*``, flushed,
  renamed; then the link ``last`` is swapped by an atomic rename, so a kill at any moment leaves
  the previous checkpoint whole and ``last`` pointing to it. Only the newest ``keep`` are kept.
- ``best/``: the weights with the lowest validation loss and ``meta.json`` (step and figures);
  written into a temporary ``.jkspnet-tmp.*`` folder, and swapped in with the old one set aside
  as ``.best.old``.

A write that fails (a full disk) removes its half-written copy and raises
:class:`~jkspnet.errors.TrainingError` naming what is kept. Weights holding NaN or inf are never
written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..errors import JKSPNetError, TrainingError
from ..media.files import (
    fsync_path,
    make_folders,
    make_temporary_folder,
    remove_stale_temporaries,
    temporary_name,
    write_atomic,
)
from ..nn.weights import ModelConfig, load_into, load_weights, save_weights

STATE_NAME = "training_state.pt"


@contextlib.contextmanager
def _keeping_the_previous(temp: Path, what: str, kept: str) -> Iterator[None]:
    """A write that fails (a full disk...) removes its half-written copy and says what is kept."""
    try:
        yield
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        reason = error.strerror or str(error)
        raise TrainingError(f"cannot write {what} ({reason}); {kept}") from None


def _check_finite(net: nn.Module, step: int, what: str) -> None:
    if not all(torch.isfinite(p).all() for p in net.state_dict().values()):
        raise TrainingError(f"weights hold NaN/inf at step {step}; {what} not written")


class Checkpoints:
    """The checkpoints of the run folder ``run``: the newest ``keep`` and ``best``, saved with
    ``config`` (the weights' size and temperature)."""

    def __init__(self, run: str | os.PathLike[str], keep: int, config: ModelConfig) -> None:
        self.run = Path(run)
        self.keep = keep
        self.config = config

    def has_checkpoint(self) -> bool:
        return (self.run / "last").exists()

    def start(self, resume: bool, afresh: bool = False) -> None:
        """Make the run folder; a folder that holds a run is refused unless ``resume`` (or
        ``afresh``: a run killed before its first checkpoint, begun again). What a killed run
        left (temporaries, a best set aside) is tidied first."""
        if not resume and not afresh and self.has_checkpoint():
            raise JKSPNetError(
                f"{self.run}: already holds a run; use --resume {self.run} or another --out"
            )
        make_folders(self.run)
        self.tidy_after_kill()

    def tidy_after_kill(self) -> None:
        """Undo what a run killed while saving left: half-written copies (temporaries whose
        writer is gone, and those of versions before 0.3), a best set aside."""
        best, old = self.run / "best", self.run / ".best.old"
        if old.is_dir() and not best.exists():  # killed between setting old aside and renaming
            os.rename(old, best)
        remove_stale_temporaries([self.run, self.run / "checkpoints"])
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

    def _previous(self, name: str) -> str:
        """What a failed save keeps, for its error message."""
        path = self.run / name
        if path.is_symlink():
            return f"{path} still points to {Path(os.readlink(path)).name}"
        return f"{path} is kept as it was" if path.exists() else f"nothing is in {path} yet"

    def save(
        self,
        step: int,
        net: nn.Module,
        optimizer,
        scheduler,
        best_val: float,
        raw: nn.Module | None = None,
    ) -> Path:
        """The checkpoint of ``step``, linked as ``last``; older ones beyond ``keep`` pruned.

        ``net`` is written as the checkpoint's weights. ``raw``, when given, is the network the
        optimizer trains, whose weights differ from ``net`` (a moving average of them): it goes
        into the training state, for ``resume``."""
        _check_finite(net, step, "checkpoint")
        folder = self.run / "checkpoints"
        final = folder / f"step_{step:07d}"
        make_folders(folder)
        temp = make_temporary_folder(folder, final.name)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "best_val": best_val,
        }
        if raw is not None:
            state["raw_weights"] = {k: v.detach().cpu() for k, v in raw.state_dict().items()}
        with _keeping_the_previous(temp, f"the checkpoint of step {step}", self._previous("last")):
            self._write(net, state, temp, final)
        kept = sorted(p for p in folder.glob("step_*") if p.is_dir() and p != final)
        for old in kept[: len(kept) - (self.keep - 1)]:
            shutil.rmtree(old, ignore_errors=True)  # never the one `last` now points to
        return final

    def _write(self, net: nn.Module, state: dict, temp: Path, final: Path) -> None:
        """Weights and training state into ``temp``, flushed, renamed to ``final``, linked."""
        save_weights(net, temp, self.config)
        with open(temp / STATE_NAME, "wb") as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        fsync_path(temp)
        if final.exists():
            shutil.rmtree(final)
        os.rename(temp, final)
        link = temporary_name(self.run, "last")
        os.symlink(Path("checkpoints") / final.name, link)
        os.replace(link, self.run / "last")
        fsync_path(self.run)

    def save_best(self, step: int, net: nn.Module, figures: dict[str, float]) -> Path:
        """``net`` as ``best``, with ``figures`` (the validation losses) in its meta.json."""
        _check_finite(net, step, "best weights")
        temp, best = make_temporary_folder(self.run, "best"), self.run / "best"
        with _keeping_the_previous(
            temp, f"the best weights of step {step}", self._previous("best")
        ):
            save_weights(net, temp, self.config)
            write_atomic(temp / "meta.json", json.dumps({"step": step, **figures}) + "\n")
        old = self.run / ".best.old"
        shutil.rmtree(old, ignore_errors=True)
        if best.exists():
            os.rename(best, old)
        os.rename(temp, best)
        shutil.rmtree(old, ignore_errors=True)
        return best

    def resume(
        self, net: nn.Module, optimizer, scheduler, average: nn.Module | None = None
    ) -> tuple[int, float]:
        """Load ``last`` into ``net``, ``optimizer``, ``scheduler`` and the RNGs; return its step
        and best validation loss. ``average`` (a moving average of ``net``) takes the
        checkpoint's weights, and ``net`` the raw ones saved beside them; a checkpoint written
        without an average starts it from its weights."""
        last = self.run / "last"
        if not last.exists():
            raise TrainingError(f"{self.run}: no checkpoint to resume from")
        state_dict, _ = load_weights(last)
        try:
            state = torch.load(last / STATE_NAME, map_location="cpu", weights_only=True)
        except Exception as error:
            raise TrainingError(f"{last / STATE_NAME}: cannot read ({error})") from None
        raw = state.get("raw_weights")
        load_into(net, state_dict if raw is None else raw, str(last))
        if average is not None:
            load_into(average, state_dict, str(last))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        return int(state["step"]), float(state["best_val"])


__all__ = ["STATE_NAME", "Checkpoints"]
