"""Tests of jkspnet.engines.metrics: PSNR/SSIM against scikit-image, CF, ΔCF and Zhang's AuC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jkspnet.engines import film_metrics, metrics, scores
from jkspnet.nn.bins import ab_bins, hard_histogram, nearest_bin

skimage = pytest.importorskip("skimage")
from skimage import color as skcolor  # noqa: E402
from skimage import data as skdata  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

HEIGHT, WIDTH = 256, 320


def _crop(image: np.ndarray) -> np.ndarray:
    """Centre crop to the common size (every sample photo is at least 300x451)."""
    top = (image.shape[0] - HEIGHT) // 2
    left = (image.shape[1] - WIDTH) // 2
    return np.ascontiguousarray(image[top : top + HEIGHT, left : left + WIDTH, :3])


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [_crop(skdata.astronaut()), _crop(skdata.coffee()), _crop(skdata.chelsea())]


def _noised(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _predictions(truth: np.ndarray, seed: int) -> list[np.ndarray]:
    grey = np.round(truth.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))
    return [
        np.roll(truth, shift=(3, -5), axis=(0, 1)),
        _noised(truth, 12.0, seed),
        np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2),
        truth[::-1].copy(),
    ]


def _constant_ab(height: int, width: int, a: float, b: float) -> torch.Tensor:
    ab = torch.empty(2, height, width, dtype=torch.float64)
    ab[0], ab[1] = a, b
    return ab


# ----------------------------------------------------------------------------- identical images


def test_identical_images(photos: list[np.ndarray]) -> None:
    truth = photos[0]
    assert metrics.psnr(truth, truth) == math.inf
    assert metrics.ssim(truth, truth) == pytest.approx(1.0, abs=1e-12)
    ab = metrics.ab_of(truth)
    assert metrics.auc_ab(ab, ab) == 1.0
    one = scores.score_image(metrics.PhotoPair(truth, truth.copy()))
    assert one["psnr"] == math.inf
    assert one["auc"] == 1.0
    assert one["cf"] == one["cf_truth"]
    assert metrics.delta_colorfulness([one["cf"]], [one["cf_truth"]]) == (0.0, 0.0)


def test_accepts_torch_uint8(photos: list[np.ndarray]) -> None:
    truth, pred = photos[1], _noised(photos[1], 5.0, 0)
    assert metrics.psnr(torch.from_numpy(pred), torch.from_numpy(truth)) == metrics.psnr(
        pred, truth
    )
    assert metrics.ssim(torch.from_numpy(pred), truth) == metrics.ssim(pred, truth)


def test_rejects_bad_inputs(photos: list[np.ndarray]) -> None:
    truth = photos[0]
    with pytest.raises(ValueError, match="uint8"):
        metrics.psnr(truth.astype(np.float32), truth)
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(truth[:10], truth)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        metrics.colorfulness(truth[..., 0])
    with pytest.raises(ValueError, match="7x7"):
        metrics.ssim(truth[:6, :6], truth[:6, :6])


# ----------------------------------------------------------------------------- PSNR and SSIM


def test_psnr_and_ssim_agree_with_skimage(photos: list[np.ndarray]) -> None:
    for index, truth in enumerate(photos):
        other = photos[(index + 1) % len(photos)]
        for pred in [*_predictions(truth, index), other]:
            expected_psnr = peak_signal_noise_ratio(truth, pred, data_range=255)
            assert metrics.psnr(pred, truth) == pytest.approx(expected_psnr, abs=0.01)
            expected_ssim = structural_similarity(pred, truth, channel_axis=2, data_range=255)
            ours = metrics.ssim(pred, truth)
            assert ours == pytest.approx(expected_ssim, abs=1e-3)
            # Far tighter than required: the same float64 arithmetic.
            assert ours == pytest.approx(expected_ssim, abs=1e-9)


def test_ssim_on_odd_small_image() -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    pred = _noised(truth, 30.0, 8)
    expected = structural_similarity(pred, truth, channel_axis=2, data_range=255)
    assert metrics.ssim(pred, truth) == pytest.approx(expected, abs=1e-9)


# ----------------------------------------------------------------------------- colorfulness


def _colorfulness_by_hand(rgb: np.ndarray) -> float:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg = np.abs(r - g)
    yb = np.abs((r + g) / 2 - b)
    return np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)


def test_colorfulness_of_grey_is_zero() -> None:
    grey = np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), 3, axis=2)
    assert metrics.colorfulness(grey) == 0.0


def test_colorfulness_of_a_2x2_image() -> None:
    image = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [128, 128, 128]]], dtype=np.uint8)
    # rg = 255, 255, 0, 0: mean 127.5, std 127.5.
    # yb = 127.5, 127.5, 255, 0: mean 127.5, std 127.5 / sqrt(2).
    expected = 127.5 * math.sqrt(1.5) + 0.3 * 127.5 * math.sqrt(2.0)
    assert metrics.colorfulness(image) == pytest.approx(expected, rel=1e-12)
    assert metrics.colorfulness(image) == pytest.approx(_colorfulness_by_hand(image), rel=1e-12)


def test_colorfulness_of_photos(photos: list[np.ndarray]) -> None:
    for photo in photos:
        cf = metrics.colorfulness(photo)
        assert cf > 0
        assert cf == pytest.approx(_colorfulness_by_hand(photo), rel=1e-9)


def test_delta_colorfulness() -> None:
    set_delta, per_photo = metrics.delta_colorfulness([10.0, 30.0, 20.0], [20.0, 20.0, 26.0])
    assert set_delta == pytest.approx(2.0)  # |20 - 22|
    assert per_photo == pytest.approx(26.0 / 3.0)  # (10 + 10 + 6) / 3
    assert metrics.delta_colorfulness([5.0], [5.0]) == (0.0, 0.0)
    with pytest.raises(ValueError):
        metrics.delta_colorfulness([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        metrics.delta_colorfulness([], [])


# ----------------------------------------------------------------------------- ab and AuC


def test_ab_of_agrees_with_skimage(photos: list[np.ndarray]) -> None:
    photo = photos[2][:64, :64]
    expected = skcolor.rgb2lab(photo)[..., 1:].transpose(2, 0, 1)
    ab = metrics.ab_of(photo)
    assert ab.shape == (2, 64, 64) and ab.dtype == torch.float32
    np.testing.assert_allclose(ab.numpy(), expected, atol=1e-3)


@pytest.mark.parametrize("shift", [(6.0, 8.0), (-8.0, 6.0), (10.0, 0.0)])
def test_constant_error_of_10(shift: tuple[float, float]) -> None:
    rng = np.random.default_rng(3)
    truth = torch.from_numpy(rng.integers(-80, 80, (2, 12, 17)).astype(np.float64))
    pred = truth + torch.tensor(shift, dtype=torch.float64).view(2, 1, 1)
    accuracy = metrics.ab_accuracies(pred, truth)
    assert accuracy.shape == (151,)
    np.testing.assert_array_equal(accuracy[:10], 0.0)
    np.testing.assert_array_equal(accuracy[10:], 1.0)
    assert metrics.auc_ab(pred, truth) == pytest.approx(141 / 151, abs=1e-15)


def test_mixed_errors_and_custom_thresholds() -> None:
    truth = torch.zeros(2, 2, 2, dtype=torch.float64)
    pred = truth.clone()
    pred[0, 0, 1] = 3.0  # error 3
    pred[1, 1, 0] = 200.0  # error 200: beyond every threshold
    pred[0, 1, 1], pred[1, 1, 1] = 30.0, 40.0  # error 50
    # Thresholds 0..150: 1/4 for t < 3, 2/4 for 3 <= t < 50, 3/4 for t >= 50.
    expected = (3 * 0.25 + 47 * 0.5 + 101 * 0.75) / 151
    assert metrics.auc_ab(pred, truth) == pytest.approx(expected, abs=1e-15)
    assert metrics.auc_ab(pred, truth, thresholds=[0, 3, 50]) == pytest.approx(
        (0.25 + 0.5 + 0.75) / 3
    )
    weights = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)  # only the exact pixel
    assert metrics.auc_ab(pred, truth, weights=weights) == 1.0


def _two_colour_truth(rare_rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Truth ab on two bin centres, rows [0, rare_rows) rare; returns (truth, common, rare)."""
    bins = ab_bins().double()
    common, rare = bins[150], bins[20]
    truth = _constant_ab(10, 10, float(common[0]), float(common[1]))
    truth[:, :rare_rows] = rare.view(2, 1, 1)
    return truth, common, rare


