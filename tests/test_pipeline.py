"""The colour pipeline keeps size, mode, alpha and the photo's own L; batches are independent.

These tests use untrained weights: they check the plumbing, not the colours.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.color
import torch
import torch.nn.functional as F
from PIL import Image

from jkspnet import Colorizer, JKSPNet, PhotoError
from jkspnet import pipeline as pipeline_module
from jkspnet.color import lab_to_rgb, rgb_to_l
from jkspnet.errors import JKSPNetError


def _lightness(image: Image.Image) -> np.ndarray:
    return skimage.color.rgb2lab(np.asarray(image.convert("RGB")))[..., 0]


def test_real_photo_and_its_grey_version_keep_size_mode_and_tones(colorizer, astronaut):
    colour = Image.fromarray(astronaut)
    grey = colour.convert("L")
    for source in (colour, grey):
        result = colorizer.colorize(source)
        assert result.size == source.size and result.mode == "RGB"
        # The output is the input's own L joined to predicted ab: tones survive (up to 8-bit
        # rounding and gamut clipping).
        difference = np.abs(_lightness(result) - _lightness(source))
        assert np.median(difference) < 0.5 and difference.mean() < 1.5


def test_paths_and_images_give_the_same_result(colorizer, photo_dir):
    path = photo_dir / "astronaut_grey.png"
    from_path = colorizer.colorize(path)
    from_image = colorizer.colorize(Image.open(path))
    assert np.array_equal(np.asarray(from_path), np.asarray(from_image))


def test_alpha_survives(colorizer, astronaut):
    rgba = Image.fromarray(astronaut)
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha)
    result = colorizer.colorize(rgba)
    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result)[..., 3], np.asarray(alpha))


def test_16bit_grey(colorizer):
    ramp = (np.linspace(0, 65535, 40 * 70).reshape(40, 70)).astype(np.uint16)
    result = colorizer.colorize(Image.fromarray(ramp))
    assert result.size == (70, 40) and result.mode == "RGB"


def test_tiny_and_extreme_sizes(colorizer):
    for size in [(1, 1), (1, 300), (300, 2), (1, 10_000)]:
        result = colorizer.colorize(Image.new("L", size, 120))
        assert result.size == size


def test_batch_equals_one_by_one(colorizer, astronaut, coffee):
    photos = [Image.fromarray(astronaut), Image.fromarray(coffee).convert("L")]
    batched = colorizer.colorize_batch(photos)
    for photo, result in zip(photos, batched, strict=True):
        single = np.asarray(colorizer.colorize(photo)).astype(int)
        assert np.abs(np.asarray(result).astype(int) - single).max() <= 1


def test_banded_finish_matches_full_frame_reference(colorizer, coffee, monkeypatch):
    monkeypatch.setattr(pipeline_module, "_BAND_PIXELS", 5000)  # many bands, one partial
    monkeypatch.setattr(colorizer, "upsample", "bilinear")  # guided: tests/test_upsample.py
    prepared = colorizer.prepare(Image.fromarray(coffee))
    ab = torch.randn(2, 128, 128) * 30
    banded = np.asarray(colorizer.finish(prepared, ab)).astype(int)

    height, width = prepared.lightness.shape
    full_ab = F.interpolate(ab[None], size=(height, width), mode="bilinear")[0]
    lab = torch.cat([prepared.lightness[None], full_ab])
    reference = (lab_to_rgb(lab) * 255).round().byte().permute(1, 2, 0).numpy().astype(int)
    assert np.abs(banded - reference).max() <= 1


def test_network_input_is_the_antialiased_small_l(colorizer, coffee):
    prepared = colorizer.prepare(Image.fromarray(coffee))
    assert prepared.network_input.shape == (1, 128, 128)
    full_l = rgb_to_l(torch.from_numpy(coffee).permute(2, 0, 1).float() / 255)
    torch.testing.assert_close(prepared.lightness, full_l[0], atol=1e-3, rtol=0)
    expected = F.interpolate(full_l[None], size=(128, 128), mode="bilinear", antialias=True)
    torch.testing.assert_close(prepared.network_input, expected[0] - 50, atol=1e-3, rtol=0)


def test_other_network_sizes_and_temperatures(fresh_weights, astronaut):
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    colorizer.config.size = 64
    photo = Image.fromarray(astronaut)
    assert colorizer.prepare(photo).network_input.shape == (1, 64, 64)
    assert colorizer.colorize(photo, temperature=0.38).size == photo.size
    with pytest.raises(JKSPNetError, match="temperature"):
        colorizer.colorize(photo, temperature=0)


def test_bad_photo_is_a_photo_error(colorizer, tmp_path):
    path = tmp_path / "x.png"
    path.write_text("not a photo")
    with pytest.raises(PhotoError, match=r"x\.png"):
        colorizer.colorize(path)


def test_size_must_be_a_multiple_of_8():
    from jkspnet.weights import ModelConfig

    with pytest.raises(JKSPNetError, match="multiple of 8"):
        Colorizer(JKSPNet(), ModelConfig(size=100), device="cpu")


def test_unavailable_device_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(JKSPNetError, match="no CUDA GPU"):
        Colorizer(JKSPNet(), device="cuda")
    with pytest.raises(JKSPNetError, match="unknown device"):
        Colorizer(JKSPNet(), device="tpu9")


def test_precision_auto_follows_the_hardware_and_bf16_stays_close_to_fp32(astronaut):
    cpu = torch.device("cpu")
    native = pipeline_module.cpu_has_native_bf16()
    assert pipeline_module.resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert pipeline_module.resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(JKSPNetError, match="unknown precision"):
        pipeline_module.resolve_precision("fp8", cpu)

    # Trained (bundled) weights, so that the distributions are peaked and rounding could matter.
    exact = Colorizer.from_pretrained(device="cpu", precision="fp32")
    fast = Colorizer.from_pretrained(device="cpu", precision="bf16")
    assert (exact.precision, fast.precision) == ("fp32", "bf16")
    x = exact.prepare(Image.fromarray(astronaut)).network_input[None]
    difference = (exact.predict_ab(x) - fast.predict_ab(x)).abs()
    assert difference.mean() < 1.0 and difference.max() < 15.0  # LAB units; ab spans +-100
    several = fast.predict_ab_at(x, [1.0, 0.5])
    torch.testing.assert_close(several[1], fast.predict_ab(x, 0.5))
    assert several[0].abs().mean() < several[1].abs().mean()  # lower T: more vivid
