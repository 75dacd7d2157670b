"""What the denoiser predicts, and the conversions between its output, eps and x0.

``Prediction.EPSILON`` is the paper's objective (Algorithm 1: the network predicts the noise).
``Prediction.X0`` predicts the clean latent directly and ``Prediction.V`` predicts
``v = sqrt(ab) eps - sqrt(1 - ab) x0`` (Salimans and Ho 2022). At high noise an eps-predictor's x0
estimate ``(x_t - sqrt(1 - ab) eps) / sqrt(ab)`` amplifies its error up to ~280x for the default
schedule, whereas an x0- or v-predictor's estimate is the network output itself: it converges to
E[x0 | RGB], a deterministic anchor, which is what few-step sampling and the mean mode need.
The samplers stay eps-based (one interface); :func:`model_output_to_eps` converts.

Loss weighting: :func:`min_snr_weight` (Min-SNR-gamma with a floor, ``SNR_t = ab_t / (1 - ab_t)``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

import torch


class Prediction(StrEnum):
    """The denoiser's output: the noise (paper), the clean latent, or the velocity."""

    EPSILON = "epsilon"
    X0 = "x0"
    V = "v"

    @classmethod
    def of(cls, value: str | Prediction) -> Prediction:
        return value if isinstance(value, Prediction) else cls(str(value))


def _ab(alpha_bar: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """alpha_bar as a tensor broadcastable against ``like`` (B, C, H, W)."""
    a = torch.as_tensor(alpha_bar, dtype=like.dtype, device=like.device)
    return a.reshape(-1, *([1] * (like.ndim - 1))) if a.ndim else a


def target(prediction: Prediction | str, x0: torch.Tensor, eps: torch.Tensor,
           alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """The regression target for ``prediction`` given the clean latent, the noise and alpha_bar_t."""
    p = Prediction.of(prediction)
    if p is Prediction.EPSILON:
        return eps
    if p is Prediction.X0:
        return x0
    ab = _ab(alpha_bar, x0)
    return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def model_output_to_x0_eps(output: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor | float,
                           prediction: Prediction | str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0_hat, eps_hat) from the network output at noise level ``alpha_bar`` (scalar or (B,))."""
    p = Prediction.of(prediction)
    ab = _ab(alpha_bar, x_t)
    s, r = ab.sqrt(), (1 - ab).sqrt()
    if p is Prediction.EPSILON:
        return (x_t - r * output) / s, output
    if p is Prediction.X0:
        return output, (x_t - s * output) / r
    x0 = s * x_t - r * output
    return x0, r * x_t + s * output


def model_output_to_eps(output: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor | float,
                        prediction: Prediction | str) -> torch.Tensor:
    """eps_hat from the network output (identity for eps-prediction), for the eps-based samplers."""
    if Prediction.of(prediction) is Prediction.EPSILON:
        return output
    return model_output_to_x0_eps(output, x_t, alpha_bar, prediction)[1]


def denoiser_eps_fn(denoiser: Any, cond: Any, prediction: Prediction | str, alpha_bar: list[float],
                    timesteps: list[int], batch: int, device: torch.device | str) -> Callable:
    """The samplers' ``eps_fn(x_t, t)`` for ``denoiser`` with its condition ``cond`` computed once: the
    network's output converted to eps_hat, whatever it predicts; the timestep tensors are made once."""
    steps = {t: torch.full((batch,), t, device=device, dtype=torch.long) for t in timesteps}
    kind = Prediction.of(prediction)

    def eps_fn(x_t: torch.Tensor, t: int) -> torch.Tensor:
        return model_output_to_eps(denoiser(x_t, steps[t], cond), x_t, alpha_bar[t], kind)

    return eps_fn


def min_snr_weight(prediction: Prediction | str, alpha_bar: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample loss weight (B,) for a squared loss on ``prediction``'s target.

    In x0 space the weight is ``min(SNR, gamma) + 1``: Min-SNR-gamma (Hang et al. 2023) caps the
    low-noise steps, and the floor of 1 (the "truncated SNR" idea of Salimans and Ho 2022) keeps the
    high-noise steps learning E[x0 | RGB], the deterministic anchor, instead of weighting them ~0.
    Converted to the prediction's own space (eps loss = SNR x x0 loss, v loss = (SNR + 1) x x0 loss);
    for eps-prediction the plain Min-SNR weight ``min(SNR, gamma) / SNR`` (at most 1) is used.
    """
    snr = alpha_bar / (1 - alpha_bar)
    p = Prediction.of(prediction)
    if p is Prediction.EPSILON:  # no floor: it would weight the noisiest eps errors by 1 / SNR (~8e4)
        return snr.clamp(max=float(gamma)) / snr
    w_x0 = snr.clamp(max=float(gamma)) + 1.0
    if p is Prediction.X0:
        return w_x0
    return w_x0 / (snr + 1)
