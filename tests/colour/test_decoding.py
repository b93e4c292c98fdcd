"""Decoding choices: the aspect-shaped input, confidence-aware chroma, saturation, neutrals."""

from __future__ import annotations

import json

import pytest
import torch

from jkspnet.colour.decoding import aspect_shape, confident_ab, neutral_ab, saturated_ab


def test_aspect_shape_keeps_the_short_side_and_rounds_the_long_one_to_8():
    assert aspect_shape(256, 384, 64) == (64, 96)
    assert aspect_shape(384, 256, 64) == (96, 64)
    assert aspect_shape(100, 100, 64) == (64, 64)
    assert aspect_shape(100, 133, 64) == (64, 88)  # 85.1 -> 88
    assert aspect_shape(100, 10_000, 64) == (64, 256)  # capped at 4x
    with pytest.raises(ValueError):
        aspect_shape(0, 10, 64)


def test_confident_ab_shrinks_flat_pixels_and_keeps_confident_ones():
    ab = torch.full((2, 1, 10), 30.0)
    flatness = torch.linspace(0.1, 0.9, 10)[None]  # left confident, right flat
    out = confident_ab(ab, flatness, gamma=1.0)
    assert torch.equal(out[:, :, 0], ab[:, :, 0])  # at least as confident as the 90 % quantile
    assert (out[:, :, -1].abs() < ab[:, :, -1].abs() / 4).all()
    assert (out[0, 0, 1:] <= out[0, 0, :-1] + 1e-6).all()  # monotone in confidence
    assert torch.equal(confident_ab(ab, flatness, gamma=0), ab)
    batched = confident_ab(ab[None].repeat(3, 1, 1, 1), flatness[None].repeat(3, 1, 1), 1.0)
    assert torch.allclose(batched[1], out)
    with pytest.raises(ValueError):
        confident_ab(ab, flatness, gamma=-1)


def test_a_colorizer_with_confidence_keeps_confident_colour_and_greys_the_rest(astronaut):
    from PIL import Image

    from jkspnet.nn.model import JKSPNet
    from jkspnet.pipeline.colorizer import Colorizer

    torch.manual_seed(0)
    colorizer = Colorizer.from_model(JKSPNet(), device="cpu", precision="fp32")
    x = colorizer.prepare(Image.fromarray(astronaut), 32).network_input[None]
    plain = colorizer.predict_ab(x, 1.0)
    colorizer.confidence = 2.0
    confident = colorizer.predict_ab(x, 1.0)
    ratio = confident.norm(dim=1) / plain.norm(dim=1).clamp(min=1e-6)
    assert float(ratio.max()) <= 1 + 1e-5
    assert float(ratio.min()) < 0.99  # some pixels are less sure than the photo's 90 % quantile
    assert float((ratio > 0.999).float().mean()) >= 0.09  # the most confident tenth keeps its ab


def test_neutral_ab_takes_a_fixed_chroma_off_and_keeps_the_hue():
    ab = torch.tensor([[3.0, 30.0, 0.0], [4.0, 40.0, -2.0]]).view(2, 1, 3)  # chroma 5, 50, 2
    out = neutral_ab(ab, 6.0)
    assert torch.equal(out[:, 0, 0], torch.zeros(2))  # a pale wash becomes grey
    assert torch.equal(out[:, 0, 2], torch.zeros(2))
    torch.testing.assert_close(out[:, 0, 1], torch.tensor([26.4, 35.2]))  # 44 along (3, 4)/5
    batched = neutral_ab(ab[None].repeat(2, 1, 1, 1), 6.0)
    torch.testing.assert_close(batched[1], out)
    assert neutral_ab(ab, 0.0) is ab
    with pytest.raises(ValueError, match=">= 0"):
        neutral_ab(ab, -1.0)


def test_the_garrote_greys_the_same_pale_pixels_and_keeps_vivid_ones_nearly_whole():
    ab = torch.tensor([[3.0, 30.0, 0.0], [4.0, 40.0, -2.0]]).view(2, 1, 3)  # chroma 5, 50, 2
    out = neutral_ab(ab, 6.0, garrote=True)
    assert torch.equal(out[:, 0, 0], torch.zeros(2))  # below the threshold: grey, as soft
    assert torch.equal(out[:, 0, 2], torch.zeros(2))
    torch.testing.assert_close(out[:, 0, 1], torch.tensor([29.568, 39.424]))  # 50 - 36/50 = 49.28
    soft = neutral_ab(ab, 6.0)
    assert float(out.norm(dim=0)[0, 1]) > float(soft.norm(dim=0)[0, 1]) + 5
    ramp = torch.stack([torch.linspace(0, 60, 61), torch.zeros(61)]).view(2, 1, 61)
    chroma = neutral_ab(ramp, 6.0, garrote=True)[0, 0]
    assert bool((chroma.diff() >= 0).all())  # monotone: a vivider pixel stays vivider
    assert neutral_ab(ab, 0.0, garrote=True) is ab


