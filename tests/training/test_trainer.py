"""Training: it learns, resumes exactly, survives NaNs, runs under DDP; kills: test_checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from jkspnet import Colorizer, JKSPNet
from jkspnet.errors import JKSPNetError
from jkspnet.training.config import TrainConfig
from jkspnet.training.data import lab_batch
from jkspnet.training.trainer import Trainer, TrainingError

from .runs import TINY, _records, _step_of_last, _train, _weights, tiny_run_module


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
        error_trained = (trained.network.model(x) - ab_true).abs().mean()
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


def test_repeat_group_draws_a_group_more_often_and_is_saved(capsys, tmp_path, photos):
    run = tmp_path / "run"
    tiny = ["--data", photos, "--val", photos, "--crop-size", "16", "--batch-size", "4"]
    code, err = _train(capsys, *tiny, "--out", run, "--max-steps", "1", "--repeat-group",
                       f"{photos.name}=3")  # fmt: skip
    assert code == 0, err
    assert "10 photos drawn as 30" in err  # no manifest: the group is the photos' folder
    assert json.loads((run / "class_weights.json").read_text())["photos"] == 30
    assert f'repeat_groups = {{"{photos.name}" = 3}}' in (run / "config.toml").read_text()
    code, err = _train(capsys, "--resume", run, "--max-steps", "2")
    assert code == 0 and "10 photos drawn as 30" in err  # the saved table is read back

    code, err = _train(capsys, *tiny, "--out", tmp_path / "x", "--max-steps", "1",
                       "--repeat-group", "faces=2")  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: no training photos of group(s) faces")
    with pytest.raises(SystemExit) as exit_:
        _train(capsys, *tiny, "--out", tmp_path / "y", "--repeat-group", "faces")
    assert exit_.value.code == 2 and "want GROUP=N" in capsys.readouterr().err
    with pytest.raises(JKSPNetError, match="repeat_groups: 'people' = 0"):
        TrainConfig(data=["x"], out="y", max_steps=1, repeat_groups={"people": 0}).check()


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
            *tiny_run_module(photos, run, 4),
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
import jkspnet.nn.weights
from jkspnet.cli import main

real, calls = jkspnet.nn.weights.save_file, []

def full_disk(*args, **kwargs):
    calls.append(1)
    if len(calls) < 2:
        return real(*args, **kwargs)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

if os.environ["RANK"] == "0":
    jkspnet.nn.weights.save_file = full_disk
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


def test_init_weights_start_from_trained_weights(capsys, tmp_path, photos):
    first = tmp_path / "first"
    assert _train(capsys, "--data", photos, "--out", first, "--max-steps", "2", *TINY)[0] == 0
    start = _weights(first)
    warm = tmp_path / "warm"
    args = ["--data", photos, "--max-steps", "1", "--lr", "1e-12", "--seed", "7", *TINY]
    code, err = _train(capsys, *args, "--out", warm, "--init-weights", first / "last")
    assert code == 0 and "starting from the weights of" in err
    assert f'init_weights = "{first / "last"}"' in (warm / "config.toml").read_text()
    after = _weights(warm)  # one step of a negligible learning rate: still the given weights
    learned = [k for k in start if "running_" not in k and "num_batches" not in k]
    for key in learned:  # (batch-norm statistics follow the step's batch)
        torch.testing.assert_close(after[key], start[key], rtol=0, atol=1e-6, msg=key)
    cold = tmp_path / "cold"
    assert _train(capsys, *args, "--out", cold)[0] == 0
    moved = max((_weights(cold)[k] - start[k]).abs().max().item() for k in learned)
    assert moved > 1e-3  # without --init-weights, seed 7's fresh weights

    code, err = _train(capsys, *args, "--out", tmp_path / "bad", "--init-weights", tmp_path / "no")
    assert code == 2 and "no such file or folder" in err and "Traceback" not in err


def test_a_moving_average_is_what_a_run_saves_and_it_resumes_exactly(capsys, tmp_path, photos):
    common = ["--data", photos, "--max-steps", "6", "--checkpoint-every", "1", *TINY]
    plain, averaged = tmp_path / "plain", tmp_path / "averaged"
    assert _train(capsys, *common, "--out", plain)[0] == 0
    assert _train(capsys, *common, "--out", averaged, "--ema-decay", "0.6")[0] == 0
    assert "ema_decay = 0.6" in (averaged / "config.toml").read_text()

    def checkpoint(step: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        folder = averaged / "checkpoints" / f"step_{step:07d}"
        state = torch.load(folder / "training_state.pt", weights_only=True)
        return load_file(str(folder / "model.safetensors")), state["raw_weights"]

    (average_5, _), (average_6, raw_6) = checkpoint(5), checkpoint(6)
    learned = [k for k in raw_6 if "running_" not in k and "num_batches" not in k]
    for key in learned:  # the optimizer's weights are those of the same run without an average
        torch.testing.assert_close(raw_6[key], _weights(plain)[key], rtol=0, atol=1e-6, msg=key)
        expected = 0.6 * average_5[key] + 0.4 * raw_6[key]  # the saved weights: their average
        torch.testing.assert_close(average_6[key], expected, rtol=1e-5, atol=1e-6, msg=key)
    assert max((average_6[k] - raw_6[k]).abs().max().item() for k in learned) > 1e-4
    assert (averaged / "best" / "model.safetensors").is_file()

    split = tmp_path / "split"
    args = [*common, "--out", split, "--ema-decay", "0.6", "--stop-at", "3"]
    assert _train(capsys, *args)[0] == 0
    code, err = _train(capsys, "--resume", split)
    assert code == 0 and "at step 3" in err
    resumed = torch.load(split / "last" / "training_state.pt", weights_only=True)
    for key in learned:  # both the average and the raw weights go on as in one stretch
        torch.testing.assert_close(_weights(split)[key], average_6[key], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(resumed["raw_weights"][key], raw_6[key], rtol=1e-5, atol=1e-6)

    code, err = _train(capsys, *common, "--out", tmp_path / "bad", "--ema-decay", "1")
    assert code == 2 and "ema_decay must be in [0, 1)" in err and "Traceback" not in err
