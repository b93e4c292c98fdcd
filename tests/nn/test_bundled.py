"""The default weights ship inside the package, intact, and give colour out of the box."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jkspnet import Colorizer, WeightsError
from jkspnet.engines.metrics import colorfulness
from jkspnet.nn.weights import CONFIG_NAME, WEIGHTS_NAME, bundled_weights

EXAMPLE = Path(__file__).parents[2] / "examples" / "lighthouse.jpg"


def test_bundled_weights_ship_in_half_precision_with_their_checksum():
    folder = bundled_weights()
    assert folder is not None, "the package must carry its default weights"
    config = json.loads((folder / CONFIG_NAME).read_text())
    assert config["dtype"] == "float16" and len(config["sha256"]) == 64
    assert (folder / WEIGHTS_NAME).stat().st_size < 40_000_000
    assert config["size"] % 8 == 0 and 0 < config["temperature"] <= 1


def test_the_example_photo_comes_out_in_colour():
    colorizer = Colorizer.from_pretrained(device="cpu")  # the bundled weights, sha256-checked
    grey = Image.open(EXAMPLE)
    assert grey.mode == "L"
    result = colorizer.colorize(grey)
    assert result.size == grey.size and result.mode == "RGB"
    # Trained weights colour a grey photo: its colourfulness rises well above grey's 0.
    assert colorfulness(np.asarray(result)) > 10


def test_altered_bundled_weights_are_refused(tmp_path, monkeypatch):
    folder = bundled_weights()
    recorded = json.loads((folder / CONFIG_NAME).read_text())["sha256"]
    assert hashlib.sha256((folder / WEIGHTS_NAME).read_bytes()).hexdigest() == recorded
    copy = tmp_path / "weights"
    shutil.copytree(folder, copy)
    data = bytearray((copy / WEIGHTS_NAME).read_bytes())
    data[-1] ^= 0x01  # one bit of one weight: still a valid safetensors file
    (copy / WEIGHTS_NAME).write_bytes(bytes(data))
    monkeypatch.setattr("jkspnet.nn.backends.torch_network.bundled_weights", lambda: copy)
    with pytest.raises(WeightsError, match=r"sha256 does not match config\.json"):
        Colorizer.from_pretrained(device="cpu")
