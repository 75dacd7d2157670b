"""The forward (noising) process of HyperLDM's latent diffusion: a beta schedule and its closed forms.

Timesteps are 0-based integers ``t = 0 .. T-1``; our ``t`` is the paper's ``t + 1`` (its Algorithm 1
draws t from 1..T). ``alpha_bar[t]`` is the product of ``alphas[0..t]`` and ``alpha_bar_prev[0] = 1``
(the clean latent). The paper's default is T = 100 with betas linear from 0.01 to 0.2, which gives
``alpha_bar[T-1] = 1.2555e-5`` (the paper states 1.26e-5).

The paper's ablation describes the schedule as "max M, min 0.005 M, M = 0.02". Read literally that is
betas 1e-4 .. 0.02 over 100 steps and ``alpha_bar_T = 0.36``: x_T would then still be 60 % signal,
which contradicts the paper's own alpha_bar_T and the assumption that x_T ~ N(0, I). We therefore keep
[0.01, 0.2] as the default and express the ablation's M = 0.01 / 0.02 / 0.04 as ``noise_scale``
0.5 / 1 / 2, which multiplies both ends of the default range.

All tables are float64 on the CPU; callers get coefficients as python floats (no device copies) or,
for tensors of timesteps, gathered from a per-device float64 copy cached on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from hyperldm_engine.errors import BundleError, InputError

DEFAULT_NUM_STEPS = 100
DEFAULT_BETA_START = 0.01
DEFAULT_BETA_END = 0.2


@dataclass(frozen=True)
class NoiseSchedule:
    """A discrete variance schedule ``beta_t`` and the quantities derived from it (float64, CPU).

    Build it with :meth:`linear` (the paper's schedule) or :meth:`from_dict` (from a bundle config).
    """

    betas: torch.Tensor = field(repr=False)
    kind: str = "custom"
    params: dict[str, float] = field(default_factory=dict)
    alphas: torch.Tensor = field(init=False, repr=False)
    alpha_bar: torch.Tensor = field(init=False, repr=False)
    alpha_bar_prev: torch.Tensor = field(init=False, repr=False)
    posterior_variance: torch.Tensor = field(init=False, repr=False)
    _device_cache: dict[Any, dict[str, torch.Tensor]] = field(
        init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        betas = torch.as_tensor(self.betas, dtype=torch.float64).detach().cpu().clone()
        if betas.ndim != 1 or betas.numel() < 1:
            raise InputError(f"noise schedule: betas must be a non-empty 1-D sequence, got shape "
                             f"{tuple(betas.shape)}")
        if not bool(torch.all((betas > 0) & (betas < 1))):
            raise InputError(f"noise schedule: every beta must lie in (0, 1); got range "
                             f"[{float(betas.min()):.6g}, {float(betas.max()):.6g}]")
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, dim=0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        # beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t; exactly 0 at t = 0.
        posterior_variance = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * betas
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "alpha_bar", alpha_bar)
        object.__setattr__(self, "alpha_bar_prev", alpha_bar_prev)
        object.__setattr__(self, "posterior_variance", posterior_variance)

    # ------------------------------------------------------------------ construction
    @classmethod
    def linear(cls, num_steps: int = DEFAULT_NUM_STEPS, beta_start: float = DEFAULT_BETA_START,
               beta_end: float = DEFAULT_BETA_END, noise_scale: float = 1.0) -> NoiseSchedule:
        """Betas linear from ``beta_start * noise_scale`` to ``beta_end * noise_scale`` over ``num_steps``.

        ``noise_scale`` is the ablation's noise maximum relative to the default (M = 0.02 -> 1.0).
        """
        if int(num_steps) != num_steps or num_steps < 1:
            raise InputError(f"noise schedule: num_steps must be a positive integer, got {num_steps}")
        if not noise_scale > 0:
            raise InputError(f"noise schedule: noise_scale must be positive, got {noise_scale}")
        lo, hi = beta_start * noise_scale, beta_end * noise_scale
        if not 0 < lo <= hi < 1:
            raise InputError(f"noise schedule: scaled betas [{lo:.6g}, {hi:.6g}] must satisfy "
                             f"0 < start <= end < 1 (noise_scale {noise_scale})")
        betas = torch.linspace(lo, hi, int(num_steps), dtype=torch.float64)
        params = {"num_steps": int(num_steps), "beta_start": float(beta_start),
                  "beta_end": float(beta_end), "noise_scale": float(noise_scale)}
        return cls(betas=betas, kind="linear", params=params)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :meth:`from_dict` rebuilds this schedule."""
        if self.kind == "linear":
            return {"kind": "linear", **self.params}
        return {"kind": "custom", "betas": [float(b) for b in self.betas.tolist()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseSchedule:
        """Rebuild a schedule saved by :meth:`to_dict` (e.g. from a bundle's config.json)."""
        if not isinstance(data, dict) or "kind" not in data:
            raise BundleError("noise schedule in the model config is not a mapping with a 'kind' key")
        kind = data["kind"]
        try:
            if kind == "linear":
                allowed = {"kind", "num_steps", "beta_start", "beta_end", "noise_scale"}
                unknown = set(data) - allowed
                if unknown:
                    raise BundleError(f"noise schedule in the model config has unknown keys "
                                      f"{sorted(unknown)}")
                return cls.linear(num_steps=int(data.get("num_steps", DEFAULT_NUM_STEPS)),
                                  beta_start=float(data.get("beta_start", DEFAULT_BETA_START)),
                                  beta_end=float(data.get("beta_end", DEFAULT_BETA_END)),
                                  noise_scale=float(data.get("noise_scale", 1.0)))
            if kind == "custom":
                return cls(betas=torch.tensor([float(b) for b in data["betas"]], dtype=torch.float64))
        except InputError as exc:
            raise BundleError(f"noise schedule in the model config is invalid: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"noise schedule in the model config is malformed: {exc}") from exc
        raise BundleError(f"noise schedule in the model config has unknown kind {kind!r}")

    # ------------------------------------------------------------------ properties
    @property
    def num_steps(self) -> int:
        """T, the number of training timesteps."""
        return int(self.betas.numel())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoiseSchedule):
            return NotImplemented
        return self.kind == other.kind and torch.equal(self.betas, other.betas)

    def __hash__(self) -> int:
        return hash((self.kind, tuple(self.betas.tolist())))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (e.g. for dask workers) only the definition, never the per-device table cache.
        return (_rebuild, (self.betas, self.kind, dict(self.params)))

    # ------------------------------------------------------------------ closed forms
    def _table(self, name: str, device: torch.device) -> torch.Tensor:
        """``name`` (e.g. 'alpha_bar') as float64 on ``device``, copied there once and cached."""
        key = str(device)
        tables = self._device_cache.get(key)
        if tables is None:
            tables = {n: getattr(self, n).to(device) for n in
                      ("betas", "alphas", "alpha_bar", "alpha_bar_prev", "posterior_variance")}
            self._device_cache[key] = tables
        return tables[name]

    def coefficient(self, name: str, t: int | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
        """Table ``name`` at ``t``: a python float for an int ``t``; for a ``(B,)`` tensor a tensor
        shaped ``(B, 1, 1, ...)`` to broadcast against ``like``, in ``like``'s dtype and device."""
        if not isinstance(t, torch.Tensor):
            return float(getattr(self, name)[int(t)])
        values = self._table(name, like.device)[t.to(like.device, torch.long)]
        return values.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """Sample q(x_t | x_0): ``sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps``."""
        ab = self.coefficient("alpha_bar", t, x0)
        if isinstance(ab, float):
            return ab ** 0.5 * x0 + (1.0 - ab) ** 0.5 * eps
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps

    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """Invert :meth:`add_noise` for x0 given (predicted) eps: ``(x_t - sqrt(1-ab) eps) / sqrt(ab)``.

        Amplifies errors in eps by ``sqrt((1 - ab) / ab)``: 0.1 at t = 0, 10 at t ~ 62, 282 at t = 99.
        """
        ab = self.coefficient("alpha_bar", t, x_t)
        if isinstance(ab, float):
            return (x_t - (1.0 - ab) ** 0.5 * eps) / ab ** 0.5
        return (x_t - (1.0 - ab).sqrt() * eps) / ab.sqrt()

    def predict_eps(self, x_t: torch.Tensor, x0: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """The eps consistent with ``x_t`` and ``x0``: ``(x_t - sqrt(ab) x0) / sqrt(1 - ab)``."""
        ab = self.coefficient("alpha_bar", t, x_t)
        if isinstance(ab, float):
            return (x_t - ab ** 0.5 * x0) / (1.0 - ab) ** 0.5
        return (x_t - ab.sqrt() * x0) / (1.0 - ab).sqrt()


def _rebuild(betas: torch.Tensor, kind: str, params: dict[str, float]) -> NoiseSchedule:
    return NoiseSchedule(betas=betas, kind=kind, params=params)
