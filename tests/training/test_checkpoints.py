"""The checkpoints of a run: whole or not at all, last, best, pruning, resume, kills, full disks."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from jkspnet import Colorizer, JKSPNet
from jkspnet.errors import JKSPNetError
from jkspnet.nn.weights import ModelConfig
from jkspnet.training.checkpoints import Checkpoints
from jkspnet.training.config import TrainConfig
from jkspnet.training.trainer import Trainer, TrainingError

from ..conftest import safetensors_disk_full
from .runs import (
    TINY,
    _assert_whole_checkpoint,
    _records,
    _step_of_last,
    _train,
    tiny_run_module,
)


def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path, photos):
    run = tmp_path / "run"
    command = [sys.executable, *tiny_run_module(photos, run, 400)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        last = run / "last"
        if last.exists() and int(last.resolve().name.split("_")[1]) >= 6:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = int((run / "last").resolve().name.split("_")[1])
    assert Colorizer.from_pretrained(run / "last", device="cpu")  # the checkpoint is whole

    resume = [
        sys.executable,
        "-m",
        "jkspnet",
        "train",
        "--resume",
        str(run),
        "--stop-at",
        str(killed_at + 2),
        "-q",
    ]
    result = subprocess.run(resume, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"resuming {run} at step {killed_at}" in result.stderr
    steps = [r["step"] for r in _records(run) if "loss" in r]
    assert steps == list(range(1, killed_at + 3))


# ------------------------------------------------------------------ kills and full disks
_DIE_DURING_SECOND_CHECKPOINT = """
import os, signal, sys
import torch
import jkspnet.nn.weights
from jkspnet.cli import main

where, args = sys.argv[1], sys.argv[2:]
owner, name = {
    "weights": (jkspnet.nn.weights, "save_file"),
    "state": (torch, "save"),
    "link": (os, "symlink"),
}[where]
real, calls = getattr(owner, name), []

