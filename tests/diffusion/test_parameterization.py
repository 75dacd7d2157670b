"""eps / x0 / v parameterisations: round trips, targets, the Min-SNR weights and the training loss."""

import pytest
import torch

from hyperldm_engine.diffusion.loss import diffusion_loss
from hyperldm_engine.diffusion.parameterization import (
    Prediction,
    min_snr_weight,
    model_output_to_eps,
    model_output_to_x0_eps,
    target,
)
from hyperldm_engine.diffusion.schedule import NoiseSchedule


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    ab = torch.tensor([0.999, 0.3, 1.26e-5], dtype=torch.float64)
    x_t = ab.sqrt()[:, None, None, None] * x0 + (1 - ab).sqrt()[:, None, None, None] * eps
    return x0, eps, ab, x_t


@pytest.mark.parametrize("prediction", list(Prediction))
def test_exact_target_recovers_x0_and_eps(prediction):
    x0, eps, ab, x_t = _data()
    out = target(prediction, x0, eps, ab)
    x0_hat, eps_hat = model_output_to_x0_eps(out, x_t, ab, prediction)
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-6 if prediction is not Prediction.EPSILON else 2e-3)
    torch.testing.assert_close(eps_hat, eps, rtol=0, atol=1e-6)
    torch.testing.assert_close(model_output_to_eps(out, x_t, ab, prediction), eps, rtol=0, atol=1e-6)


def test_v_is_velocity():
    x0, eps, ab, _ = _data(1)
    s = ab.sqrt()[:, None, None, None]
    r = (1 - ab).sqrt()[:, None, None, None]
    torch.testing.assert_close(target("v", x0, eps, ab), s * eps - r * x0)
    assert Prediction.of("x0") is Prediction.X0
    with pytest.raises(ValueError):
        Prediction.of("noise")


def test_min_snr_weights_known_values():
    ab = torch.tensor([0.5, 0.9, 1e-4], dtype=torch.float64)  # SNR 1, 9, ~1e-4
    snr = ab / (1 - ab)
    w = min_snr_weight("x0", ab, gamma=5.0)
    torch.testing.assert_close(w, torch.tensor([2.0, 6.0, 1.0 + 1e-4 / (1 - 1e-4)], dtype=torch.float64))
    # the same x0-space weight expressed on eps and v losses
    torch.testing.assert_close(min_snr_weight("epsilon", ab, 5.0), snr.clamp(max=5.0) / snr)  # plain, <= 1
    torch.testing.assert_close(min_snr_weight("v", ab, 5.0) * (snr + 1), w)


def test_x0_loss_is_zero_for_the_perfect_model_and_weighted():
    schedule = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(4, 4, 8, 8, generator=g)

    def perfect(x_t, t, cond):
        return x0

    loss, logs = diffusion_loss(perfect, x0, torch.zeros(1), schedule, torch.Generator().manual_seed(0),
                                ssim_weight=0.0, prediction="x0", min_snr_gamma=5.0)
    assert float(loss) == 0.0 and float(logs["train/mse"]) == 0.0

    def off_by_one(x_t, t, cond):
        return x0 + 1.0

    loss, logs = diffusion_loss(off_by_one, x0, torch.zeros(1), schedule, torch.Generator().manual_seed(0),
                                ssim_weight=0.0, prediction="x0", min_snr_gamma=5.0)
    assert float(logs["train/mse"]) == pytest.approx(1.0)
    assert 1.0 <= float(loss) <= 6.0  # mean of per-sample weights in [1, gamma + 1]
