"""Training: it learns, resumes exactly (also after SIGKILL), survives NaNs, and runs under DDP."""

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

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from safetensors.torch import load_file

from jkspnet import Colorizer, JKSPNet
from jkspnet.cli import main
from jkspnet.data import lab_batch
from jkspnet.errors import JKSPNetError
from jkspnet.train import TrainConfig, Trainer, TrainingError

from .conftest import safetensors_disk_full

TINY = ["--crop-size", "16", "--batch-size", "4", "--val-every", "1000", "--log-every", "1"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Ten small real photos (scikit-image samples, halves of each), a greyscale one and a
    corrupt file."""
    root = tmp_path_factory.mktemp("train-photos")
    for name in ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"]:
        image = Image.fromarray(getattr(skimage.data, name)())
        image.thumbnail((160, 160))
        half = image.width // 2
        image.crop((0, 0, half, image.height)).save(root / f"{name}_l.jpg", quality=95)
        image.crop((half, 0, image.width, image.height)).save(root / f"{name}_r.jpg", quality=95)
    Image.fromarray(skimage.data.camera()).convert("RGB").save(root / "camera_grey.jpg")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    return root


def _train(capsys, *args) -> tuple[int, str]:
    code = main(["train", *map(str, args), "-q"])
    return code, capsys.readouterr().err


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "last" / "model.safetensors"))


def test_a_short_run_learns_and_skips_bad_photos(capsys, tmp_path, photos):
    run = tmp_path / "run"
    args = [
        "--data",
        photos,
        "--val",
        photos,
        "--out",
        run,
        "--crop-size",
        "32",
        "--batch-size",
        "5",
        "--max-steps",
        "60",
        "--lr",
        "2e-3",
        "--log-every",
        "5",
        "--val-every",
        "60",
        "--checkpoint-every",
        "60",
        "--seed",
        "1",
    ]
    code, err = _train(capsys, *args)
    assert code == 0, err
    assert "training set: 10 photos; skipped 1 unreadable and 1 greyscale" in err
    records = [r for r in _records(run) if "loss" in r]
    assert [r["step"] for r in records] == list(range(5, 61, 5))
    assert records[-1]["loss"] < 0.8 * records[0]["loss"]
    assert all({"lr", "img_per_s", "ce", "ab"} <= set(r) for r in records)
    assert all(0 <= r["data_wait"] <= 1 for r in records)
    listed = (run / "val_photos.txt").read_text().split()  # usable held-out photos, for eval
    assert len(listed) == 10 and all(Path(p).is_file() for p in listed)
    assert any("val_loss" in r for r in _records(run))

    # Decoded ab moved toward the truth on these photos, against the untrained start.
    trained = Colorizer.from_pretrained(run / "last", device="cpu")
    torch.manual_seed(1)  # the run's seed: the same initial weights
    fresh = JKSPNet().eval()
    rgb = torch.stack(
        [
            torch.from_numpy(np.array(Image.open(p).convert("RGB").resize((32, 32)))).permute(
                2, 0, 1
            )
            for p in sorted(photos.glob("*_?.jpg"))
        ]
    )
    x, ab_true = lab_batch(rgb)
    with torch.no_grad():
        error_trained = (trained.model(x) - ab_true).abs().mean()
        error_fresh = (fresh(x) - ab_true).abs().mean()
    assert error_trained < 0.8 * error_fresh
    assert (run / "best" / "model.safetensors").is_file()
    assert Colorizer.from_pretrained(run, device="cpu").config.size == 32
    assert list((run / "tb").iterdir())


def test_straight_equals_split_and_resumed(capsys, tmp_path, photos):
    common = ["--data", photos, "--max-steps", "6", "--checkpoint-every", "3", *TINY]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train(capsys, *common, "--out", straight)[0] == 0
    assert _train(capsys, *common, "--out", split, "--stop-at", "3")[0] == 0
    assert json.loads((split / "final.json").read_text())["step"] == 3
    code, err = _train(capsys, "--resume", split)
    assert code == 0 and "resuming" in err and "at step 3" in err
    a, b = _weights(straight), _weights(split)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    steps = [r["step"] for r in _records(split) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # nothing logged twice
    lrs = [r["lr"] for r in _records(straight) if "loss" in r]
    assert lrs == pytest.approx([r["lr"] for r in _records(split) if "loss" in r])


def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path, photos):
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "jkspnet",
        "train",
        "--data",
        str(photos),
        "--out",
        str(run),
        "--max-steps",
        "400",
        "--checkpoint-every",
        "2",
        *TINY,
        "-q",
    ]
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


def test_non_finite_losses_are_skipped_and_never_checkpointed(tmp_path, photos, monkeypatch):
    config = TrainConfig(
        data=[str(photos)],
        out=str(tmp_path / "run"),
        max_steps=4,
        checkpoint_every=2,
        crop_size=16,
        batch_size=4,
        log_every=1,
    )
    trainer = Trainer(config, progress=False)
    original = trainer.loss.forward
    calls = {"n": 0}

    def flaky(logits, ab_pred, ab_true):
        calls["n"] += 1
        parts = original(logits, ab_pred, ab_true)
        if calls["n"] == 2:
            parts["loss"] = parts["loss"] * float("nan")
        return parts

    monkeypatch.setattr(trainer.loss, "forward", flaky)
    trainer.fit()
    records = [r for r in _records(tmp_path / "run") if "loss" in r]
    assert records[-1]["skipped_steps"] == 1
    assert all(torch.isfinite(t).all() for t in _weights(tmp_path / "run").values())

    config.out, config.max_steps, config.checkpoint_every = str(tmp_path / "diverged"), 40, 100
    trainer = Trainer(config, progress=False)
    infinite = {k: torch.tensor(float("inf")) for k in ("loss", "ce", "ab")}
    monkeypatch.setattr(trainer.loss, "forward", lambda *args: infinite)
    with pytest.raises(TrainingError, match="NaN/inf for 10 steps"):
        trainer.fit()
    assert not (tmp_path / "diverged" / "last").exists()  # no checkpoint from a diverged run


def test_config_file_flags_and_errors(capsys, tmp_path, photos):
    config = tmp_path / "exp.toml"
    config.write_text("batch_size = 2\ncrop_size = 16\nmax_steps = 2\nlr = 1e-3\n")
    run = tmp_path / "run"
    code, _ = _train(capsys, "--config", config, "--data", photos, "--out", run, "--lr", "5e-4")
    assert code == 0
    saved = (run / "config.toml").read_text()
    assert "batch_size = 2" in saved and "lr = 0.0005" in saved and "max_steps = 2" in saved

    code, err = _train(capsys, "--config", config, "--data", photos, "--out", run)
    assert code == 2 and "already holds a run" in err
    config.write_text("learning_rate = 1\n")
    code, err = _train(capsys, "--config", config, "--data", photos, "--out", tmp_path / "x")
    assert code == 2 and "unknown config keys: learning_rate" in err
    code, err = _train(capsys, "--data", photos, "--out", tmp_path / "y")
    assert code == 2 and "--max-steps or --epochs" in err
    code, err = _train(capsys, "--resume", tmp_path / "nothing")
    assert code == 2 and "not a run folder" in err
    with pytest.raises(JKSPNetError):
        TrainConfig(data=["x"], out="y", max_steps=1, crop_size=12).check()
    with pytest.raises(JKSPNetError, match="keep_checkpoints must be at least 1"):
        TrainConfig(data=["x"], out="y", max_steps=1, keep_checkpoints=0).check()


def test_two_process_torchrun_on_cpu(tmp_path, photos):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",  # a free port, not a fixed one that may be taken
            "-m",
            "jkspnet",
            "train",
            "--data",
            str(photos),
            "--out",
            str(run),
            "--max-steps",
            "4",
            "--checkpoint-every",
            "2",
            *TINY,
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    final = json.loads((run / "final.json").read_text())
    assert final["world_size"] == 2 and final["step"] == 4
    digests = final["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert Colorizer.from_pretrained(run / "last", device="cpu")


_RANK0_DISK_FULL_AT_SECOND_CHECKPOINT = """
import errno, os, sys
import jkspnet.weights
from jkspnet.cli import main

real, calls = jkspnet.weights.save_file, []

def full_disk(*args, **kwargs):
    calls.append(1)
    if len(calls) < 2:
        return real(*args, **kwargs)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

if os.environ["RANK"] == "0":
    jkspnet.weights.save_file = full_disk
sys.exit(main(sys.argv[1:]))
"""


def test_a_save_failure_on_rank_0_stops_both_torchrun_ranks(tmp_path, photos):
    script = tmp_path / "disk_full.py"
    script.write_text(_RANK0_DISK_FULL_AT_SECOND_CHECKPOINT)
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["--data", photos, "--out", run, "--max-steps", "6", "--checkpoint-every", "2"]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--standalone", str(script), "train", *map(str, args), *TINY, "-q"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode != 0, result.stderr[-3000:]
    lines = result.stderr.splitlines()  # torchrun's launcher adds its own report after them
    rank_0 = (
        "error: cannot write the checkpoint of step 4 (No space left on device); "
        f"{run / 'last'} still points to step_0000002"
    )
    assert rank_0 in lines
    assert "error: rank 0 failed to save step 4; see its error" in lines  # rank 1 stopped too
    assert took < 240  # a hung rank 1 would wait for the collective's 30-minute timeout
    assert _step_of_last(run) == "step_0000002" and not (run / "final.json").exists()


# ------------------------------------------------------------------ kills and full disks
_DIE_DURING_SECOND_CHECKPOINT = """
import os, signal, sys
import torch
import jkspnet.weights
from jkspnet.cli import main

where, args = sys.argv[1], sys.argv[2:]
owner, name = {
    "weights": (jkspnet.weights, "save_file"),
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


def _step_of_last(run: Path) -> str:
    return Path(os.readlink(run / "last")).name


def _assert_whole_checkpoint(run: Path, step: int) -> None:
    assert _step_of_last(run) == f"step_{step:07d}"
    assert Colorizer.from_pretrained(run / "last", device="cpu")  # sha256-checked weights
    state = torch.load(run / "last" / "training_state.pt", weights_only=True)
    assert state["step"] == step


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
    import jkspnet.weights

    owner, name = (jkspnet.weights, "save_file") if where == "weights" else (torch, "save")
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
