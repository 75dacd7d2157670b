"""Known answers for the paper's noise schedule and its closed forms."""

import numpy as np
import pytest
import torch

from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import BundleError, InputError


def test_default_betas_are_linear_0p01_to_0p2():
    s = NoiseSchedule.linear()
    assert s.num_steps == 100
    assert s.betas.dtype == torch.float64
    assert float(s.betas[0]) == pytest.approx(0.01, abs=1e-15)
    assert float(s.betas[-1]) == pytest.approx(0.2, abs=1e-15)
    assert float(s.betas[1]) == pytest.approx(0.01 + 0.19 / 99, abs=1e-15)
    assert torch.allclose(s.alphas, 1 - s.betas)


def test_final_alpha_bar_matches_paper():
    # The paper states alpha_bar_T = 1.26e-5; the exact product is 1.25550e-5 (0.36 % below).
    s = NoiseSchedule.linear()
    exact = np.prod(1 - np.linspace(0.01, 0.2, 100))
    assert float(s.alpha_bar[-1]) == pytest.approx(exact, rel=1e-12)
    assert float(s.alpha_bar[-1]) == pytest.approx(1.26e-5, rel=5e-3)
    assert float(s.alpha_bar[0]) == pytest.approx(0.99, rel=1e-14)
    assert float(s.alpha_bar_prev[0]) == 1.0
    assert torch.equal(s.alpha_bar_prev[1:], s.alpha_bar[:-1])


def test_literal_ablation_reading_is_not_pure_noise():
    # "max M, min 0.005 M, M = 0.02" read literally: betas 1e-4 .. 0.02 -> alpha_bar_T ~ 0.36,
    # i.e. x_T keeps 60 % of the signal. This is why the default stays [0.01, 0.2].
    literal = NoiseSchedule.linear(beta_start=1e-4, beta_end=0.02)
    assert float(literal.alpha_bar[-1]) == pytest.approx(0.36356, rel=1e-4)


def test_noise_scale_scales_both_ends():
    half, double = NoiseSchedule.linear(noise_scale=0.5), NoiseSchedule.linear(noise_scale=2.0)
    assert float(half.betas[0]) == pytest.approx(0.005) and float(half.betas[-1]) == pytest.approx(0.1)
    assert float(double.betas[0]) == pytest.approx(0.02) and float(double.betas[-1]) == pytest.approx(0.4)
    assert float(half.alpha_bar[-1]) == pytest.approx(4.3586e-3, rel=1e-4)
    assert float(double.alpha_bar[-1]) == pytest.approx(2.1271e-11, rel=1e-4)


def test_posterior_variance_known_values():
    s = NoiseSchedule.linear()
    b = np.linspace(0.01, 0.2, 100)
    ab = np.cumprod(1 - b)
    assert float(s.posterior_variance[0]) == 0.0
    # t = 1 (paper's t = 2): (1 - 0.99) / (1 - 0.99 * (1 - b1)) * b1
    b1 = 0.01 + 0.19 / 99
    assert float(s.posterior_variance[1]) == pytest.approx(0.01 / (1 - 0.99 * (1 - b1)) * b1, rel=1e-12)
    assert float(s.posterior_variance[1]) == pytest.approx(5.46752e-3, rel=1e-5)
    for t in (10, 50, 99):
        expected = (1 - ab[t - 1]) / (1 - ab[t]) * b[t]
        assert float(s.posterior_variance[t]) == pytest.approx(expected, rel=1e-12)
    # Near T the posterior variance approaches beta_t.
    assert float(s.posterior_variance[99]) == pytest.approx(0.2, rel=1e-4)
    assert torch.all(s.posterior_variance <= s.betas)


def test_add_noise_predict_x0_round_trip_int_and_tensor_t():
    s = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 40, 99])
    xt = s.add_noise(x0, eps, t)
    ab = s.alpha_bar[t].reshape(-1, 1, 1, 1)
    assert torch.allclose(xt, ab.sqrt() * x0 + (1 - ab).sqrt() * eps, atol=1e-14)
    assert torch.allclose(s.predict_x0(xt, eps, t), x0, atol=1e-10)
    assert torch.allclose(s.predict_eps(xt, x0, t), eps, atol=1e-10)
    xt7 = s.add_noise(x0, eps, 7)
    assert torch.allclose(xt7, s.add_noise(x0, eps, torch.full((3,), 7)), atol=1e-14)
    assert torch.allclose(s.predict_x0(xt7, eps, 7), x0, atol=1e-12)


def test_dict_round_trip_and_errors():
    s = NoiseSchedule.linear(num_steps=50, noise_scale=2.0)
    d = s.to_dict()
    assert d == {"kind": "linear", "num_steps": 50, "beta_start": 0.01, "beta_end": 0.2, "noise_scale": 2.0}
    assert NoiseSchedule.from_dict(d) == s
    custom = NoiseSchedule(betas=torch.tensor([0.1, 0.2, 0.3]))
    assert NoiseSchedule.from_dict(custom.to_dict()) == custom
    with pytest.raises(BundleError):
        NoiseSchedule.from_dict({"kind": "cosine"})
    with pytest.raises(BundleError):
        NoiseSchedule.from_dict({"kind": "linear", "noise_scale": 10.0})
    with pytest.raises(BundleError):
        NoiseSchedule.from_dict({"kind": "linear", "typo": 1})
    with pytest.raises(InputError):
        NoiseSchedule.linear(noise_scale=5.0)
