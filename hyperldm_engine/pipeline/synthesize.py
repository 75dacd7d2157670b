"""Synthesis: RGB tiles -> K diverse hyperspectral cubes through latent diffusion and the VQGAN decoder.

Per tile: the RGB is normalised with the scene's statistics (never per tile), padded at the far
sides to the model's alignment, the denoiser's condition is computed once, K latents are denoised
together (batch = samples) from the scene-level noise field (so overlapping tiles draw the same
noise), rescaled by ``1 / latent_scale``, quantised to the codebook and decoded with the RGB
condition into ``t * (R @ A)``. The sampling loop lives here, not in the models (diffusers' split).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperldm_engine.diffusion.noise import INITIAL_STEP, NoiseField, noise_fn_for_windows
from hyperldm_engine.diffusion.samplers import make_sampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import InputError, ResourceError
from hyperldm_engine.io.raster import SceneStatistics, normalise_rgb
from hyperldm_engine.tiling.runner import TileRequest
from hyperldm_engine.tiling.windows import crop_to, pad_to_multiple

DEFAULT_STEPS = 10
DEFAULT_SAMPLER = "ddim"


@dataclass(frozen=True)
class SamplingOptions:
    """How to draw samples: K, the seed of the scene-level noise field, sampler and its steps.

    ``noise_scale`` rescales the schedule's betas (0.5x / 1x / 2x, the paper's Table IV); None keeps
    the schedule the model was trained with.
    """

    samples: int = 1
    seed: int = 0
    sampler: str = DEFAULT_SAMPLER
    steps: int = DEFAULT_STEPS
    eta: float = 0.0
    noise_scale: float | None = None

    def validate(self) -> None:
        if int(self.samples) < 1:
            raise InputError(f"--samples must be at least 1, got {self.samples}")
        if int(self.steps) < 1:
            raise InputError(f"--steps must be at least 1, got {self.steps}")
        if self.sampler not in ("ddpm", "ddim"):
            raise InputError(f"unknown sampler {self.sampler!r}; choose ddpm or ddim")
        if not 0.0 <= float(self.eta) <= 1.0:
            raise InputError(f"--eta must be in [0, 1], got {self.eta}")
        if self.noise_scale is not None and not self.noise_scale > 0:
            raise InputError(f"noise scale must be positive, got {self.noise_scale}")


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available); a missing GPU is a clear error."""
    key = str(name).lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ResourceError(f"--device {name}: no CUDA GPU is available to this torch "
                                f"(torch {torch.__version__}); use --device cpu or auto")
        return torch.device(key)
    raise InputError(f"unknown device {name!r}; choose cpu, cuda or auto")


def class_groups(library_classes: list[str]) -> tuple[list[str], np.ndarray]:
    """Group library spectra by class: names and a (n_groups, n_g) 0/1 matrix summing abundances."""
    names = sorted(set(library_classes))
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(names), len(library_classes)), np.float32)
    for j, c in enumerate(library_classes):
        matrix[index[c], j] = 1.0
    return names, matrix