def test_a_colorizer_with_neutral_greys_pale_pixels_and_stores_the_choice(astronaut, tmp_path):
    """``neutral`` is a decoding option like ``confidence``: applied to every prediction, kept in
    config.json by save_pretrained and read back as the weights' default, overridable."""
    from PIL import Image

    from jkspnet.nn.model import JKSPNet
    from jkspnet.pipeline.colorizer import Colorizer

    torch.manual_seed(0)
    plain = Colorizer.from_model(JKSPNet(), device="cpu", precision="fp32")
    x = plain.prepare(Image.fromarray(astronaut), 32).network_input[None]
    ab = plain.predict_ab(x, 1.0)
    threshold = float(ab.norm(dim=1).median())  # half the pixels are paler than this
    with_neutral = Colorizer(plain.network, plain.spec.replace(neutral=threshold))
    torch.testing.assert_close(with_neutral.predict_ab(x, 1.0), neutral_ab(ab, threshold))
    with_neutral.save_pretrained(tmp_path)
    loaded = Colorizer.from_pretrained(tmp_path, device="cpu", precision="fp32")
    assert loaded.neutral == pytest.approx(threshold)
    assert Colorizer.from_pretrained(tmp_path, device="cpu", neutral=0).neutral == 0.0
    assert loaded.neutral_shape == "soft"  # weights saved before the garrote read as soft

    garrote = Colorizer(
        plain.network, plain.spec.replace(neutral=threshold, neutral_shape="garrote")
    )
    torch.testing.assert_close(garrote.predict_ab(x, 1.0), neutral_ab(ab, threshold, garrote=True))
    garrote.save_pretrained(tmp_path / "garrote")
    loaded = Colorizer.from_pretrained(tmp_path / "garrote", device="cpu", precision="fp32")
    assert (loaded.neutral_shape, loaded.neutral) == ("garrote", pytest.approx(threshold))
    soft = Colorizer.from_pretrained(tmp_path / "garrote", device="cpu", neutral_shape="soft")
    assert soft.neutral_shape == "soft"


def test_saturated_ab_scales_every_chroma_and_keeps_the_hue():
    ab = torch.tensor([[3.0, -30.0, 0.0], [4.0, 40.0, 0.0]]).view(2, 1, 3)  # chroma 5, 50, 0
    out = saturated_ab(ab, 1.5)
    torch.testing.assert_close(out.norm(dim=0)[0], torch.tensor([7.5, 75.0, 0.0]))
    torch.testing.assert_close(torch.atan2(out[1], out[0]), torch.atan2(ab[1], ab[0]))
    assert saturated_ab(ab, 1.0) is ab
    assert not saturated_ab(ab, 0.0).any()
    with pytest.raises(ValueError):
        saturated_ab(ab, -0.5)


def test_a_colorizer_saturates_before_the_neutral_threshold_and_stores_the_gain(
    astronaut, tmp_path
):
    """``saturation`` is applied to every prediction before ``neutral`` (a pale pixel made vivid
    enough escapes the threshold), kept in config.json and read back, overridable; weights saved
    before it existed decode at 1."""
    from PIL import Image

    from jkspnet.nn.model import JKSPNet
    from jkspnet.pipeline.colorizer import Colorizer

    torch.manual_seed(0)
    plain = Colorizer.from_model(JKSPNet(), device="cpu", precision="fp32")
    assert plain.saturation == 1.0
    x = plain.prepare(Image.fromarray(astronaut), 32).network_input[None]
    ab = plain.predict_ab(x, 1.0)
    threshold = float(ab.norm(dim=1).median())
    spec = plain.spec.replace(saturation=1.7, neutral=threshold, neutral_shape="garrote")
    vivid = Colorizer(plain.network, spec)
    expected = neutral_ab(ab * 1.7, threshold, garrote=True)
    torch.testing.assert_close(vivid.predict_ab(x, 1.0), expected)
    assert not torch.allclose(expected, neutral_ab(ab, threshold, garrote=True) * 1.7)
    vivid.save_pretrained(tmp_path)
    loaded = Colorizer.from_pretrained(tmp_path, device="cpu", precision="fp32")
    assert loaded.saturation == pytest.approx(1.7)
    assert Colorizer.from_pretrained(tmp_path, device="cpu", saturation=1).saturation == 1.0
    config = tmp_path / "config.json"
    saved = json.loads(config.read_text())
    del saved["saturation"]
    config.write_text(json.dumps(saved))
    older = Colorizer.from_pretrained(tmp_path, device="cpu", precision="fp32")
    assert older.saturation == 1.0
