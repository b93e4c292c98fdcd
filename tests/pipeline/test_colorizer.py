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
from jkspnet.colour import pixels
from jkspnet.colour.spaces import lab_to_rgb, rgb_to_l
from jkspnet.errors import JKSPNetError
from jkspnet.nn.backends import torch_network


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
    monkeypatch.setattr(pixels, "BAND_PIXELS", 5000)  # many bands, one partial
    monkeypatch.setattr(colorizer, "upsample", "bilinear")  # guided: tests/colour/test_upsample.py
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
    from jkspnet.nn.weights import ModelConfig

    with pytest.raises(JKSPNetError, match="multiple of 8"):
        Colorizer.from_model(JKSPNet(), ModelConfig(size=100), device="cpu")


def test_a_choice_outside_its_values_reads_the_same_everywhere():
    """The spec, the backends' loader, training's config and the exporter all refuse a value
    outside an option's choices in one wording (:func:`jkspnet.errors.check_choice`)."""
    from jkspnet.errors import check_choice
    from jkspnet.nn.backends import load_network
    from jkspnet.nn.export import export
    from jkspnet.pipeline.spec import ColorizerSpec
    from jkspnet.training.config import TrainConfig

    assert check_choice("shape", "aspect", ("square", "aspect")) == "aspect"
    with pytest.raises(JKSPNetError, match=r"^backend must be one of torch, onnxruntime, got 'x'$"):
        ColorizerSpec(backend="x")
    with pytest.raises(JKSPNetError, match=r"^backend must be one of torch, onnxruntime, got 'x'$"):
        load_network("x")
    with pytest.raises(JKSPNetError, match=r"^precision must be one of auto, fp32, bf16, got 'x'$"):
        ColorizerSpec(precision="x")
    with pytest.raises(JKSPNetError, match=r"^precision must be one of auto, fp32, bf16, got 'x'$"):
        load_network("torch", precision="x")
    with pytest.raises(JKSPNetError, match=r"^amp must be one of auto, bf16, off, got 'x'$"):
        TrainConfig(data=["photos"], out="run", max_steps=1, amp="x").check()
    with pytest.raises(JKSPNetError, match=r"^format must be one of onnx, torchscript, got 'x'$"):
        export("x", "out")


def test_unavailable_device_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(JKSPNetError, match="no CUDA GPU"):
        Colorizer.from_model(JKSPNet(), device="cuda")
    with pytest.raises(JKSPNetError, match="unknown device"):
        Colorizer.from_model(JKSPNet(), device="tpu9")


def test_precision_auto_follows_the_hardware_and_bf16_stays_close_to_fp32(astronaut):
    cpu = torch.device("cpu")
    native = torch_network.cpu_has_native_bf16()
    assert torch_network.resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert torch_network.resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(JKSPNetError, match="precision must be one of auto, fp32, bf16, got 'fp8'"):
        torch_network.resolve_precision("fp8", cpu)

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


# ------------------------------------------------------------------ guided colour (issue 15)


def test_no_hints_is_the_automatic_result(colorizer, astronaut):
    from jkspnet import Hint

    photo = Image.fromarray(astronaut).convert("L")
    automatic = np.asarray(colorizer.colorize(photo))
    assert np.array_equal(np.asarray(colorizer.colorize(photo, hints=[])), automatic)
    hinted = colorizer.colorize(photo, hints=[Hint(10, 10, (255, 0, 0))])
    assert hinted.size == photo.size and not np.array_equal(np.asarray(hinted), automatic)


def test_hints_at_the_truths_colours_raise_psnr(colorizer, astronaut):
    from jkspnet import Hint
    from jkspnet.engines.metrics import psnr

    grey = Image.fromarray(astronaut).convert("L")
    rng = np.random.default_rng(0)
    points = zip(rng.integers(0, grey.width, 30), rng.integers(0, grey.height, 30), strict=True)
    hints = [Hint(int(x), int(y), tuple(int(v) for v in astronaut[y, x])) for x, y in points]
    automatic = psnr(np.asarray(colorizer.colorize(grey)), astronaut)
    guided = psnr(np.asarray(colorizer.colorize(grey, hints=hints)), astronaut)
    assert guided > automatic + 1.0


