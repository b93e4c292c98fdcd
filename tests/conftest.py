"""Shared fixtures: real photos (scikit-image's bundled samples) and fresh, untrained weights.

Fresh weights test the plumbing only (sizes, modes, files, errors); no test judges their colours.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from safetensors import SafetensorError

from jkspnet import Colorizer, JKSPNet


@pytest.fixture(scope="session")
def fresh_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder written by save_pretrained from a freshly initialised (untrained) model."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    Colorizer.from_model(JKSPNet(), device="cpu").save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def colorizer(fresh_weights: Path) -> Colorizer:
    return Colorizer.from_pretrained(fresh_weights, device="cpu")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real colour photo (NASA, public domain), cropped to an odd, non-square size."""
    return skimage.data.astronaut()[17:350, 5:256]


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    """A real colour photo (scikit-image sample, CC0)."""
    return skimage.data.coffee()


@pytest.fixture
def photo_dir(tmp_path: Path, astronaut: np.ndarray, coffee: np.ndarray) -> Path:
    """A folder with a colour JPEG, a greyscale PNG and a colour WebP."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "astronaut.jpg", quality=90)
    Image.fromarray(astronaut).convert("L").save(folder / "astronaut_grey.png")
    Image.fromarray(coffee).save(folder / "coffee.webp")
    return folder


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def safetensors_disk_full(path: object) -> SafetensorError:
    """What safetensors raises (not an OSError) when the disk fills while it writes ``path``."""
    return SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28) at path "
        f'"{path}"'
    )


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Training photos: ten small real ones (scikit-image samples, halves of each), a greyscale
    one and a corrupt file."""
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
