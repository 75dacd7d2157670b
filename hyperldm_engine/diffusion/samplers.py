"""Reverse-process samplers with one interface (diffusers style): ancestral DDPM and DDIM with eta.

Both expose ``timesteps`` (python ints, descending), ``step(eps, t, x_t, noise) -> StepOutput`` and
``sample(eps_fn, x_T, noise_fn, callback=None, progress=None)``. All randomness comes from
``noise_fn(step_index)`` (in practice the scene-level :class:`~hyperldm_engine.diffusion.noise.NoiseField`),
so a sampler holds no generator and draws nothing itself. Every coefficient is a python float computed
once at construction, so the loop makes no host-device copies and no synchronisations of its own.

``eps_fn(x_t, t)`` receives ``t`` as a python int; the model wrapper turns it into a ``(B,)`` tensor
(``torch.full`` on the device is a fill kernel, not a copy).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import InputError

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]
NoiseFn = Callable[[int], torch.Tensor]
StepCallback = Callable[[int, int, "StepOutput"], None]

#: DDIM steps when none are given; the CLI's, the plugin's and the API's default (one owner).
#: 4, measured on the bundled model (four held-out 128 px scenes, eta 1, RGB consistency, K = 5, seeds
#: 0-2; benchmarks/RESULTS.md "Sampler steps"): one sample 29.71 / 28.96 dB against 29.23 / 28.76 at 10
#: steps and 29.14 at 20, lower SAM, mean of 5 equal (30.87 vs 30.90), SDM 1.62-1.65 (the 1.61
#: reference kept; 10 steps give 1.70-1.78, so use --steps 10 when diversity or averaging many
#: samples matters more), at 0.68x the tile time of 10 steps and 0.50x that of 20.
DEFAULT_STEPS = 4


class _Advancer(Protocol):
    def advance(self, n: float = 1.0, message: str | None = None) -> None: ...


@dataclass(frozen=True)
class StepOutput:
    """Result of one reverse step: the less noisy latent and the current estimate of the clean one."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


def _check_clip(clip_x0: tuple[float, float] | None) -> tuple[float, float] | None:
    if clip_x0 is None:
        return None
    lo, hi = float(clip_x0[0]), float(clip_x0[1])
    if not lo < hi:
        raise InputError(f"sampler: clip_x0 range must satisfy low < high, got ({lo}, {hi})")
    return lo, hi