def test_the_reference_shifts_the_colours_toward_its_palette(colorizer, astronaut):
    from jkspnet.engines.metrics import ab_of

    grey = Image.fromarray(astronaut).convert("L")
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 200
    red[..., 1:] = 40
    target = ab_of(red).mean(dim=(1, 2))
    before = ab_of(np.asarray(colorizer.colorize(grey))).mean(dim=(1, 2))
    after = ab_of(
        np.asarray(colorizer.colorize(grey, reference=Image.fromarray(red), reference_strength=2))
    ).mean(dim=(1, 2))
    assert float((after - target).norm()) < 0.7 * float((before - target).norm())
    none = colorizer.colorize(grey, reference=Image.fromarray(red), reference_strength=0)
    assert np.abs(np.asarray(none).astype(int) - np.asarray(colorizer.colorize(grey))).max() <= 1
    with pytest.raises(JKSPNetError, match="no colour"):
        colorizer.colorize(grey, reference=grey)
    with pytest.raises(JKSPNetError, match="reference strength"):
        colorizer.colorize(grey, reference=Image.fromarray(red), reference_strength=-1)


def test_the_uncertainty_map_is_high_where_the_distribution_is_flat(colorizer, monkeypatch):
    def logits(network_input):  # left half flat, right half sure of one bin
        size = network_input.shape[-1]
        out = torch.zeros(network_input.shape[0], 313, size, size)
        out[:, 40, :, size // 2 :] = 50.0
        return out

    monkeypatch.setattr(colorizer, "predict_logits", logits)
    photo = Image.new("L", (90, 60), 128)
    unsure = colorizer.uncertainty(photo)
    assert unsure.mode == "L" and unsure.size == (90, 60)
    values = np.asarray(unsure)
    assert values[:, :30].min() >= 250 and values[:, 60:].max() <= 5


def test_hints_outside_the_photo_are_an_error(colorizer):
    from jkspnet import Hint, HintError

    with pytest.raises(HintError, match="outside the photo"):
        colorizer.colorize(Image.new("L", (20, 10)), hints=[Hint(20, 5, (1, 2, 3))])


def test_the_guided_path_decodes_as_the_automatic_one(fresh_weights, astronaut):
    """Hints correct the automatic colour; they do not start from another decoding. With
    confidence-aware decoding, saturation and neutrals on, the guided path's base colour (no
    targets) is the automatic prediction's. Training moves the ab head (the bias-free 1x1
    convolution) away from the bin centres it starts at, 3 ab units on average for 0.4: moved
    here too, so a base decoded with the centres fails."""
    colorizer = Colorizer.from_pretrained(
        fresh_weights,
        device="cpu",
        precision="fp32",
        confidence=1.0,
        saturation=1.3,
        neutral=2.0,
        neutral_shape="garrote",
    )
    with torch.no_grad():
        colorizer.network.model.out.weight.mul_(0.9).add_(3.0)
    colorizer.network.inference_net(rebuild=True)
    prepared = colorizer.prepare(Image.fromarray(astronaut).convert("L"))
    automatic = colorizer.predict_ab_list([prepared.network_input])[0]
    logits = colorizer.predict_logits(prepared.network_input[None])[0]
    base, correction = colorizer.guide(prepared, logits)
    assert correction is None
    assert float((base - automatic).abs().max()) < 0.05


def test_from_pretrained_takes_the_specs_options_and_refuses_others(fresh_weights):
    """The inference options are ColorizerSpec's, written once (issue 24): from_pretrained and
    from_model pass them through, checked there, so every spec option works and a misspelt one
    is an error, not silently dropped."""
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu", size=32, neutral=3)
    assert (colorizer.config.size, colorizer.neutral, colorizer.spec.device) == (32, 3.0, "cpu")
    with pytest.raises(TypeError, match="neutrl"):
        Colorizer.from_pretrained(fresh_weights, device="cpu", neutrl=3)
    with pytest.raises(TypeError, match="no weights, no backend"):
        Colorizer.from_model(JKSPNet(), backend="onnxruntime")
    with pytest.raises(JKSPNetError, match="shape must be one of"):
        Colorizer.from_pretrained(fresh_weights, device="cpu", shape="round")
    with pytest.raises(JKSPNetError, match="neutral shape must be one of soft, garrote"):
        Colorizer.from_pretrained(fresh_weights, device="cpu", neutral_shape="hard")
