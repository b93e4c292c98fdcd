"""Training data: photo folders in, random crops of 8-bit RGB out.

Workers only decode, crop and flip (cheap, uint8); the LAB conversion runs batched on the
training device (:func:`lab_batch`). Every random choice derives from (seed, epoch, index), so a
run is reproducible whatever the number of workers, and a resumed run sees the same data.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..colour.spaces import GREY_CHROMA, is_grey, normalize_l, rgb_to_lab
from ..errors import JKSPNetError, check_choice
from ..media.photos import PHOTO_SUFFIXES, walk_photos
from ..media.sources import photo_group, photo_source
from .config import CUTOUT_MODES

_SCAN_SIDE = 128  # photos are checked for colour at this short side


def list_photos(sources: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Photo files from folders (searched recursively) and text files listing one path a line."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files.extend(walk_photos(path, recursive=True))
        elif path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES:
            files.append(path)
        elif path.is_file():  # a list of photos, relative to the list's folder
            for line in path.read_text("utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line)
                    files.append(entry if entry.is_absolute() else path.parent / entry)
        else:
            raise JKSPNetError(f"{path}: no such folder or file list")
    return sorted(set(files))


def split_validation(
    files: Sequence[Path], fraction: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """Hold out a reproducible ``fraction`` of ``files`` (at least one when fraction > 0)."""
    if not 0 <= fraction < 1:
        raise JKSPNetError(f"validation fraction must be in [0, 1), got {fraction}")
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    count = 0 if fraction == 0 else max(1, round(len(files) * fraction))
    held = {files[i] for i in order[:count]}
    return [f for f in files if f not in held], [f for f in files if f in held]


def split_by_source(files: Sequence[Path], sources: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """Hold out every photo whose source (see :func:`photo_source`) is one of ``sources``."""
    held = set(sources)
    found = {photo_source(f) for f in files}
    missing = sorted(held - found)
    if missing:
        raise JKSPNetError(
            f"no photos of validation source(s) {', '.join(missing)} "
            f"(sources found: {', '.join(sorted(found)) or 'none'})"
        )
    return (
        [f for f in files if photo_source(f) not in held],
        [f for f in files if photo_source(f) in held],
    )


def repeat_groups(
    photos: Sequence[Path], repeats: dict[str, int], log: Callable[[str], None] | None = None
) -> list[Path]:
    """``photos`` with each photo of group ``g`` listed ``repeats[g]`` times (others once).

    Why: a photo set is rarely balanced (set v3 trains on 522 objects and 32 interiors), and a
    photo listed twice is drawn twice as often, gets twice the crops and counts twice in the
    class-rebalancing histogram, as a group weight should. A photo's group is the ``group`` of
    the ``manifest.csv`` beside it, else its source (:func:`jkspnet.media.sources.photo_group`),
    so any folder can be balanced by package or folder name. A named group with no photo is an
    error: a misspelt name would otherwise change nothing, silently. ``log`` gets one line.
    """
    if not repeats:
        return list(photos)
    groups = [photo_group(path) for path in photos]
    missing = sorted(set(repeats) - set(groups))
    if missing:
        raise JKSPNetError(
            f"no training photos of group(s) {', '.join(missing)} to repeat "
            f"(groups found: {', '.join(sorted(set(groups))) or 'none'})"
        )
    repeated = [
        path
        for path, group in zip(photos, groups, strict=True)
        for _ in range(repeats.get(group, 1))
    ]
    if log is not None:
        times = ", ".join(f"{group} x{n}" for group, n in repeats.items())
        log(f"repeated by group ({times}): {len(photos)} photos drawn as {len(repeated)}")
    return repeated


def _flatten(image: Image.Image) -> Image.Image:
    """An RGBA image flattened onto white, as RGB."""
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _open_rgb(path: Path, short_side: int | None = None, keep_alpha: bool = False) -> Image.Image:
    """The photo as RGB (transparency flattened onto white) or, with ``keep_alpha``, as RGBA
    where it has transparency, so that a cut-out can be pasted onto another photo."""
    with Image.open(path) as image:
        if short_side:
            image.draft("RGB", (short_side, short_side))  # JPEG: decode at reduced size, fast
        image = ImageOps.exif_transpose(image)
        if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
            rgba = image.convert("RGBA")
            opaque = rgba.getchannel("A").getextrema()[0] == 255
            image = rgba if keep_alpha and not opaque else _flatten(rgba)
        image = image.convert("RGBA" if image.mode == "RGBA" else "RGB")
    if short_side and min(image.size) > short_side:
        scale = short_side / min(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


def _is_grey_photo(image: Image.Image) -> bool:
    small = _flatten(image) if image.mode == "RGBA" else image.copy()
    small.thumbnail((_SCAN_SIDE * 4, _SCAN_SIDE * 4))
    return is_grey(np.array(small), GREY_CHROMA)


@dataclass
class ScanResult:
    """Usable photos, and what was left out: unreadable files and greyscale photos."""

    photos: list[Path]
    unreadable: list[Path]
    greyscale: list[Path]
    images: dict[Path, np.ndarray] | None = None

    def report(self, name: str) -> str:
        return (
            f"{name}: {len(self.photos)} photos; skipped {len(self.unreadable)} unreadable and "
            f"{len(self.greyscale)} greyscale (max |ab| <= {GREY_CHROMA:g})"
        )


def scan_photos(
    files: Sequence[Path],
    cache: bool = False,
    load_side: int | None = None,
    threads: int = 4,
    keep_alpha: bool = False,
) -> ScanResult:
    """Open every photo once: drop unreadable and greyscale ones; optionally keep them decoded.

    With ``cache`` the photos are kept in memory as uint8 arrays (at ``load_side`` short side
    where given), so training on a small set never decodes a file twice; with ``keep_alpha`` a
    cut-out's array keeps its alpha (H, W, 4).
    """

    def check(path: Path) -> tuple[Path, str, np.ndarray | None]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = _open_rgb(path, load_side, keep_alpha)
        except Exception:  # any decoder failure means a photo we cannot train on
            return path, "unreadable", None
        if _is_grey_photo(image):
            return path, "greyscale", None
        return path, "ok", np.asarray(image) if cache else None

    photos, unreadable, greyscale = [], [], []
    images: dict[Path, np.ndarray] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for path, verdict, array in pool.map(check, files):
            {"ok": photos, "unreadable": unreadable, "greyscale": greyscale}[verdict].append(path)
            if array is not None:
                images[path] = array
    return ScanResult(photos, unreadable, greyscale, images if cache else None)


def _random_resized_box(
    width: int, height: int, scale: tuple[float, float], generator: torch.Generator
) -> tuple[int, int, int, int]:
    """A random box covering ``scale`` of the area with aspect ratio in [3/4, 4/3]."""
    area = width * height
    uniform = lambda: torch.rand((), generator=generator).item()  # noqa: E731
    for _ in range(10):
        target = area * (scale[0] + (scale[1] - scale[0]) * uniform())
        ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * uniform())
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left = int(uniform() * (width - w + 1))
            top = int(uniform() * (height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)  # fallback: the central square
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


class PhotoCrops(Dataset):
    """Crops of photos as uint8 RGB tensors (3, crop, crop).

    Training: a random resized crop (``scale`` of the area) and a random horizontal flip, drawn
    from a generator seeded by (seed, epoch, index); the sampler passes (epoch, index). A cut-out
    (a photo kept with its alpha, see :func:`scan_photos`) is pasted onto a random crop of one of
    the opaque photos with ``cutouts="composite"``, so that the network sees the object on a
    real background rather than on white; with ``"white"`` (or no opaque photo) it is flattened
    onto white. Validation (``train=False``): the central square, resized, on white; always the
    same.
    """

    def __init__(
        self,
        photos: Sequence[Path],
        crop_size: int = 128,
        train: bool = True,
        scale: tuple[float, float] = (0.35, 1.0),
        seed: int = 0,
        images: dict[Path, np.ndarray] | None = None,
        load_side: int | None = None,
        cutouts: str = "composite",
    ) -> None:
        check_choice("cutouts", cutouts, CUTOUT_MODES)
        self.photos = list(photos)
        self.crop_size = crop_size
        self.train = train
        self.scale = scale
        self.seed = seed
        self.images = images
        self.load_side = load_side
        self.cutouts = cutouts
        self._backgrounds: list[int] | None = None

    def __len__(self) -> int:
        return len(self.photos)

    def _image(self, index: int) -> Image.Image:
        path = self.photos[index]
        if self.images is not None and path in self.images:
            return Image.fromarray(self.images[path])
        return _open_rgb(path, self.load_side, keep_alpha=self.train)

    def backgrounds(self) -> list[int]:
        """Indices of the opaque photos, onto which cut-outs are pasted."""
        if self._backgrounds is None:
            if self.images is not None:
                opaque = [self.images.get(p) for p in self.photos]
                self._backgrounds = [
                    i for i, a in enumerate(opaque) if a is None or a.ndim == 2 or a.shape[2] == 3
                ]
            else:
                self._backgrounds = [
                    i
                    for i, p in enumerate(self.photos)
                    if _open_rgb(p, _SCAN_SIDE, keep_alpha=True).mode == "RGB"
                ]
        return self._backgrounds

    def _random_crop(self, image: Image.Image, generator: torch.Generator) -> Image.Image:
        size = (self.crop_size, self.crop_size)
        box = _random_resized_box(image.width, image.height, self.scale, generator)
        crop = image.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
        if torch.rand((), generator=generator).item() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return crop

    def _backdrop(self, generator: torch.Generator) -> Image.Image | None:
        """A random crop of a random opaque photo, or None when there is none (or ``white``)."""
        choices = self.backgrounds() if self.cutouts == "composite" else []
        if not choices:
            return None
        pick = choices[int(torch.randint(len(choices), (), generator=generator))]
        return self._random_crop(self._image(pick), generator)

    def __getitem__(self, key: int | tuple[int, int]) -> torch.Tensor:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        image = self._image(index)
        size = (self.crop_size, self.crop_size)
        if self.train:
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + epoch) * 10_000_019 + index
            )
            crop = self._random_crop(image, generator)
            if crop.mode == "RGBA":
                backdrop = self._backdrop(generator)
                if backdrop is None:
                    crop = _flatten(crop)
                else:
                    crop = Image.alpha_composite(backdrop.convert("RGBA"), crop).convert("RGB")
        else:
            if image.mode == "RGBA":
                image = _flatten(image)
            crop = ImageOps.fit(image, size, Image.Resampling.BILINEAR)
        return torch.from_numpy(np.array(crop)).permute(2, 0, 1).contiguous()


class EpochSampler(Sampler[tuple[int, int]]):
    """A :class:`DistributedSampler` that yields (epoch, index) and can start mid-epoch.

    One process is the case of one replica. ``skip`` batches' worth of samples are dropped from
    the start of the current epoch, so a resumed run continues exactly where it stopped. With
    ``endless`` it runs on into the following epochs, so one loader iterator serves a whole run:
    on a small photo set an epoch is only a few batches, and restarting the workers' pipeline at
    every epoch would leave a GPU waiting.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        rank: int,
        world: int,
        seed: int,
        endless: bool = False,
    ) -> None:
        self.inner = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.batch_size = batch_size
        self.endless = endless
        self.epoch = 0
        self.skip = 0

    @property
    def batches_per_epoch(self) -> int:
        return len(self.inner) // self.batch_size

    def start(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip_batches * self.batch_size

    def _epoch(self, epoch: int) -> list[int]:
        self.inner.set_epoch(epoch)
        return list(self.inner)[: self.batches_per_epoch * self.batch_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, skip = self.epoch, self.skip
        while True:
            yield from ((epoch, i) for i in self._epoch(epoch)[skip:])
            if not self.endless:
                return
            epoch, skip = epoch + 1, 0

    def __len__(self) -> int:
        if self.endless:
            raise TypeError("an endless EpochSampler has no length")
        return self.batches_per_epoch * self.batch_size - self.skip


def lab_batch(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(network input L - 50 (N, 1, H, W), true ab (N, 2, H, W)) from uint8 RGB (N, 3, H, W)."""
    lab = rgb_to_lab(rgb.float() / 255.0)
    return normalize_l(lab[:, :1]), lab[:, 1:]


def grey_to_rgb(network_input: torch.Tensor) -> torch.Tensor:
    """The grey (ab = 0) view of network inputs, as RGB in [0, 1], for sample grids."""
    from ..colour.spaces import denormalize_l, lab_to_rgb

    lightness = denormalize_l(network_input)
    return lab_to_rgb(torch.cat([lightness, torch.zeros_like(lightness).repeat(1, 2, 1, 1)], 1))