def test_rebalanced_auc_weights_rare_colours() -> None:
    truth, _, _ = _two_colour_truth(rare_rows=1)  # 90 common pixels, 10 rare
    pred = truth.clone()
    pred[0, :1] += 12.0
    pred[1, :1] += 16.0  # error 20 on the rare colour only
    raw = metrics.auc_ab(pred, truth)
    assert raw == pytest.approx((20 * 0.9 + 131) / 151, abs=1e-15)

    prior = hard_histogram([truth])
    assert prior.shape == (313,) and float(prior.sum()) == pytest.approx(1.0)
    assert float(prior[150]) == pytest.approx(0.9) and float(prior[20]) == pytest.approx(0.1)
    weights = metrics.rebalanced_pixel_weights(truth, None, prior)
    # w = 1 / (p * 2): both colours carry half the total weight.
    assert float(weights[5, 5]) == pytest.approx(1 / 1.8)
    assert float(weights[0, 0]) == pytest.approx(5.0)
    rebalanced = metrics.auc_ab(pred, truth, weights=weights)
    assert rebalanced == pytest.approx((20 * 0.5 + 131) / 151, abs=1e-12)
    assert rebalanced < raw

    # With the error on the common colour instead, rebalancing forgives it.
    pred = truth.clone()
    pred[0, 1:] += 20.0
    assert metrics.auc_ab(pred, truth) == pytest.approx((20 * 0.1 + 131) / 151, abs=1e-15)
    assert metrics.auc_ab(pred, truth, weights=weights) == pytest.approx(
        (20 * 0.5 + 131) / 151, abs=1e-12
    )


