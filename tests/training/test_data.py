"""Training data: listing, splitting, skipping bad photos, reproducible crops and order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from jkspnet.colour.spaces import rgb_to_lab
from jkspnet.errors import JKSPNetError
from jkspnet.training.data import (
    EpochSampler,
    PhotoCrops,
    lab_batch,
    list_photos,
    photo_source,
    repeat_groups,
    scan_photos,
    split_by_source,
    split_validation,
)


@pytest.fixture
def folder(tmp_path, astronaut, coffee):
    root = tmp_path / "set"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(root / "a.jpg")
    Image.fromarray(coffee).save(root / "sub" / "c.png")
    Image.fromarray(coffee).convert("L").convert("RGB").save(root / "grey.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return root


def test_list_photos_from_folders_and_lists(folder, tmp_path):
    names = [p.name for p in list_photos([folder])]
    assert names == ["a.jpg", "broken.jpg", "grey.jpg", "c.png"]
    listing = tmp_path / "list.txt"
    listing.write_text("# photos\nset/a.jpg\n\nset/sub/c.png\n")
    assert [p.name for p in list_photos([listing])] == ["a.jpg", "c.png"]
    with pytest.raises(JKSPNetError, match="no such folder"):
        list_photos([tmp_path / "absent"])


def test_validation_split_is_reproducible_and_disjoint(tmp_path):
    files = [tmp_path / f"{i}.jpg" for i in range(20)]
    train, val = split_validation(files, 0.2, seed=3)
    assert len(val) == 4 and not set(train) & set(val) and set(train) | set(val) == set(files)
    assert split_validation(files, 0.2, seed=3) == (train, val)
    assert split_validation(files, 0.2, seed=4)[1] != val
    assert split_validation(files, 0.0, seed=3) == (files, [])


def test_scan_skips_and_counts_unreadable_and_greyscale(folder):
    result = scan_photos(list_photos([folder]), cache=True, load_side=64)
    assert [p.name for p in result.photos] == ["a.jpg", "c.png"]
    assert [p.name for p in result.unreadable] == ["broken.jpg"]
    assert [p.name for p in result.greyscale] == ["grey.jpg"]
    assert min(result.images[result.photos[0]].shape[:2]) == 64
    assert "2 photos; skipped 1 unreadable and 1 greyscale" in result.report("training set")


def test_crops_are_reproducible_per_epoch_and_index(folder):
    photos = scan_photos(list_photos([folder])).photos
    crops = PhotoCrops(photos, crop_size=32, seed=1)
    first = crops[(0, 0)]
    assert first.shape == (3, 32, 32) and first.dtype == torch.uint8
    assert torch.equal(first, crops[(0, 0)])
    assert not torch.equal(first, crops[(1, 0)])
    assert not torch.equal(first, PhotoCrops(photos, crop_size=32, seed=2)[(0, 0)])
    val = PhotoCrops(photos, crop_size=32, train=False)
    assert torch.equal(val[0], val[0]) and val[0].shape == (3, 32, 32)


def test_sampler_shards_and_resumes_mid_epoch():
    dataset = list(range(37))
    ranks = [EpochSampler(dataset, 4, rank, 2, seed=0) for rank in (0, 1)]
    for sampler in ranks:
        sampler.start(epoch=2)
    shards = [[i for _, i in sampler] for sampler in ranks]
    assert not set(shards[0]) & set(shards[1])
    assert all(len(s) == ranks[0].batches_per_epoch * 4 for s in shards)

    whole = EpochSampler(dataset, 4, 0, 1, seed=0)
    whole.start(epoch=5)
    full = list(whole)
    whole.start(epoch=5, skip_batches=3)
    assert list(whole) == full[12:] and all(epoch == 5 for epoch, _ in full)
    whole.start(epoch=6)
    assert list(whole) != full


def test_endless_sampler_runs_on_through_the_epochs_it_would_start():
    dataset = list(range(37))
    single = EpochSampler(dataset, 4, 0, 1, seed=0)
    epochs = []
    for epoch in (3, 4, 5):
        single.start(epoch)
        epochs += list(single)
    endless = EpochSampler(dataset, 4, 0, 1, seed=0, endless=True)
    endless.start(3, skip_batches=2)
    stream = iter(endless)
    taken = [next(stream) for _ in range(len(epochs) - 8)]
    assert taken == epochs[8:]  # resumes mid-epoch 3, then epochs 4 and 5 exactly
    with pytest.raises(TypeError):
        len(endless)


def test_lab_batch_matches_the_colour_module(coffee):
    rgb = torch.from_numpy(np.ascontiguousarray(coffee[:32, :48])).permute(2, 0, 1)[None]
    x, ab = lab_batch(rgb)
    lab = rgb_to_lab(rgb.float() / 255)
    torch.testing.assert_close(x, lab[:, :1] - 50)
    torch.testing.assert_close(ab, lab[:, 1:])


def test_split_by_source_holds_out_whole_packages(tmp_path):
    (tmp_path / "listed").mkdir()
    files = [tmp_path / "listed" / name for name in ("x.jpg", "y.jpg", "pkg-b__z.jpg")]
    (tmp_path / "listed" / "manifest.csv").write_text(
        "file,package\nx.jpg,pkg-a\ny.jpg,pkg-b\n", encoding="utf-8"
    )
    other = tmp_path / "cats" / "tom.jpg"  # no manifest, no prefix: the folder is the source
    assert [photo_source(f) for f in [*files, other]] == ["pkg-a", "pkg-b", "pkg-b", "cats"]
    train, val = split_by_source([*files, other], ["pkg-b"])
    assert train == [files[0], other]
    assert val == files[1:]
    with pytest.raises(JKSPNetError, match=r"no photos of validation source.*pkg-c"):
        split_by_source(files, ["pkg-c"])


def _cutout_and_backdrop(root):
    """A cut-out (left half transparent, right half red) and an opaque blue photo."""
    root.mkdir(parents=True, exist_ok=True)
    cutout = Image.new("RGBA", (40, 40), (220, 20, 20, 255))
    cutout.paste((0, 0, 0, 0), (0, 0, 20, 40))
    cutout.save(root / "stamp.png")
    Image.new("RGB", (60, 40), (20, 40, 220)).save(root / "sky.png")
    return [root / "sky.png", root / "stamp.png"]


@pytest.mark.parametrize("cached", [True, False])
def test_cutouts_are_pasted_onto_other_photos_or_white(tmp_path, cached):
    files = _cutout_and_backdrop(tmp_path / "cut")
    scanned = scan_photos(files, cache=cached, keep_alpha=True)
    assert scanned.photos == files
    if cached:
        assert [scanned.images[f].shape[2] for f in files] == [3, 4]
    common = {"crop_size": 16, "scale": (1.0, 1.0), "images": scanned.images}
    composite = PhotoCrops(files, train=True, cutouts="composite", **common)
    assert composite.backgrounds() == [0]
    white = PhotoCrops(files, train=True, cutouts="white", **common)
    for epoch in range(4):  # whichever way the crop is flipped, one half is the backdrop
        pasted = composite[(epoch, 1)].permute(1, 2, 0).numpy().astype(int)
        flat = white[(epoch, 1)].permute(1, 2, 0).numpy().astype(int)
        blue = (pasted[..., 2] > 150) & (pasted[..., 0] < 80)
        red = (pasted[..., 0] > 150) & (pasted[..., 2] < 80)
        whites = flat.min(axis=2) > 230
        assert 0.35 < blue.mean() < 0.65 and 0.35 < red.mean() < 0.65
        # The backdrop shows where white would (but for the blended column at the edge).
        assert (blue == whites).mean() > 0.9
    assert white[(0, 0)].float().mean() == composite[(0, 0)].float().mean()  # opaque: unchanged
    # Validation crops and the class-weight pass flatten cut-outs onto white.
    val = PhotoCrops(files, train=False, crop_size=16, images=scanned.images)
    assert (val[1].permute(1, 2, 0).numpy().min(axis=2) > 230).mean() > 0.35
    with pytest.raises(JKSPNetError, match="cutouts must be one of"):
        PhotoCrops(files, cutouts="grey")


def test_without_keep_alpha_a_cutout_is_flattened(tmp_path):
    files = _cutout_and_backdrop(tmp_path / "cut")
    scanned = scan_photos(files, cache=True)
    assert [scanned.images[f].shape[2] for f in files] == [3, 3]
    assert scanned.images[files[1]][:, :20].min() == 255  # transparent half: white


def test_repeat_groups_lists_a_group_n_times_by_manifest_or_source(tmp_path):
    root = tmp_path / "set"
    root.mkdir()
    files = [root / f"{name}.jpg" for name in ("room", "face", "cup", "hall")]
    (root / "manifest.csv").write_text(
        "file,package,group\nroom.jpg,p,interiors\nface.jpg,p,people\ncup.jpg,q,objects\n"
        "hall.jpg,q,interiors\n"
    )
    lines: list[str] = []
    repeated = repeat_groups(files, {"interiors": 3, "people": 2}, lines.append)
    assert [p.stem for p in repeated] == ["room"] * 3 + ["face"] * 2 + ["cup"] + ["hall"] * 3
    assert lines == ["repeated by group (interiors x3, people x2): 4 photos drawn as 9"]
    assert repeat_groups(files, {}) == files
    with pytest.raises(JKSPNetError, match=r"group\(s\) faces to repeat .*interiors, objects"):
        repeat_groups(files, {"faces": 2})
    # Without a manifest a photo's group is its source: here the part of its name before "__".
    other = [tmp_path / "kit-a__x.jpg", tmp_path / "kit-b__y.jpg"]
    assert [p.name for p in repeat_groups(other, {"kit-b": 2})] == [
        "kit-a__x.jpg",
        "kit-b__y.jpg",
        "kit-b__y.jpg",
    ]
