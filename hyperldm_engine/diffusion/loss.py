"""The latent-diffusion training objective of HyperLDM (the paper's Algorithm 1 and its loss).

``loss = MSE(eps, eps_hat) + ssim_weight * (1 - SSIM(x0_hat, x0))`` with
``x0_hat = (x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t)``.

Numerical safety (our choice; the paper does not say): x0_hat amplifies errors in eps_hat by
``sqrt((1 - ab_t) / ab_t)``, which is 0.1 at t = 0 but 282 at t = T-1 for the default schedule, so
for large t the SSIM term would be dominated by an exploded, meaningless x0_hat and its gradients.
The SSIM term is therefore applied only to samples with ``alpha_bar_t >= ssim_alpha_bar_floor``
(default 0.01: amplification <= 10, t <= 62 of 100 for the default schedule) and is zeroed for the
others; it is summed over those samples and divided by the whole batch size, so for every included t
the gradient is exactly the paper's. This uses a per-sample weight, not boolean indexing, so it makes
no device synchronisation. The MSE term covers every t.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from hyperldm_engine.diffusion.parameterization import Prediction, min_snr_weight, model_output_to_x0_eps, target
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.diffusion.ssim import ssim

EpsModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

DEFAULT_SSIM_WEIGHT = 0.1
DEFAULT_SSIM_ALPHA_BAR_FLOOR = 0.01


def diffusion_loss(eps_model: EpsModel, x0: torch.Tensor, cond: torch.Tensor, schedule: NoiseSchedule,
                   generator: torch.Generator, ssim_weight: float = DEFAULT_SSIM_WEIGHT,
                   ssim_alpha_bar_floor: float = DEFAULT_SSIM_ALPHA_BAR_FLOOR,
                   ssim_data_range: float | None = None,
                   ssim_kernel_size: int = 11, prediction: Prediction | str = Prediction.EPSILON,
                   min_snr_gamma: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One Monte-Carlo estimate of the loss for clean latents ``x0`` ``(B, n_x, h, w)``.

    t ~ U{0..T-1} and eps ~ N(0, I) are drawn from ``generator`` (on its own device, then moved to
    x0's). ``eps_model(x_t, t, cond)`` is e.g. ``LatentDenoiser.forward`` with ``cond`` from its
    ``encode_condition(rgb)``. ``ssim_data_range`` defaults to the batch's x0 range (max - min,
    detached). Returns ``(loss, logs)``; logs hold detached tensors under 'train/...' keys
    (``train/ssim`` is the mean SSIM over the included samples, NaN if none was included).

    ``prediction`` is what the model outputs (see ``parameterization``); the MSE is on that target,
    weighted per sample by :func:`min_snr_weight` when ``min_snr_gamma`` is given (the paper: eps,
    unweighted). ``train/mse`` is always the unweighted MSE of the model's own target.
    """
    B = x0.shape[0]
    gen_device = generator.device
    t = torch.randint(0, schedule.num_steps, (B,), generator=generator, device=gen_device).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=gen_device, dtype=x0.dtype).to(x0.device)
    x_t = schedule.add_noise(x0, eps, t)
    output = eps_model(x_t, t, cond)
    alpha_bar = schedule.coefficient("alpha_bar", t, x0).reshape(B)
    goal = target(prediction, x0, eps, alpha_bar)
    per_sample_mse = F.mse_loss(output, goal, reduction="none").flatten(1).mean(1)
    mse = per_sample_mse.mean()
    logs: dict[str, torch.Tensor] = {"train/mse": mse.detach()}
    if min_snr_gamma is not None:
        loss = (min_snr_weight(prediction, alpha_bar, min_snr_gamma) * per_sample_mse).mean()
    else:
        loss = mse
    if ssim_weight:
        x0_hat = model_output_to_x0_eps(output, x_t, alpha_bar, prediction)[0]
        included = (schedule.coefficient("alpha_bar", t, x0).reshape(B) >= ssim_alpha_bar_floor)
        weight = included.to(x0.dtype)
        # Excluded samples may hold huge x0_hat; replace them so no inf/NaN reaches SSIM or its grads.
        x0_hat = torch.where(included.reshape(-1, *([1] * (x0.ndim - 1))), x0_hat, x0.detach())
        if ssim_data_range is None:
            data_range = (x0.max() - x0.min()).detach().clamp_min(1e-6)
        else:
            data_range = float(ssim_data_range)
        per_sample = ssim(x0_hat, x0, data_range=data_range, kernel_size=ssim_kernel_size,
                          reduction="none")
        ssim_term = (weight * (1.0 - per_sample)).sum() / B
        loss = loss + ssim_weight * ssim_term
        n_in = weight.sum().detach()
        logs["train/ssim"] = ((weight * per_sample).sum() / n_in).detach()
        logs["train/ssim_fraction"] = (n_in / B).detach()
    logs["train/loss"] = loss.detach()
    return loss, logs
