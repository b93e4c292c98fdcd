"""The per-pixel stages on OpenCV (jkspnet.colour.pixels) against the torch code they replace on the
CPU, and against scikit-image's colour conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from jkspnet.colour import pixels, torch_pixels, upsample
from jkspnet.colour.spaces import lab_to_srgb8, rgb_to_l
from jkspnet.pipeline.colorizer import ABCorrection


def _random_lab(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """L over [0, 100] and a, b well beyond sRGB's gamut, as planes (3, H, W) float32."""
    return np.stack([rng.uniform(0, 100, shape), *rng.uniform(-128, 128, (2, *shape))]).astype(
        np.float32
    )


def test_lightness_of_every_kind_of_photo_matches_the_torch_conversions_and_skimage():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    sixteen = rng.uniform(0, 1, (37, 53)).astype(np.float32)
    every_byte = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for pixels_ in (rgb, grey, sixteen, every_byte):
        got = pixels.lightness(pixels_)
        tensor = torch.from_numpy(pixels_).double()
        tensor = tensor / 255 if pixels_.dtype == np.uint8 else tensor
        tensor = tensor.permute(2, 0, 1) if tensor.dim() == 3 else tensor.expand(3, *tensor.shape)
        expected = rgb_to_l(tensor)[0].numpy()
        assert got.dtype == np.float32 and got.shape == pixels_.shape[:2]
        np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)
        on_device = torch_pixels.lightness(pixels_, torch.device("cpu")).numpy()  # a GPU's path
        np.testing.assert_allclose(on_device, expected, atol=1e-3, rtol=0)
    skimage_l = rgb2lab(rgb)[..., 0]
    assert np.abs(pixels.lightness(rgb) - skimage_l).max() < 0.01


def test_box_means_and_the_local_linear_fit_match_the_torch_running_sums():
    rng = np.random.default_rng(1)
    guide = rng.uniform(0, 1, (41, 67)).astype(np.float32)
    values = rng.normal(0, 20, (2, 41, 67)).astype(np.float32)
    for radius in (0, 1, 8, 20):  # 20: windows wider than the image on one side
        expected = upsample.box_mean(torch.from_numpy(values)[None], radius)[0].numpy()
        got = np.stack([pixels.cv_box_mean(plane, radius) for plane in values])
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    for dtype in (np.float32, np.float64):  # the pipeline's, and the hints' propagation's
        g, v = guide.astype(dtype), values.astype(dtype)
        expected = upsample._local_linear_fit_torch(
            torch.from_numpy(g), torch.from_numpy(v), 8, 1e-2
        )
        got = pixels.cv_local_linear_fit(g, v, 8, 1e-2)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("small", "size"),
    [((4, 16, 16), (123, 77)), ((2, 7, 9), (7, 9)), ((4, 30, 40), (13, 5)), ((2, 1, 1), (1, 300))],
)
def test_the_row_upsampler_gives_bilinear_rows_in_any_band(small, size):
    rng = np.random.default_rng(2)
    maps = rng.normal(0, 10, small).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(maps)[None], size=size, mode="bilinear")[0].numpy()
    upsampler = pixels.RowUpsampler(maps, *size)
    height = size[0]
    for top, bottom in [(0, height), (0, 1), (height // 2, height), (height - 1, height)]:
        np.testing.assert_allclose(upsampler.rows(top, bottom), expected[:, top:bottom], atol=1e-4)


def test_lab_to_8bit_srgb_is_within_one_code_of_the_torch_conversion_and_skimage():
    lab = _random_lab(np.random.default_rng(3), (256, 256))
    out = np.empty((256, 256, 3), np.uint8)
    pixels.lab_planes_to_srgb8(lab[0], lab[1].copy(), lab[2].copy(), out)
    codes = lab_to_srgb8(torch.from_numpy(lab)).permute(1, 2, 0).numpy()
    assert np.abs(out.astype(int) - codes).max() <= 1
    with pytest.warns(UserWarning, match="negative Z"):  # clipped as scikit-image clips them
        exact = np.round(np.clip(lab2rgb(lab.transpose(1, 2, 0).astype(np.float64)), 0, 1) * 255)
    difference = np.abs(out - exact)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def _torch_finish(colorizer, prepared, ab, correction=None) -> np.ndarray:
    """What the same colorizer gives on a GPU: the same layers through torch_pixels."""
    layers = colorizer._layers(prepared, ab, correction)
    return torch_pixels.finish(prepared.lightness, layers, prepared.alpha).astype(int)


@pytest.mark.parametrize("upsample_", ["guided", "bilinear"])
def test_the_opencv_finish_is_within_one_code_of_the_torch_finish(
    colorizer, astronaut, coffee, monkeypatch, upsample_
):
    monkeypatch.setattr(colorizer, "upsample", upsample_)
    monkeypatch.setattr(pixels, "BAND_PIXELS", 30_000)  # many bands, one partial
    monkeypatch.setattr(torch_pixels, "DEVICE_BAND_PIXELS", 30_000)  # on both paths
    grey = Image.fromarray(coffee).convert("L")
    for photo in (Image.fromarray(astronaut), grey, grey.convert("LA")):
        prepared = colorizer.prepare(photo)
        ab = colorizer.predict_ab_list([prepared.network_input])[0]
        result = colorizer.finish(prepared, ab)
        assert result.mode == ("RGBA" if photo.mode == "LA" else "RGB")
        expected = _torch_finish(colorizer, prepared, ab)
        assert np.abs(np.asarray(result).astype(int) - expected).max() <= 1


def test_the_hints_correction_is_added_alike_on_both_paths(colorizer, astronaut):
    prepared = colorizer.prepare(Image.fromarray(astronaut))
    ab = colorizer.predict_ab_list([prepared.network_input])[0]
    height, width = prepared.lightness.shape
    torch.manual_seed(0)
    corrections = [
        ABCorrection(torch.randn(4, 40, 30) * torch.tensor([0.2, 0.2, 10, 10]).view(4, 1, 1), True),
        ABCorrection(torch.randn(2, height, width) * 10, False),
    ]
    for correction in corrections:
        got = np.asarray(colorizer.finish(prepared, ab, correction)).astype(int)
        assert np.abs(got - _torch_finish(colorizer, prepared, ab, correction)).max() <= 1


def test_opencv_threads_are_set_for_the_block_and_put_back_after():
    import cv2

    original = cv2.getNumThreads()
    cv2.setNumThreads(2)  # whatever OMP_NUM_THREADS said: a count that differs from 1
    try:
        with pixels.opencv_threads(1):
            assert cv2.getNumThreads() == 1
            with pixels.opencv_threads(None):  # left alone
                assert cv2.getNumThreads() == 1
        assert cv2.getNumThreads() == 2
        with pytest.raises(RuntimeError), pixels.opencv_threads(1):
            raise RuntimeError("put back even so")
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(original)