def test_rebalanced_weights_reject_unseen_bins() -> None:
    truth, _, _ = _two_colour_truth(rare_rows=1)
    prior = torch.zeros(313, dtype=torch.float64)
    prior[150] = 1.0
    with pytest.raises(ValueError, match="prior is 0"):
        metrics.rebalanced_pixel_weights(truth, ab_bins(), prior)
    with pytest.raises(ValueError, match="shape"):
        metrics.rebalanced_pixel_weights(truth, ab_bins(), prior[:10])


def test_nearest_bins() -> None:
    bins = ab_bins()
    ab = (bins[[0, 5, 312]].T.double() + 2.0).reshape(2, 1, 3)
    assert nearest_bin(ab).tolist() == [[0, 5, 312]]


# ----------------------------------------------------------------------------- set aggregation


def test_score_image_and_aggregate_pool_pixels(photos: list[np.ndarray]) -> None:
    truths = [photos[0][:, :120], photos[1], photos[2][:, :250]]  # different sizes, same height
    preds = [_noised(truths[0], 40.0, 1), truths[1][::-1].copy(), _predictions(truths[2], 2)[2]]
    prior = hard_histogram(metrics.ab_of(t, torch.float64) for t in truths)
    each = [
        scores.score_image(metrics.PhotoPair(p, t, prior=prior))
        for p, t in zip(preds, truths, strict=True)
    ]

    first = each[0]
    assert first.raw["auc"].weight == HEIGHT * 120  # its pixels
    assert first["psnr"] == pytest.approx(metrics.psnr(preds[0], truths[0]))
    assert first["ssim"] == pytest.approx(metrics.ssim(preds[0], truths[0]))
    assert first["cf_truth"] == pytest.approx(metrics.colorfulness(truths[0]))
    assert first.raw["auc"].accuracy.shape == (151,)
    assert first["auc"] == pytest.approx(
        metrics.auc_ab(metrics.ab_of(preds[0]), metrics.ab_of(truths[0])), abs=1e-4
    )

    summary = scores.aggregate_scores(each)
    assert summary.count == 3
    # Pooled AuC: the AuC of all the set's pixels side by side, not a mean of photo AuCs.
    pred_ab = torch.cat([metrics.ab_of(p, torch.float64) for p in preds], dim=2)
    truth_ab = torch.cat([metrics.ab_of(t, torch.float64) for t in truths], dim=2)
    assert summary["auc"] == pytest.approx(metrics.auc_ab(pred_ab, truth_ab), abs=1e-12)
    assert summary["auc"] != pytest.approx(np.mean([s["auc"] for s in each]), abs=1e-6)
    weights = metrics.rebalanced_pixel_weights(truth_ab, None, prior)
    assert summary["auc_rebalanced"] == pytest.approx(
        metrics.auc_ab(pred_ab, truth_ab, weights=weights), abs=1e-12
    )
    assert summary["auc_rebalanced"] != pytest.approx(summary["auc"], abs=1e-3)

    cf_pred = [s["cf"] for s in each]
    cf_truth = [s["cf_truth"] for s in each]
    assert (summary["delta_cf"], summary["delta_cf_per_image"]) == pytest.approx(
        metrics.delta_colorfulness(cf_pred, cf_truth)
    )
    assert summary["psnr"] == pytest.approx(np.mean([s["psnr"] for s in each]))

    no_prior = scores.aggregate_scores([scores.score_image(metrics.PhotoPair(preds[1], truths[1]))])
    assert no_prior["auc_rebalanced"] is None


