"""SSIM against torchmetrics, and the diffusion training loss."""

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from hyperldm_engine.diffusion.loss import diffusion_loss
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.diffusion.ssim import ssim


def _pair(seed=0, shape=(3, 4, 24, 20), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    return x, x + 0.5 * torch.randn(shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("data_range", [1.0, 4.0, 8.0])
def test_ssim_matches_torchmetrics(data_range):
    x, y = _pair()
    ours = ssim(x, y, data_range=data_range)
    ref = tm_ssim(x, y, data_range=data_range, gaussian_kernel=True, sigma=1.5, kernel_size=11)
    assert abs(float(ours) - float(ref)) < 1e-4
    ours32 = ssim(x.float(), y.float(), data_range=data_range)
    assert abs(float(ours32) - float(ref)) < 1e-4
    per_sample = ssim(x, y, data_range=data_range, reduction="none")
    for i in range(3):
        ref_i = tm_ssim(x[i:i + 1], y[i:i + 1], data_range=data_range)
        assert abs(float(per_sample[i]) - float(ref_i)) < 1e-4


def test_valid_padding_matches_scikit_image():
    from skimage.metrics import structural_similarity

    x, y = _pair(2, shape=(1, 3, 20, 17))
    ours = float(ssim(x, y, data_range=5.0, padding="valid"))
    ref = structural_similarity(x[0].numpy(), y[0].numpy(), data_range=5.0, channel_axis=0,
                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert abs(ours - ref) < 1e-4


def test_ssim_properties_and_gradient():
    x, y = _pair(1, shape=(1, 2, 13, 13))
    assert float(ssim(x, x, 4.0)) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(x, y, 4.0)) < 0.9
    assert float(ssim(x, y, 4.0)) == pytest.approx(float(ssim(y, x, 4.0)), abs=1e-14)
    assert ssim(x, y, 4.0, reduction="map").shape == (1, 2, 13, 13)
    assert ssim(x, y, 4.0, reduction="map", padding="valid").shape == (1, 2, 3, 3)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: ssim(x, a, 4.0), (y,))
    with pytest.raises(ValueError):
        ssim(x[..., :10, :10], y[..., :10, :10].detach(), 4.0, padding="valid")
    with pytest.raises(ValueError):
        ssim(x[..., :5, :5], y[..., :5, :5].detach(), 4.0)


class LinearPerStep(torch.nn.Module):
    """eps_hat = a[t] x_t + b[t] cond: exactly learnable when cond = x0 (a = 1/sqrt(1-ab), ...)."""

    def __init__(self, T):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(T))
        self.b = torch.nn.Parameter(torch.zeros(T))

    def forward(self, x_t, t, cond):
        return self.a[t].view(-1, 1, 1, 1) * x_t + self.b[t].view(-1, 1, 1, 1) * cond


def test_loss_is_reproducible_from_the_generator():
    s = NoiseSchedule.linear()
    model = LinearPerStep(100)
    x0 = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    l1, logs1 = diffusion_loss(model, x0, x0, s, torch.Generator().manual_seed(5))
    l2, _ = diffusion_loss(model, x0, x0, s, torch.Generator().manual_seed(5))
    l3, _ = diffusion_loss(model, x0, x0, s, torch.Generator().manual_seed(6))
    assert torch.equal(l1, l2) and not torch.equal(l1, l3)
    assert set(logs1) == {"train/mse", "train/ssim", "train/ssim_fraction", "train/loss"}
    assert all(not v.requires_grad for v in logs1.values())


def test_loss_terms_match_independent_computation():
    s = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(6, 4, 16, 16, generator=g, dtype=torch.float64)
    model = lambda x_t, t, c: 0.5 * x_t  # noqa: E731
    # Replay the generator to get the same t and eps.
    t = torch.randint(0, 100, (6,), generator=torch.Generator().manual_seed(9))
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(9).set_state(
        _after_randint(9, 6)), dtype=torch.float64)
    x_t = s.alpha_bar[t].sqrt().view(-1, 1, 1, 1) * x0 + (1 - s.alpha_bar[t]).sqrt().view(-1, 1, 1, 1) * eps
    mse = ((0.5 * x_t - eps) ** 2).mean()
    x0_hat = (x_t - (1 - s.alpha_bar[t]).sqrt().view(-1, 1, 1, 1) * 0.5 * x_t) / s.alpha_bar[t].sqrt().view(
        -1, 1, 1, 1)
    rng = float(x0.max() - x0.min())
    # Floor 0: every sample included -> exactly the paper's loss (SSIM by torchmetrics).
    loss, logs = diffusion_loss(model, x0, None, s, torch.Generator().manual_seed(9),
                                ssim_alpha_bar_floor=0.0)
    expected = mse + 0.1 * (1 - tm_ssim(x0_hat, x0, data_range=rng))
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert float(logs["train/ssim_fraction"]) == 1.0
    # Floor above 1: nothing included -> the MSE alone.
    loss, logs = diffusion_loss(model, x0, None, s, torch.Generator().manual_seed(9),
                                ssim_alpha_bar_floor=2.0)
    assert float(loss) == pytest.approx(float(mse), rel=1e-12)
    # Default floor 0.01: only t <= 62 carry the SSIM term, averaged over the whole batch.
    loss, logs = diffusion_loss(model, x0, None, s, torch.Generator().manual_seed(9))
    keep = s.alpha_bar[t] >= 0.01
    per = torch.stack([tm_ssim(x0_hat[i:i + 1], x0[i:i + 1], data_range=rng) for i in range(6)])
    expected = mse + 0.1 * ((1 - per) * keep).sum() / 6
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert float(logs["train/ssim_fraction"]) == pytest.approx(float(keep.double().mean()))


def _after_randint(seed, n):
    g = torch.Generator().manual_seed(seed)
    torch.randint(0, 100, (n,), generator=g)
    return g.get_state()


def test_loss_decreases_for_a_learnable_model():
    s = NoiseSchedule.linear()
    model = LinearPerStep(100)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    data_gen = torch.Generator().manual_seed(1)
    history = []
    for _ in range(150):
        x0 = torch.randn(16, 4, 12, 12, generator=data_gen)
        loss, logs = diffusion_loss(model, x0, x0, s, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(logs["train/mse"]))
    first, last = sum(history[:10]) / 10, sum(history[-10:]) / 10
    assert first > 0.5 and last < 0.15 * first, (first, last)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
