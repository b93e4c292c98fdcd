"""The training configuration: every shipped config is a valid run, and a table round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from jkspnet.training.config import TrainConfig, resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_is_a_valid_run(path):
    # A key renamed in TrainConfig, or a bad value, would otherwise surface only when someone
    # starts the experiment.
    config = resolve_config(None, path, {"data": ["photos"], "out": "run", "max_steps": 1})
    config.check()


def test_a_config_with_group_repeats_round_trips_through_its_toml(tmp_path):
    config = TrainConfig(data=["p"], out="r", max_steps=1, repeat_groups={"interiors": 6, "a b": 2})
    saved = tmp_path / "config.toml"
    saved.write_text(config.to_toml())
    assert resolve_config(None, saved).repeat_groups == {"interiors": 6, "a b": 2}