class _Sampler:
    """Shared loop. Subclasses set ``timesteps``, ``_noise_std`` (t -> sigma) and implement ``step``."""

    timesteps: list[int]
    _noise_std: dict[int, float]

    def __init__(self, schedule: NoiseSchedule, clip_x0: tuple[float, float] | None = None) -> None:
        self.schedule = schedule
        self.clip_x0 = _check_clip(clip_x0)
        ab = schedule.alpha_bar.tolist()
        self._sqrt_ab = [a ** 0.5 for a in ab]
        self._sqrt_1m_ab = [(1.0 - a) ** 0.5 for a in ab]

    @property
    def num_inference_steps(self) -> int:
        return len(self.timesteps)

    def needs_noise(self, t: int) -> bool:
        """Whether ``step`` at timestep ``t`` adds fresh noise (False for deterministic steps)."""
        return self._noise_std[t] > 0.0

    def _x0_and_eps(self, eps: torch.Tensor, t: int, x_t: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x0 estimate from eps; with clipping, eps is recomputed so both stay consistent with x_t."""
        x0 = (x_t - self._sqrt_1m_ab[t] * eps) / self._sqrt_ab[t]
        if self.clip_x0 is not None:
            x0 = x0.clamp(*self.clip_x0)
            eps = (x_t - self._sqrt_ab[t] * x0) / self._sqrt_1m_ab[t]
        return x0, eps

    def _add_noise_term(self, mean: torch.Tensor, t: int, noise: torch.Tensor | None) -> torch.Tensor:
        sigma = self._noise_std[t]
        if sigma == 0.0:
            return mean
        if noise is None:
            raise ValueError(f"step at t={t} needs noise (sigma={sigma:.4g}) but noise is None")
        if noise.shape != mean.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} != sample shape {tuple(mean.shape)}")
        return mean + sigma * noise

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor,
             noise: torch.Tensor | None = None) -> StepOutput:
        raise NotImplementedError

    def sample(self, eps_fn: EpsFn, x_T: torch.Tensor, noise_fn: NoiseFn | None,
               callback: StepCallback | None = None, progress: _Advancer | None = None) -> torch.Tensor:
        """Run the reverse process from ``x_T`` to a clean latent.

        ``noise_fn(i)`` is called with the loop index ``i`` (0 .. len(timesteps)-1) only for steps that
        add noise; it must return a tensor shaped like ``x_T``, on its device. ``callback(i, t, out)``
        sees every step's output; ``progress.advance()`` is called once per step.
        """
        x = x_T
        for i, t in enumerate(self.timesteps):
            eps = eps_fn(x, t)
            noise = None
            if self.needs_noise(t):
                if noise_fn is None:
                    raise ValueError(f"{type(self).__name__} adds noise at t={t}; pass a noise_fn")
                noise = noise_fn(i)
            out = self.step(eps, t, x, noise)
            x = out.prev_sample
            if callback is not None:
                callback(i, t, out)
            if progress is not None:
                progress.advance(1)
        return x


class DDPMSampler(_Sampler):
    """Ancestral sampling over all T steps (the paper's Algorithm 2) with the small posterior variance
    ``beta_tilde_t``. Uses the x0-parametrised posterior mean, which equals Algorithm 2's
    ``(x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(alpha_t)`` and also allows x0 clipping."""

    def __init__(self, schedule: NoiseSchedule, clip_x0: tuple[float, float] | None = None) -> None:
        super().__init__(schedule, clip_x0)
        T = schedule.num_steps
        self.timesteps = list(range(T - 1, -1, -1))
        betas = schedule.betas.tolist()
        alphas = schedule.alphas.tolist()
        ab = schedule.alpha_bar.tolist()
        ab_prev = schedule.alpha_bar_prev.tolist()
        self._coef_x0 = [ab_prev[t] ** 0.5 * betas[t] / (1.0 - ab[t]) for t in range(T)]
        self._coef_xt = [alphas[t] ** 0.5 * (1.0 - ab_prev[t]) / (1.0 - ab[t]) for t in range(T)]
        self._noise_std = {t: float(v) ** 0.5 for t, v in enumerate(schedule.posterior_variance.tolist())}

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor,
             noise: torch.Tensor | None = None) -> StepOutput:
        """x_{t-1} = mu_tilde(x_t, x0_hat) + sqrt(beta_tilde_t) * noise (no noise at t = 0)."""
        x0, _ = self._x0_and_eps(eps, t, x_t)
        mean = self._coef_x0[t] * x0 + self._coef_xt[t] * x_t
        return StepOutput(self._add_noise_term(mean, t, noise), x0)


class DDIMSampler(_Sampler):
    """DDIM (Song et al. 2021) on a subsequence of ``num_inference_steps`` timesteps.

    Timesteps are ``round(linspace(T-1, 0, n))``: they start at the pure-noise step T-1 and end at 0,
    whose "previous" alpha_bar is 1 (the clean latent). ``eta = 0`` is deterministic given x_T;
    ``eta = 1`` with n = T reproduces ancestral DDPM exactly.
    """

    def __init__(self, schedule: NoiseSchedule, num_inference_steps: int = DEFAULT_STEPS,
                 eta: float = 0.0, clip_x0: tuple[float, float] | None = None, start: int | None = None) -> None:
        super().__init__(schedule, clip_x0)
        T = schedule.num_steps
        first = T - 1 if start is None else int(start)
        if not 0 <= first <= T - 1:
            raise InputError(f"DDIM start step must be in 0..{T - 1}, got {start}")
        n = int(num_inference_steps)
        if not 1 <= n <= first + 1 or n != num_inference_steps:
            raise InputError(f"DDIM steps must be an integer in 1..{first + 1}, got {num_inference_steps}")
        if not eta >= 0.0:
            raise InputError(f"DDIM eta must be >= 0, got {eta}")
        self.eta = float(eta)
        # from ``first`` (T - 1: pure noise; lower: a noised anchor, SDEdit) down to 0
        ts = [first] if n == 1 else [round(first * (1.0 - i / (n - 1))) for i in range(n)]
        self.timesteps = ts
        ab = schedule.alpha_bar.tolist()
        self._prev_ab: dict[int, float] = {}
        self._noise_std = {}
        self._coef_dir: dict[int, float] = {}
        for k, t in enumerate(ts):
            a_prev = ab[ts[k + 1]] if k + 1 < n else 1.0
            a_t = ab[t]
            var = (self.eta ** 2) * (1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev)
            var = max(var, 0.0)
            self._prev_ab[t] = a_prev
            self._noise_std[t] = var ** 0.5
            self._coef_dir[t] = max(1.0 - a_prev - var, 0.0) ** 0.5

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor,
             noise: torch.Tensor | None = None) -> StepOutput:
        """x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps + sigma * noise."""
        if t not in self._prev_ab:
            raise ValueError(f"timestep {t} is not one of this DDIM sampler's timesteps")
        x0, eps = self._x0_and_eps(eps, t, x_t)
        mean = self._prev_ab[t] ** 0.5 * x0 + self._coef_dir[t] * eps
        return StepOutput(self._add_noise_term(mean, t, noise), x0)


Sampler = DDPMSampler | DDIMSampler


def make_sampler(name: str, schedule: NoiseSchedule, steps: int | None = None, eta: float = 0.0,
                 clip_x0: tuple[float, float] | None = None, start: int | None = None) -> Sampler:
    """'ddpm' (all T steps; a different ``steps`` is ignored with a warning) or 'ddim'
    (``steps`` defaults to DEFAULT_STEPS, ``eta`` 0 = deterministic; ``start`` the first timestep,
    T - 1 when None, lower to start from a noised anchor)."""
    key = str(name).lower()
    if key == "ddpm":
        if steps is not None and int(steps) != schedule.num_steps:
            warnings.warn(f"ddpm sampler always runs all {schedule.num_steps} steps; steps={steps} "
                          "ignored (use ddim for fewer steps)", stacklevel=2)
        return DDPMSampler(schedule, clip_x0=clip_x0)
    if key == "ddim":
        return DDIMSampler(schedule, DEFAULT_STEPS if steps is None else steps, eta=eta,
                           clip_x0=clip_x0, start=start)
    raise InputError(f"unknown sampler {name!r}; choose 'ddpm' or 'ddim'")