@dataclass
class SynthesisTileFn:
    """Picklable tile function for the runners: loads the bundle lazily (once per process).

    Returns ``{"s0": cube, ..., "abundances": groups}``: K cubes (n_bands, h, w) and, when asked, the
    per-class abundance sums averaged over the K samples.
    """

    bundle_path: str
    options: SamplingOptions
    statistics: SceneStatistics
    device: str = "cpu"
    abundances: bool = False
    autocast: str | None = None  # "bf16" / "fp16" on CUDA; None keeps float32
    _state: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_state"] = None
        return state

    def _load(self) -> Any:
        if self._state is None:
            self._state = _load_state(self.bundle_path, self.device, self.options.sampler,
                                      self.options.steps, self.options.eta, self.options.noise_scale)
        return self._state

    def __call__(self, request: TileRequest) -> dict[str, np.ndarray]:
        bundle, sampler, device, groups = self._load()
        cfg = bundle.config
        factor = cfg.vqgan.downsample_factor
        align = factor * cfg.denoiser.alignment
        rgb = normalise_rgb(request.rgb, self.statistics)
        rgb = np.where(request.mask[None], rgb, 0.0).astype(np.float32)
        padded, shape = pad_to_multiple(rgb, align, mode="reflect")
        k = int(self.options.samples)
        rows, cols = padded.shape[-2] // factor, padded.shape[-1] // factor
        x_rgb = torch.from_numpy(np.ascontiguousarray(padded))[None].to(device)
        fields = [NoiseField(int(self.options.seed), s, cfg.vqgan.latent_channels) for s in range(k)]
        noise_fn = noise_fn_for_windows(fields, [request.latent_origin] * k, rows, cols, device=device)
        with torch.inference_mode(), self._autocast(device):
            cond = bundle.denoiser.encode_condition(x_rgb)

            def eps_fn(x_t: torch.Tensor, t: int) -> torch.Tensor:
                return bundle.denoiser(x_t, torch.full((k,), t, device=device, dtype=torch.long), cond)

            latents = sampler.sample(eps_fn, noise_fn(INITIAL_STEP), noise_fn)
            z_q = bundle.vqgan.quantize(latents.float() / bundle.latent_scale).z_q
            out = bundle.vqgan.decode(z_q, x_rgb.expand(k, -1, -1, -1), return_abundances=self.abundances)
        cubes = crop_to(out.hsi.float().cpu().numpy(), shape)
        result = {f"s{s}": np.ascontiguousarray(cubes[s]) for s in range(k)}
        if self.abundances:
            a = out.abundances.float().mean(dim=0)  # (n_g, H, W), mean over samples
            grouped = torch.einsum("gn,nhw->ghw", groups, a)
            result["abundances"] = np.ascontiguousarray(crop_to(grouped.cpu().numpy(), shape))
        return result

    def _autocast(self, device: torch.device) -> Any:
        if self.autocast is None or device.type != "cuda":
            return torch.autocast(device.type, enabled=False)
        dtype = torch.bfloat16 if self.autocast == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)


@functools.lru_cache(maxsize=2)
def _load_state(bundle_path: str, device_name: str, sampler_name: str, steps: int, eta: float,
                noise_scale: float | None) -> tuple[Any, Any, torch.device, torch.Tensor]:
    """Bundle, sampler, device and class-group matrix, loaded once per process (dask workers too)."""
    from hyperldm_engine.models.bundle import load_bundle

    device = resolve_device(device_name)
    bundle = load_bundle(bundle_path, device=device).eval()
    schedule = NoiseSchedule.from_dict(bundle.schedule)
    if noise_scale is not None:
        p = schedule.params
        schedule = NoiseSchedule.linear(num_steps=schedule.num_steps, beta_start=p["beta_start"],
                                        beta_end=p["beta_end"], noise_scale=noise_scale)
    sampler = make_sampler(sampler_name, schedule, None if sampler_name == "ddpm" else steps, eta=eta)
    groups = torch.from_numpy(class_groups(bundle.library_classes)[1]).to(device)
    return bundle, sampler, device, groups


def bundle_summary(bundle_path: str | Path) -> dict[str, Any]:
    """What the writer needs from a bundle: bands, wavelengths, FWHM, alignment, class groups, GSD."""
    from hyperldm_engine.models.bundle import load_bundle

    bundle = load_bundle(bundle_path, device="cpu")
    cfg = bundle.config
    return {
        "n_bands": cfg.n_bands,
        "wavelengths_nm": np.asarray(bundle.sensor_centers_nm, float),
        "fwhm_nm": np.asarray(bundle.sensor_fwhm_nm, float),
        "factor": cfg.vqgan.downsample_factor,
        "align": cfg.vqgan.downsample_factor * cfg.denoiser.alignment,
        "groups": class_groups(bundle.library_classes)[0],
        "gsd_m": (bundle.training or {}).get("gsd_m"),
        "class_names": list(bundle.class_names),
    }