def dying(*a, **k):
    calls.append(1)
    result = real(*a, **k)
    if len(calls) == 2:  # the checkpoint of step 2: cut its file short, then die
        if where == "weights":
            os.truncate(a[1], os.path.getsize(a[1]) // 2)
        elif where == "state":
            a[1].flush()
            a[1].truncate(a[1].tell() // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, name, dying)
sys.exit(main(args))
"""


@pytest.mark.parametrize("where", ["weights", "state", "link"])
def test_sigkill_while_a_checkpoint_is_written_keeps_the_previous(capsys, tmp_path, photos, where):
    run = tmp_path / "run"
    args = ["train", "--data", photos, "--out", run, "--max-steps", "3", "--checkpoint-every", "1"]
    child = subprocess.run(
        [sys.executable, "-c", _DIE_DURING_SECOND_CHECKPOINT, where, *map(str, args), *TINY, "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    _assert_whole_checkpoint(run, 1)

    code, err = _train(capsys, "--resume", run)
    assert code == 0 and f"resuming {run} at step 1" in err
    assert json.loads((run / "final.json").read_text())["step"] == 3
    assert [r["step"] for r in _records(run) if "loss" in r] == [1, 2, 3]
    leftovers = [p.name for p in [*run.iterdir(), *(run / "checkpoints").iterdir()]]
    assert not [name for name in leftovers if "tmp" in name], leftovers


@pytest.mark.parametrize("where", ["weights", "state"])
def test_a_full_disk_at_a_checkpoint_stops_and_keeps_the_previous(
    capsys, tmp_path, photos, monkeypatch, where
):
    import jkspnet.nn.weights

    owner, name = (jkspnet.nn.weights, "save_file") if where == "weights" else (torch, "save")
    real, calls = getattr(owner, name), []

    def full_disk(*args, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            return real(*args, **kwargs)
        if where == "weights":  # what safetensors raises when the disk is full
            raise safetensors_disk_full(args[1])
        args[1].write(b"half a training state")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(owner, name, full_disk)
    run = tmp_path / "run"
    common = ["--max-steps", "3", "--checkpoint-every", "1", *TINY]
    code, err = _train(capsys, "--data", photos, "--out", run, *common)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: cannot write the checkpoint of step 2 (No space left on device); "
        f"{run / 'last'} still points to step_0000001"
    )
    _assert_whole_checkpoint(run, 1)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_0000001"]

    monkeypatch.undo()  # space was freed
    code, err = _train(capsys, "--resume", run)
    assert code == 0 and f"resuming {run} at step 1" in err
    _assert_whole_checkpoint(run, 3)


def _two_steps_with_best(run: Path, photos: Path) -> tuple[TrainConfig, Trainer]:
    """A finished two-step run with a checkpoint (``last``) and ``best``."""
    config = TrainConfig(
        data=[str(photos)],
        val=[str(photos)],
        out=str(run),
        max_steps=2,
        checkpoint_every=2,
        crop_size=16,
        batch_size=4,
    )
    trainer = Trainer(config, progress=False)
    trainer.fit()
    return config, trainer


def test_weights_holding_nan_are_never_saved(tmp_path, photos):
    run = tmp_path / "run"
    _, trainer = _two_steps_with_best(run, photos)
    saved = {p: p.read_bytes() for p in [*run.glob("*/model.safetensors")]}
    assert len(saved) == 2  # last and best
    with torch.no_grad():
        trainer.net.abp.weight[0, 0] = float("nan")
    with pytest.raises(TrainingError, match="NaN/inf at step 3; checkpoint not written"):
        trainer._save_checkpoint(3)
    with pytest.raises(TrainingError, match="NaN/inf at step 3; best weights not written"):
        trainer._save_best(3, {"val_loss": 0.0})
    assert {p: p.read_bytes() for p in [*run.glob("*/model.safetensors")]} == saved
    assert _step_of_last(run) == "step_0000002"


def test_resume_tidies_what_a_kill_left(tmp_path, photos):
    run = tmp_path / "run"
    config, _ = _two_steps_with_best(run, photos)
    os.rename(run / "best", run / ".best.old")  # killed while swapping in a new best...
    (run / ".best.tmp").mkdir()  # ...half written
    (run / "checkpoints" / ".tmp-step_0000004").mkdir()
    os.symlink("checkpoints/.tmp-step_0000004", run / ".last.tmp")
    orphan = run / "checkpoints" / "step_0000009"  # renamed into place, `last` not yet moved
    shutil.copytree(run / "checkpoints" / "step_0000002", orphan)
    Trainer(config, resume=True, progress=False)
    assert Colorizer.from_pretrained(run / "best", device="cpu")
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_0000002"]


# ------------------------------------------------------------------ Checkpoints on its own
def _parts(lr: float = 1e-3):
    net = JKSPNet()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (step + 1))
    return net, optimizer, scheduler


def test_checkpoints_keep_the_newest_link_last_and_resume(tmp_path):
    checkpoints = Checkpoints(tmp_path / "run", keep=2, config=ModelConfig(size=16))
    checkpoints.start(resume=False)
    net, optimizer, scheduler = _parts()
    for step in (1, 2, 3):
        net(torch.zeros(1, 1, 16, 16)).sum().backward()
        optimizer.step()
        scheduler.step()
        assert checkpoints.save(step, net, optimizer, scheduler, best_val=1 / step).is_dir()
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_0000002",
        "step_0000003",
    ]
    assert _step_of_last(run) == "step_0000003"
    assert Colorizer.from_pretrained(run / "last", device="cpu").config.size == 16
    checkpoints.save_best(3, net, {"val_loss": 0.25})
    assert json.loads((run / "best" / "meta.json").read_text()) == {"step": 3, "val_loss": 0.25}

    with pytest.raises(JKSPNetError, match="already holds a run"):
        Checkpoints(run, keep=2, config=ModelConfig()).start(resume=False)
    fresh, fresh_optimizer, fresh_scheduler = _parts(lr=0.5)
    assert checkpoints.resume(fresh, fresh_optimizer, fresh_scheduler) == (3, pytest.approx(1 / 3))
    for key, value in net.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, msg=key)
    assert fresh_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert fresh_scheduler.last_epoch == 3
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        Checkpoints(tmp_path / "empty", keep=1, config=ModelConfig()).resume(*_parts())


def test_a_failed_checkpoint_write_says_what_is_kept(tmp_path, monkeypatch):
    checkpoints = Checkpoints(tmp_path, keep=3, config=ModelConfig())
    net, optimizer, scheduler = _parts()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(TrainingError) as caught:
        checkpoints.save(1, net, optimizer, scheduler, best_val=1.0)
    assert str(caught.value) == (
        "cannot write the checkpoint of step 1 (No space left on device); "
        f"nothing is in {tmp_path / 'last'} yet"
    )
    assert list((tmp_path / "checkpoints").iterdir()) == []
