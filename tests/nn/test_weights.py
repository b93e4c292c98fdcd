"""Weights load only from data formats, round-trip exactly, and fail with a named reason."""

from __future__ import annotations

import errno
import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from jkspnet import Colorizer, JKSPNet, WeightsError
from jkspnet.nn.weights import CONFIG_NAME, WEIGHTS_NAME, ModelConfig

from ..conftest import safetensors_disk_full


def test_save_and_load_round_trip(fresh_weights, tmp_path, astronaut):
    assert (fresh_weights / WEIGHTS_NAME).is_file()
    config = json.loads((fresh_weights / CONFIG_NAME).read_text())
    assert config["architecture"] == "JKSPNet" and config["size"] == 128
    first = Colorizer.from_pretrained(fresh_weights, device="cpu")
    first.config.temperature = 0.5
    first.save_pretrained(tmp_path / "again")
    second = Colorizer.from_pretrained(tmp_path / "again", device="cpu")
    assert second.config.temperature == 0.5
    for key, value in first.network.model.state_dict().items():
        assert torch.equal(value, second.network.model.state_dict()[key]), key
    photo = Image.fromarray(astronaut)
    assert np.array_equal(np.asarray(first.colorize(photo)), np.asarray(second.colorize(photo)))
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]


def test_half_precision_weights_load_as_float32(fresh_weights, tmp_path):
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    colorizer.save_pretrained(tmp_path / "half", dtype=torch.float16)
    tensors = load_file(str(tmp_path / "half" / WEIGHTS_NAME))
    assert tensors["enc1.0.weight"].dtype == torch.float16
    # Running variances of trained weights exceed float16's range: buffers stay float32.
    assert tensors["enc1.4.running_var"].dtype == torch.float32
    assert (tmp_path / "half" / WEIGHTS_NAME).stat().st_mode & 0o044  # readable by all (umask)
    loaded = Colorizer.from_pretrained(tmp_path / "half" / WEIGHTS_NAME, device="cpu")
    assert loaded.network.model.enc1[0].weight.dtype == torch.float32


def test_pt_files_load_through_weights_only(tmp_path):
    model = JKSPNet()
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pt"
    )
    loaded = Colorizer.from_pretrained(tmp_path / "w.pt", device="cpu")
    assert torch.equal(loaded.network.model.abp.weight, model.abp.weight)


class _Payload:
    def __reduce__(self):
        return (print, ("this code must never run",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"enc1.0.weight": _Payload()}))
    with pytest.raises(WeightsError, match="cannot read PyTorch weights safely"):
        Colorizer.from_pretrained(path, device="cpu")


def test_a_mismatched_layer_is_named(tmp_path, fresh_weights):
    tensors = load_file(str(fresh_weights / WEIGHTS_NAME))
    tensors["dec2.0.weight"] = torch.zeros(3, 3, 3, 3)
    save_file(tensors, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError, match=r"layer dec2\.0\.weight has shape \(3, 3, 3, 3\)"):
        Colorizer.from_pretrained(tmp_path / "bad.safetensors", device="cpu")
    del tensors["dec2.0.weight"]
    save_file(tensors, str(tmp_path / "missing.safetensors"))
    with pytest.raises(WeightsError, match=r"missing 1 tensors \(first: dec2\.0\.weight\)"):
        Colorizer.from_pretrained(tmp_path / "missing.safetensors", device="cpu")


def test_garbage_truncated_and_absent_files(tmp_path, fresh_weights):
    data = (fresh_weights / WEIGHTS_NAME).read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.safetensors").write_bytes(b"junk" * 100)
    (tmp_path / "w.onnx").write_bytes(b"x")
    torch.save(JKSPNet().state_dict(), tmp_path / "whole.pt")
    pt = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(pt[: len(pt) // 2])
    for name, reason in [
        ("cut.safetensors", "not a valid safetensors file"),
        ("cut.pt", "cannot read PyTorch weights safely"),
        ("junk.safetensors", "not a valid safetensors file"),
        ("w.onnx", "unknown weights format"),
        ("absent.safetensors", "no such file or folder"),
        (".", "folder holds no model.safetensors"),
    ]:
        with pytest.raises(WeightsError, match=reason):
            Colorizer.from_pretrained(tmp_path / name, device="cpu")


def test_invalid_config_is_named(tmp_path, fresh_weights):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / WEIGHTS_NAME).write_bytes((fresh_weights / WEIGHTS_NAME).read_bytes())
    (folder / CONFIG_NAME).write_text("{not json")
    with pytest.raises(WeightsError, match="invalid config"):
        Colorizer.from_pretrained(folder, device="cpu")
    (folder / CONFIG_NAME).write_text(json.dumps({"architecture": "ResNet"}))
    with pytest.raises(WeightsError, match="not JKSPNet"):
        Colorizer.from_pretrained(folder, device="cpu")


def test_missing_default_weights_say_so(monkeypatch):
    monkeypatch.setattr("jkspnet.nn.backends.torch_network.bundled_weights", lambda: None)
    with pytest.raises(WeightsError, match="no default weights"):
        Colorizer.from_pretrained(None)


def test_an_altered_weights_file_fails_its_checksum(tmp_path, fresh_weights):
    config = json.loads((fresh_weights / CONFIG_NAME).read_text())
    assert len(config["sha256"]) == 64
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    data = bytearray((fresh_weights / WEIGHTS_NAME).read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in a weight: still valid safetensors
    (folder / WEIGHTS_NAME).write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"sha256 does not match config\.json"):
        Colorizer.from_pretrained(folder, device="cpu")


def test_model_config_ignores_unknown_keys():
    config = ModelConfig.from_dict({"architecture": "JKSPNet", "size": 64, "future": 1})
    assert config.size == 64


def test_a_full_disk_while_saving_keeps_the_old_weights(tmp_path, fresh_weights, monkeypatch):
    folder = tmp_path / "w"
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    colorizer.save_pretrained(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as stream:
            stream.write(b"half")
        raise safetensors_disk_full(filename)

    monkeypatch.setattr("jkspnet.nn.weights.save_file", full_disk)
    with pytest.raises(OSError, match="No space left on device") as caught:
        colorizer.save_pretrained(folder)
    assert caught.value.errno == errno.ENOSPC
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporary left