def test_ssim_speed_on_a_megapixel() -> None:
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    pred = _noised(truth, 10.0, 12)
    value = metrics.ssim(pred, truth)
    assert 0.0 < value < 1.0


def _lab_image(lab: tuple[float, float, float], shape=(4, 6)) -> np.ndarray:
    """An 8-bit sRGB image of one LAB colour."""
    pixels = np.broadcast_to(np.asarray(lab, dtype=np.float64), (*shape, 3))
    return np.round(skcolor.lab2rgb(pixels) * 255).astype(np.uint8)


def test_flicker_counts_colour_changes_where_the_picture_stands_still() -> None:
    red, redder = _lab_image((50, 20, 10)), _lab_image((50, 26, 18))
    change = float((metrics.ab_of(redder)[:, 0, 0] - metrics.ab_of(red)[:, 0, 0]).norm())
    assert film_metrics.flicker([red, red, red]) == 0.0
    assert film_metrics.flicker([red, redder, red]) == pytest.approx(change, abs=1e-4)
    # A pixel whose L jumps moves: its colour change is no flicker.
    moved = redder.copy()
    moved[0, 0] = _lab_image((80, 0, 0), (1, 1))[0, 0]
    assert film_metrics.flicker([red, moved]) == pytest.approx(change, abs=1e-4)
    with pytest.raises(ValueError, match="stand still"):
        film_metrics.flicker([red])
    with pytest.raises(ValueError, match="shape"):
        film_metrics.flicker([red, red[:2]])


def test_motion_ab_error_looks_only_where_the_truth_moves() -> None:
    dark, light = _lab_image((30, 0, 0)), _lab_image((70, 0, 0))
    truth = [dark, light.copy()]
    truth[1][:2] = dark[:2]  # the top half stands still, the bottom half changes
    pred = [dark, truth[1].copy()]
    pred[1][:2] = _lab_image((30, 40, 0), (2, 6))  # wrong colour where nothing moves: not counted
    assert film_metrics.motion_ab_error(pred, truth) == pytest.approx(0.0, abs=1e-3)
    pred[1][2:] = _lab_image((70, 0, 30), (2, 6))
    assert film_metrics.motion_ab_error(pred, truth) == pytest.approx(30.0, abs=1.0)
    with pytest.raises(ValueError, match="move"):
        film_metrics.motion_ab_error([dark, dark], [dark, dark])


def test_cast_is_the_chroma_painted_on_neutral_pixels() -> None:
    # Truth: the left half neutral grey, the right half a strong red.
    truth = np.concatenate([_lab_image((60, 0, 0), (4, 3)), _lab_image((50, 60, 40), (4, 3))], 1)
    grey = np.repeat(truth[..., 1:2], 3, axis=2)  # G = R = B: no colour at all
    assert metrics.cast(grey, truth) == pytest.approx(0.0, abs=0.1)
    # A sepia wash of chroma 10 on the grey half is the cast; the red half does not count.
    washed = truth.copy()
    washed[:, :3] = _lab_image((60, 6, 8), (4, 3))
    assert metrics.cast(washed, truth) == pytest.approx(10.0, abs=0.5)
    washed[:, 3:] = _lab_image((50, 0, 0), (4, 3))  # greying the red changes nothing
    assert metrics.cast(washed, truth) == pytest.approx(10.0, abs=0.5)
    # The threshold is the truth's chroma: with 6 the grey half is neutral, with 0 nothing is.
    assert metrics.cast(washed, truth, neutral=0.0) is None
    vivid = _lab_image((50, 60, 40))
    assert metrics.cast(vivid, vivid) is None


def test_cast_in_score_image_and_aggregate() -> None:
    grey = _lab_image((60, 0, 0), (8, 8))  # SSIM needs 7x7
    tinted = _lab_image((60, 0, 12), (8, 8))
    vivid = _lab_image((50, 60, 40), (8, 8))
    each = [
        scores.score_image(metrics.PhotoPair(tinted, grey)),  # cast 12
        scores.score_image(metrics.PhotoPair(grey, grey)),  # cast 0
        scores.score_image(metrics.PhotoPair(grey, vivid)),  # no neutral pixel: not in the mean
    ]
    assert each[0]["cast"] == pytest.approx(12.0, abs=0.5)
    assert each[1]["cast"] == pytest.approx(0.0, abs=0.1)
    assert each[2]["cast"] is None
    summary = scores.aggregate_scores(each)
    assert summary["cast"] == pytest.approx(6.0, abs=0.3) and summary.counts["cast"] == 2
    assert scores.aggregate_scores(each[2:])["cast"] is None
