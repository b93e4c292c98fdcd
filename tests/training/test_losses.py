"""Tests of the soft-encoded, rebalanced colorization loss (jkspnet.training.losses)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jkspnet.nn.bins import nearest_bins, smoothed_prior
from jkspnet.nn.model import NUM_BINS, ab_bins
from jkspnet.training.losses import (
    ColorizationLoss,
    dense_soft_encode,
    rebalance_weights,
    soft_encode,
    target_entropy,
)


@pytest.fixture(scope="module")
def bins() -> torch.Tensor:
    return ab_bins()


@pytest.fixture
def one_thread():
    """Run on one CPU thread: for tiny tensors, thread hand-offs cost more than they save, and
    on a busy machine they turn a one-second loop of 300 small steps into tens of seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_ab(seed: int, shape: tuple[int, int, int] = (3, 7, 9)) -> torch.Tensor:
    """Random ab over (and a little beyond) the bins' range, shape (N, 2, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    n, h, w = shape
    return torch.rand(n, 2, h, w, generator=gen, dtype=torch.float64) * 240.0 - 120.0


def _in_gamut_ab(bins: torch.Tensor, seed: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """ab near random bin centres (within a few units), shape (N, 2, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    n, h, w = shape
    pick = torch.randint(0, NUM_BINS, (n * h * w,), generator=gen)
    ab = bins[pick] + 3.0 * torch.randn(n * h * w, 2, generator=gen)
    return ab.reshape(n, h, w, 2).permute(0, 3, 1, 2).contiguous()


def _brute_force_dense(ab: np.ndarray, bins: np.ndarray, sigma: float, k: int) -> np.ndarray:
    """The soft encoding written out pixel by pixel in float64 numpy."""
    n, _, h, w = ab.shape
    out = np.zeros((n, bins.shape[0], h, w))
    for i in range(n):
        for y in range(h):
            for x in range(w):
                d2 = ((bins - ab[i, :, y, x]) ** 2).sum(axis=1)
                near = np.argsort(d2)[:k]
                g = np.exp(-(d2[near] - d2[near].min()) / (2 * sigma**2))
                out[i, near, y, x] = g / g.sum()
    return out


def _decode(logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """As JKSPNet.decode at T = 1: softmax, then a 1x1 convolution whose weights are the bins."""
    return F.conv2d(torch.softmax(logits, dim=1), bins.t().reshape(2, NUM_BINS, 1, 1))


# --- nearest_bins / soft_encode -------------------------------------------------------------


def test_nearest_bins_matches_brute_force(bins):
    ab = _random_ab(0)
    idx, d2 = nearest_bins(ab, bins, k=4, chunk_pixels=17)  # chunks that split rows and images
    assert idx.shape == d2.shape == (3, 4, 7, 9)
    assert idx.dtype == torch.long
    full = ((ab.unsqueeze(1) - bins.double().view(1, NUM_BINS, 2, 1, 1)) ** 2).sum(dim=2)
    expected = full.sort(dim=1)
    torch.testing.assert_close(d2, expected.values[:, :4])
    torch.testing.assert_close(idx, expected.indices[:, :4])


@pytest.mark.parametrize(("sigma", "k"), [(5.0, 5), (8.0, 3), (2.5, 1)])
def test_soft_encode_matches_dense_and_brute_force(bins, sigma, k):
    ab = _random_ab(1)
    idx, weights = soft_encode(ab, bins, sigma=sigma, k=k)
    assert idx.shape == weights.shape == (3, k, 7, 9)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3, 7, 9, dtype=weights.dtype))

    dense = dense_soft_encode(ab, bins, sigma=sigma, k=k)
    assert dense.shape == (3, NUM_BINS, 7, 9)
    torch.testing.assert_close(dense.gather(1, idx), weights)
    torch.testing.assert_close(dense.sum(dim=1), torch.ones(3, 7, 9, dtype=dense.dtype))

    reference = _brute_force_dense(ab.numpy(), bins.double().numpy(), sigma, k)
    np.testing.assert_allclose(dense.numpy(), reference, atol=1e-9)


def test_soft_encode_float32_agrees_with_float64(bins):
    ab = _random_ab(2)
    dense64 = dense_soft_encode(ab, bins)
    dense32 = dense_soft_encode(ab.float(), bins)
    assert dense32.dtype == torch.float32
    torch.testing.assert_close(dense32.double(), dense64, atol=1e-5, rtol=0)


def test_nearest_bin_has_largest_weight(bins):
    ab = _random_ab(3)
    idx, weights = soft_encode(ab, bins)
    assert torch.equal(weights.argmax(dim=1), torch.zeros_like(idx[:, 0]))
    nearest = ((ab.unsqueeze(1) - bins.double().view(1, NUM_BINS, 2, 1, 1)) ** 2).sum(2).argmin(1)
    assert torch.equal(idx[:, 0], nearest)


def test_pixel_at_a_bin_centre_puts_most_weight_there(bins):
    chosen = torch.tensor([0, 57, 156, 200, 312])
    ab = bins[chosen].t().reshape(1, 2, 1, 5)
    idx, weights = soft_encode(ab, bins)
    assert torch.equal(idx[0, 0, 0], chosen)
    assert (weights[:, 0] > 0.5).all()
    assert (weights[:, 0] > 2.0 * weights[:, 1]).all()


def test_soft_encode_on_grid_spacing_neighbours(bins):
    """At a bin centre with four neighbours 10 units away: weights 1 : e^-2 each."""
    centre = bins[156]
    neighbour_offsets = torch.tensor([[10.0, 0.0], [-10.0, 0.0], [0.0, 10.0], [0.0, -10.0]])
    have = {tuple(b.tolist()) for b in bins}
    assert all(tuple((centre + o).tolist()) in have for o in neighbour_offsets)
    _, weights = soft_encode(centre.view(1, 2, 1, 1), bins)
    e2 = np.exp(-2.0)
    expected = torch.tensor([1.0, e2, e2, e2, e2], dtype=torch.float32) / (1 + 4 * e2)
    torch.testing.assert_close(weights.flatten(), expected)


def test_soft_encode_is_a_target_without_gradient(bins):
    ab = _random_ab(4).float().requires_grad_()
    _, weights = soft_encode(ab, bins)
    assert not weights.requires_grad


def test_soft_encode_rejects_bad_arguments(bins):
    ab = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError):
        soft_encode(torch.zeros(1, 3, 2, 2), bins)
    with pytest.raises(ValueError):
        soft_encode(ab, bins, sigma=0.0)
    with pytest.raises(ValueError):
        soft_encode(ab, bins, k=0)
    with pytest.raises(ValueError):
        soft_encode(ab, bins, k=NUM_BINS + 1)


# --- ab_histogram ---------------------------------------------------------------------------


def test_ab_histogram_of_constant_colour_is_peaked(bins):
    colour = bins[156].view(1, 2, 1, 1) + 1.0  # off-centre, but nearest to bin 156
    batches = [colour.expand(2, 2, 8, 8), colour.expand(1, 2, 4, 4)]
    p = smoothed_prior(iter(batches), bins)
    assert p.shape == (NUM_BINS,)
    assert p.dtype == torch.float32
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)
    assert int(p.argmax()) == 156


def test_ab_histogram_smoothing_spreads_to_neighbours(bins):
    batch = bins[156].view(1, 2, 1, 1).expand(1, 2, 4, 4)
    raw = smoothed_prior([batch], bins, sigma=0.0)
    assert float(raw[156]) == 1.0
    assert float(raw.sum()) == 1.0

    smooth = smoothed_prior([batch], bins, sigma=5.0)
    assert float(smooth.sum()) == pytest.approx(1.0, abs=1e-6)
    assert 0.2 < float(smooth[156]) < 1.0
    distance = (bins - bins[156]).norm(dim=1)
    neighbours = (distance - 10.0).abs() < 1e-3
    assert int(neighbours.sum()) == 4
    # A Gaussian of std 5 between centres 10 apart: each neighbour gets e^-2 of the peak.
    torch.testing.assert_close(smooth[neighbours] / smooth[156], torch.full((4,), np.exp(-2.0)))
    assert float(smooth[distance > 40].sum()) < 1e-6
    # Wider smoothing spreads further.
    wider = smoothed_prior([batch], bins, sigma=10.0)
    assert float(wider[156]) < float(smooth[156])


def test_ab_histogram_counts_each_pixel_once(bins):
    a = bins[10].view(1, 2, 1, 1).expand(1, 2, 3, 1)  # 3 pixels
    b = bins[300].view(1, 2, 1, 1).expand(1, 2, 1, 1)  # 1 pixel
    p = smoothed_prior([a, b], bins, sigma=0.0)
    assert float(p[10]) == pytest.approx(0.75)
    assert float(p[300]) == pytest.approx(0.25)


def test_ab_histogram_needs_pixels(bins):
    with pytest.raises(ValueError):
        smoothed_prior([], bins)


# --- rebalance_weights ----------------------------------------------------------------------


def _skewed_distribution(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    p = torch.rand(NUM_BINS, generator=gen) ** 6
    p[:40] = 0.0  # bins never seen
    return p / p.sum()


@pytest.mark.parametrize("lam", [0.1, 0.5, 0.9, 1.0])
def test_rebalance_weights_expectation_is_one(lam):
    p = _skewed_distribution()
    w = rebalance_weights(p, lam)
    assert w.shape == (NUM_BINS,)
    assert torch.isfinite(w).all()
    assert (w > 0).all()
    assert float((p.double() * w.double()).sum()) == pytest.approx(1.0, abs=1e-5)


def test_rebalance_weights_favour_rare_bins():
    p = _skewed_distribution()
    w = rebalance_weights(p, 0.5)
    order = p.argsort()
    assert (w[order].diff() <= 1e-6).all()  # non-increasing as p grows
    assert float(w[p.argmin()]) > 10.0 * float(w[p.argmax()])
    # The weight of a never-seen bin: 1 / (lam / 313) before normalisation.
    scale = float((p.double() / ((0.5 * p.double()) + 0.5 / NUM_BINS)).sum())
    assert float(w[0]) == pytest.approx(2.0 * NUM_BINS / scale, rel=1e-5)


def test_rebalance_weights_lambda_one_is_uniform():
    torch.testing.assert_close(rebalance_weights(_skewed_distribution(), 1.0), torch.ones(313))


def test_rebalance_weights_normalises_p():
    p = _skewed_distribution()
    torch.testing.assert_close(rebalance_weights(7.0 * p), rebalance_weights(p))


def test_rebalance_weights_rejects_bad_arguments():
    p = _skewed_distribution()
    with pytest.raises(ValueError):
        rebalance_weights(p, 1.5)
    with pytest.raises(ValueError):
        rebalance_weights(-p)
    with pytest.raises(ValueError):
        rebalance_weights(p, 0.0)  # empty bins would get infinite weight


# --- ColorizationLoss -----------------------------------------------------------------------


def test_loss_returns_terms_and_total(bins):
    ab_true = _in_gamut_ab(bins, 5, (2, 4, 4))
    logits = torch.randn(2, NUM_BINS, 4, 4)
    loss_fn = ColorizationLoss(ce_weight=1.0, ab_weight=0.05)
    out = loss_fn(logits, _decode(logits, bins), ab_true)
    assert set(out) == {"loss", "ce", "ab"}
    assert all(v.dim() == 0 and v.dtype == torch.float32 for v in out.values())
    torch.testing.assert_close(out["loss"], out["ce"] + 0.05 * out["ab"])


def test_the_terms_weights_are_train_configs(bins):
    """A term's weight has one home, TrainConfig's <term>_weight field: the loss defaults to
    it, the trainer passes the run's, and a weight without a term is refused."""
    from jkspnet.training.config import TrainConfig

    assert (
        ColorizationLoss().weights
        == {"ce": 1.0, "ab": 0.02}
        == {
            "ce": TrainConfig.ce_weight,
            "ab": TrainConfig.ab_weight,
        }
    )
    run = TrainConfig(ab_weight=0.3)
    assert run.loss_weights() == {"ce_weight": 1.0, "ab_weight": 0.3}
    assert ColorizationLoss(**run.loss_weights()).weights == {"ce": 1.0, "ab": 0.3}
    assert ColorizationLoss().terms == ("loss", "ce", "ab")
    with pytest.raises(TypeError, match="tv_weight"):
        ColorizationLoss(tv_weight=1.0)
    with pytest.raises(ValueError, match="loss weights must be >= 0"):
        ColorizationLoss(ab_weight=-1.0)


def test_ce_matches_dense_cross_entropy(bins):
    ab_true = _in_gamut_ab(bins, 6, (2, 5, 3))
    logits = torch.randn(2, NUM_BINS, 5, 3)
    out = ColorizationLoss()(logits, _decode(logits, bins), ab_true)
    dense = dense_soft_encode(ab_true, bins)
    expected = -(dense * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(out["ce"], expected)
    expected_ab = F.smooth_l1_loss(_decode(logits, bins), ab_true, beta=1.0)
    torch.testing.assert_close(out["ab"], expected_ab)
    channels_last = logits.contiguous(memory_format=torch.channels_last)  # as training runs
    fast = ColorizationLoss()(channels_last, _decode(logits, bins), ab_true)
    torch.testing.assert_close(fast["ce"], out["ce"])


def test_ce_lower_on_true_bins_than_on_wrong_bins(bins):
    ab_true = _in_gamut_ab(bins, 7, (2, 4, 4))
    idx, weights = soft_encode(ab_true, bins)
    loss_fn = ColorizationLoss()
    right = torch.zeros(2, NUM_BINS, 4, 4).scatter_(1, idx, 4.0 * weights / weights[:, :1])
    wrong = torch.zeros(2, NUM_BINS, 4, 4).scatter_(1, (idx + 150) % NUM_BINS, 4.0)
    uniform = torch.zeros(2, NUM_BINS, 4, 4)
    ce = {
        name: float(loss_fn(lg, _decode(lg, bins), ab_true)["ce"])
        for name, lg in {"right": right, "wrong": wrong, "uniform": uniform}.items()
    }
    assert ce["uniform"] == pytest.approx(np.log(NUM_BINS), rel=1e-5)
    assert ce["right"] < ce["uniform"] < ce["wrong"]
    # The exact target as logits reaches the floor: the target's entropy.
    exact = torch.full((2, NUM_BINS, 4, 4), -1e4).scatter_(1, idx, weights.log())
    floor = float(loss_fn(exact, _decode(exact, bins), ab_true)["ce"])
    assert floor == pytest.approx(float(target_entropy(weights)), rel=1e-4)
    assert floor < ce["right"]


def test_gradients_flow_to_logits_and_ab(bins):
    ab_true = _in_gamut_ab(bins, 8, (1, 4, 4))
    logits = torch.randn(1, NUM_BINS, 4, 4, requires_grad=True)
    ab_pred = _decode(logits, bins)
    ab_pred.retain_grad()
    ColorizationLoss()(logits, ab_pred, ab_true)["loss"].backward()
    assert logits.grad is not None and ab_pred.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    assert ab_pred.grad.abs().sum() > 0


def test_loss_is_finite_under_bf16_autocast(bins):
    ab_true = _in_gamut_ab(bins, 9, (2, 8, 8))
    features = torch.randn(2, 16, 8, 8)
    head = torch.nn.Conv2d(16, NUM_BINS, 1)
    loss_fn = ColorizationLoss()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = 10.0 * head(features)
        assert logits.dtype == torch.bfloat16
        out = loss_fn(logits, _decode(logits, bins), ab_true)
    assert all(torch.isfinite(v) for v in out.values())
    assert out["loss"].dtype == torch.float32
    out["loss"].backward()
    assert torch.isfinite(head.weight.grad).all()
    # The CE in fp32 of the bf16 logits equals what autocast computed.
    reference = loss_fn(logits.detach().float(), _decode(logits.detach().float(), bins), ab_true)
    torch.testing.assert_close(out["ce"], reference["ce"])


def test_class_weights_make_rare_colours_count_more(bins):
    common, rare = 150, 20
    p = torch.full((NUM_BINS,), 1e-4)
    p[common] = 1.0
    p = p / p.sum()
    loss_fn = ColorizationLoss(class_weights=rebalance_weights(p, 0.5))
    plain = ColorizationLoss()
    logits = torch.zeros(1, NUM_BINS, 1, 1)
    ab_pred = torch.zeros(1, 2, 1, 1)

    def ce(fn: ColorizationLoss, bin_index: int) -> float:
        return float(fn(logits, ab_pred, bins[bin_index].view(1, 2, 1, 1))["ce"])

    # Same prediction, same unweighted CE; the rare colour weighs far more after rebalancing.
    assert ce(plain, rare) == pytest.approx(ce(plain, common))
    assert ce(loss_fn, rare) > 10.0 * ce(loss_fn, common)
    # And in a batch of both, the rare pixel's weight shows in the mean.
    both = torch.stack([bins[common], bins[rare]]).t().reshape(1, 2, 1, 2)
    batch_ce = float(loss_fn(logits.expand(1, -1, 1, 2), ab_pred.expand(1, 2, 1, 2), both)["ce"])
    assert batch_ce == pytest.approx((ce(loss_fn, common) + ce(loss_fn, rare)) / 2, rel=1e-5)


def test_buffers_move_and_are_saved(bins):
    weights = torch.rand(NUM_BINS)
    loss_fn = ColorizationLoss(class_weights=weights)
    state = loss_fn.state_dict()
    assert set(state) == {"bins", "class_weights"}
    torch.testing.assert_close(state["bins"], bins)
    torch.testing.assert_close(state["class_weights"], weights)
    moved = loss_fn.to(torch.float64)
    assert moved.bins.dtype == torch.float64


def test_loss_rejects_bad_shapes(bins):
    loss_fn = ColorizationLoss()
    ab = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError):
        loss_fn(torch.zeros(1, 312, 4, 4), ab, ab)
    with pytest.raises(ValueError):
        loss_fn(torch.zeros(1, NUM_BINS, 4, 4), torch.zeros(1, 2, 4, 2), ab)
    with pytest.raises(ValueError):
        ColorizationLoss(class_weights=torch.ones(10))


def test_optimising_free_logits_fits_the_target(bins, one_thread):
    torch.manual_seed(0)
    ab_true = _in_gamut_ab(bins, 10, (2, 8, 8))
    logits = torch.zeros(2, NUM_BINS, 8, 8, requires_grad=True)
    loss_fn = ColorizationLoss()
    optimiser = torch.optim.Adam([logits], lr=0.2)

    def step() -> dict[str, torch.Tensor]:
        optimiser.zero_grad()
        out = loss_fn(logits, _decode(logits, bins), ab_true)
        out["loss"].backward()
        optimiser.step()
        return out

    first = step()
    for _ in range(300):
        last = step()
    _, weights = soft_encode(ab_true, bins)
    floor = float(target_entropy(weights))
    assert float(last["loss"].detach()) < 0.4 * float(first["loss"].detach())
    assert float(last["ce"].detach()) < floor + 0.1
    with torch.no_grad():
        start_error = (_decode(torch.zeros_like(logits), bins) - ab_true).abs().mean()
        error = (_decode(logits, bins) - ab_true).abs().mean()
    assert float(start_error) > 15.0
    assert float(error) < 1.5
