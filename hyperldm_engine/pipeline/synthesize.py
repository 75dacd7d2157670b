"""Synthesis: RGB tiles -> K diverse hyperspectral cubes through latent diffusion and the VQGAN decoder.

Per tile: the RGB is normalised with the scene's statistics (never per tile), padded at the far
sides to the model's alignment, the denoiser's condition is computed once, K latents are denoised
together (batch = samples; with ``--batch-size`` B tiles x K samples) from the scene-level noise
field (so overlapping tiles draw the same noise), rescaled by ``1 / latent_scale``, quantised to the
codebook and decoded with the RGB condition into ``t * (R @ A)``. The sampling loop lives here, not
in the models (diffusers' split).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperldm_engine.device import resolve_device
from hyperldm_engine.diffusion.noise import INITIAL_STEP, NoiseField, noise_fn_for_windows
from hyperldm_engine.diffusion.parameterization import denoiser_eps_fn
from hyperldm_engine.diffusion.samplers import DEFAULT_STEPS, make_sampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import InputError
from hyperldm_engine.io.raster import SceneStatistics, harmonised, normalise_rgb
from hyperldm_engine.models.vqgan import decode_shared_condition, repeat_per_tile
from hyperldm_engine.simulate.harmonise import training_camera
from hyperldm_engine.spectral.consistency import (
    RGB_CORRECTIONS,
    library_covariance,
    project_ensemble,
    project_to_rgb,
    uncertain_target,
)
from hyperldm_engine.spectral.fusion import anchor_sees_toa
from hyperldm_engine.spectral.groups import GROUPS, abundance_groups, group_matrix
from hyperldm_engine.tiling.runner import TileRequest
from hyperldm_engine.tiling.windows import crop_to, pad_to_multiple
from hyperldm_engine.timings import timed

DEFAULT_SAMPLER = "ddim"
#: DDIM stochasticity: 1 behaves like the paper's ancestral sampler on a 20-step grid (measured best
#: of eta 0 / 0.5 / 1 on held-out scenes, see benchmarks/RESULTS.md "Sampler settings").
DEFAULT_ETA = 1.0
#: "sample": K draws from the latent diffusion (the paper; with a bundle's latent anchor, started from
#: the anchor noised to ``anchor_strength``); "mean": one deterministic estimate of the posterior mean
#: (the decoded anchor, the zero-latent decoder of a bundle trained with latent dropout, or else the
#: average of ``mean_draws`` samples: see :func:`mean_estimate`).
SYNTHESIS_MODES = ("sample", "mean")
#: samples averaged by ``--mode mean`` for bundles without an RGB-only path: on four held-out scenes the
#: mean of 5 gains 1.2-1.7 dB over one sample, of 8 a further ~0.1 dB (benchmarks/RESULTS.md "Sampler steps")
DEFAULT_MEAN_DRAWS = 8
#: DDIM steps of ``--mode mean`` when none are given: its average gains from more diverse draws (mean of 8
#: at 10 steps against 4: 30.93 / 30.61 dB on the held-out scenes, real Landsat 8 NDVI r 0.643 / 0.560)
DEFAULT_MEAN_STEPS = 10
#: ``--mode mean`` centred on a bundle's mean-mode anchor (``consistency.anchor_mean``): draws and DDIM steps
#: when none are given. With a ridge and a residual CNN fused jointly (``measure_error_covariance.py --mean-anchor
#: ridge+cnn``; not in the default model) 2 draws at 4 steps measured as accurate as 8 at 10 on the held-out
#: scenes (35.21 dB, SAM 0.129, both), the whole command x3.4 faster: the fused centre is mostly the maps'
#: (benchmarks/RESULTS.md, "A residual-CNN anchor for the mean mode")
ANCHORED_MEAN_DRAWS = 2
ANCHORED_MEAN_STEPS = DEFAULT_STEPS
#: draws decoded together in the mean mode: memory stays that of two samples whatever ``mean_draws`` is
MEAN_DRAW_CHUNK = 2


def default_steps(mode: str, mean_anchor: bool = False) -> int:
    """The DDIM steps used when none are given: ``DEFAULT_STEPS`` for samples; for the mean
    ``DEFAULT_MEAN_STEPS``, or ``ANCHORED_MEAN_STEPS`` when it is centred on a mean-mode anchor."""
    if mode != "mean":
        return DEFAULT_STEPS
    return ANCHORED_MEAN_STEPS if mean_anchor else DEFAULT_MEAN_STEPS


def default_mean_draws(mean_anchor: bool = False) -> int:
    """The mean mode's draws when none are given: ``ANCHORED_MEAN_DRAWS`` when it is centred on a mean-mode
    anchor, else ``DEFAULT_MEAN_DRAWS``."""
    return ANCHORED_MEAN_DRAWS if mean_anchor else DEFAULT_MEAN_DRAWS


def with_defaults(sampling: SamplingOptions, mean_anchor: bool = False) -> SamplingOptions:
    """``sampling`` with the steps and mean draws left open (None) set to this run's defaults
    (:func:`default_steps`, :func:`default_mean_draws`)."""
    return replace(sampling,
                   steps=default_steps(sampling.mode, mean_anchor) if sampling.steps is None else sampling.steps,
                   mean_draws=default_mean_draws(mean_anchor) if sampling.mean_draws is None else sampling.mean_draws)


@dataclass(frozen=True)
class SamplingOptions:
    """How to draw samples: K, the seed of the scene-level noise field, sampler and its steps.

    ``noise_scale`` rescales the schedule's betas (0.5x / 1x / 2x, the paper's Table IV); None keeps
    the schedule the model was trained with.
    """

    samples: int = 1
    seed: int = 0
    sampler: str = DEFAULT_SAMPLER
    #: None: the run's default (:func:`with_defaults`: it depends on the mode and the bundle)
    steps: int | None = DEFAULT_STEPS
    eta: float = DEFAULT_ETA
    noise_scale: float | None = None
    mode: str = "sample"  # SYNTHESIS_MODES: "sample" draws K latents; "mean" decodes the RGB alone
    #: where sampling starts, as a fraction of the diffusion's T steps, for bundles with a latent
    #: anchor: 1 = pure noise (the paper), lower = the anchor noised to that step (less spread, closer
    #: to the anchor); None = the bundle's default. Ignored by bundles without an anchor.
    anchor_strength: float | None = None
    #: ``mode="mean"`` for bundles without an RGB-only path: how many samples are averaged (None: the run's
    #: default, :func:`with_defaults`)
    mean_draws: int | None = DEFAULT_MEAN_DRAWS

    def validate(self) -> None:
        if self.mode not in SYNTHESIS_MODES:
            raise InputError(f"unknown --mode {self.mode!r}; choose one of {', '.join(SYNTHESIS_MODES)}")
        if self.mode == "mean" and int(self.samples) != 1:
            raise InputError("--mode mean writes one deterministic cube; leave out --samples (or use 1)")
        if int(self.samples) < 1:
            raise InputError(f"--samples must be at least 1, got {self.samples}")
        if self.mean_draws is not None and int(self.mean_draws) < 1:
            raise InputError(f"--mean-draws must be at least 1, got {self.mean_draws}")
        if self.steps is not None and int(self.steps) < 1:
            raise InputError(f"--steps must be at least 1, got {self.steps}")
        if self.sampler not in ("ddpm", "ddim"):
            raise InputError(f"unknown sampler {self.sampler!r}; choose ddpm or ddim")
        if not 0.0 <= float(self.eta) <= 1.0:
            raise InputError(f"--eta must be in [0, 1], got {self.eta}")
        if self.noise_scale is not None and not self.noise_scale > 0:
            raise InputError(f"noise scale must be positive, got {self.noise_scale}")
        if self.anchor_strength is not None and not 0.0 < float(self.anchor_strength) <= 1.0:
            raise InputError(f"--anchor-strength must be in (0, 1], got {self.anchor_strength}")


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
    #: input sensor response (3, n_bands) on the model's bands: when given, every cube is projected so
    #: that it reproduces the input RGB exactly (``spectral.consistency``; or ``rgb_target``'s RGB, as far as
    #: ``rgb_noise`` allows); None leaves cubes as decoded
    rgb_response: np.ndarray | None = None
    #: how that projection spreads the RGB residual over the bands (``spectral.consistency.RGB_CORRECTIONS``):
    #: "minimum", the smallest change (visible bands only); "spectral", weighted by the bundle's error
    #: covariance; "ensemble", the K draws' mean weighted, their deviations by the smallest change;
    #: "anchored", as ensemble about the mean fused with the bundle's anchor (``spectral.fusion``; in the mean mode
    #: its mean-mode anchor where it has one)
    rgb_correction: str = "minimum"
    #: "class": abundances summed by the library's classes; "material": by ``spectral.groups.GROUPS``
    abundance_grouping: str = "class"
    #: the input is top-of-atmosphere reflectance: "anchored" uses the bundle's TOA anchor where it has one
    toa_input: bool = False
    #: (3, 4) affine map of the input RGB onto the projection's target (``io.raster.harmonised``): on TOA
    #: input the input sensor's surface RGB (``simulate.harmonise.surface_estimate``); None: the input RGB
    rgb_target: list[list[float]] | None = None
    #: (3, 3) error covariance of that target when it is an estimate (TOA input): the correction meets it
    #: only as far as its error allows (``spectral.consistency.uncertain_target``); None: exact
    rgb_noise: list[list[float]] | None = None
    #: re-weight the abundances by the bundle's class-group prior from the RGB (``spectral.groups.GroupPrior``),
    #: where it has one
    abundance_prior: bool = True
    _state: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_state"] = None
        return state

    def load(self) -> tuple[Any, Any, torch.device, torch.Tensor]:
        """(bundle, sampler, device, class-group matrix), loaded once per process and cached."""
        if self._state is None:
            self._state = _load_state(self.bundle_path, self.device, self.options.sampler,
                                      self.options.steps, self.options.eta, self.options.noise_scale,
                                      self.options.anchor_strength)
        return self._state

    def __call__(self, request: TileRequest) -> dict[str, np.ndarray]:
        """One tile: the one-tile case of :meth:`batch` (a single code path for both)."""
        return self.batch([request])[0]

    def batch(self, requests: Sequence[TileRequest]) -> list[dict[str, np.ndarray]]:
        """Several tiles in one model call (``--batch-size``): one output per request, in order.

        B tiles x K samples are denoised as one U-Net batch of B*K, so a GPU runs fewer, larger
        kernels. Each tile's output equals its one-tile call up to the float rounding of batched
        convolutions: its condition is its own, its noise comes from the same scene-level fields at
        its own latent origin. Tiles of different shapes (edge tiles) run as separate batches.
        """
        requests = list(requests)
        outputs: list[dict[str, np.ndarray]] = [{} for _ in requests]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, request in enumerate(requests):
            by_shape.setdefault(tuple(request.rgb.shape[-2:]), []).append(i)
        for members in by_shape.values():
            for i, out in zip(members, self._batch_same_shape([requests[i] for i in members]), strict=True):
                outputs[i] = out
        return outputs

    @timed("tile: other")
    def _batch_same_shape(self, requests: list[TileRequest]) -> list[dict[str, np.ndarray]]:
        """:meth:`batch` for tiles of one shape. Batch element ``b * K + s`` is tile ``b``, sample ``s``."""
        bundle, sampler, device, groups = self.load()
        cfg = bundle.config
        factor = cfg.vqgan.downsample_factor
        align = factor * cfg.denoiser.alignment
        padded, shape = [], (0, 0)
        for request in requests:
            rgb = normalise_rgb(request.rgb, self.statistics)
            rgb = np.where(request.mask[None], rgb, 0.0).astype(np.float32)
            tile, shape = pad_to_multiple(rgb, align, mode="reflect")
            padded.append(tile)
        b, k = len(requests), int(self.options.samples)
        x_rgb = _to_model(torch.from_numpy(np.stack(padded)), device)  # (B, 3, H, W)
        raw = None
        if self.rgb_response is not None:
            raw = torch.from_numpy(np.stack([pad_to_multiple(
                np.where(r.mask[None], harmonised(r.rgb, self.rgb_target), 0.0).astype(np.float32),
                align, mode="reflect")[0] for r in requests]))
        origins = [request.latent_origin for request in requests]
        with torch.inference_mode(), self._autocast(device):
            # the anchor (scaled latent units) only where it is used: the mean mode, or sampling that
            # starts below pure noise (at strength 1 it would be computed for nothing)
            start = sampler.timesteps[0]
            used = bundle.anchor is not None and (self.options.mode == "mean" or start < sampler.schedule.num_steps - 1)
            anchor = bundle.anchor(x_rgb).float() if used else None
        if self.options.mode == "sample":
            hsi, ab = self._draw(bundle, sampler, x_rgb, raw, origins, list(range(k)), anchor, start)
        elif mean_estimate(bundle.anchor is not None, cfg.vqgan.latent_dropout) == "samples":
            hsi, ab = self._mean_of_draws(bundle, sampler, x_rgb, raw, origins, anchor, start)
            k = 1
        else:  # the RGB-only path: the decoded anchor, or the zero latent of a latent-dropout decoder
            with torch.inference_mode():
                z_q = (torch.zeros(b, cfg.vqgan.latent_channels, x_rgb.shape[-2] // factor, x_rgb.shape[-1] // factor,
                                   device=device) if anchor is None else anchor / bundle.latent_scale)
                hsi, ab = decode_shared_condition(bundle.vqgan, z_q, x_rgb, self.abundances)
                if raw is not None:
                    hsi = self._consistent(bundle, hsi.float(), raw.to(device), 1, x_rgb)
        with torch.inference_mode():
            cubes = crop_to(hsi.float().cpu().numpy(), shape)
            matrix = groups if self.abundance_grouping == "class" else torch.from_numpy(
                abundance_groups(tuple(bundle.library_classes), self.abundance_grouping)[1]).to(device)
            prior = bundle.abundance_prior if self.abundance_prior else None
            band_groups = None if prior is None else self._band_groups(bundle, device)
            results = []
            for i in range(b):
                result = {f"s{s}": np.ascontiguousarray(cubes[i * k + s]) for s in range(k)}
                if self.abundances:
                    a = ab[i * k:(i + 1) * k].float().mean(dim=0)  # (n_g, H, W), mean over samples
                    grouped = torch.einsum("gn,nhw->ghw", matrix, a)
                    if prior is not None:  # = re-weighting each spectrum, as every band lies in one group
                        grouped = prior.reweight(grouped, x_rgb[i].float(), band_groups)
                    result["abundances"] = np.ascontiguousarray(crop_to(grouped.cpu().numpy(), shape))
                results.append(result)
        return results

    def _band_groups(self, bundle: Any, device: torch.device) -> torch.Tensor:
        """(len(GROUPS), n_bands) membership of the abundances output's bands in the material groups: the
        group prior re-weights the summed bands (a few) rather than every library spectrum (hundreds, and
        as many full-tile temporaries), which gives the same result since no band spans two groups."""
        if self.abundance_grouping == "material":
            return torch.eye(len(GROUPS), device=device)
        names = abundance_groups(tuple(bundle.library_classes), self.abundance_grouping)[0]
        return torch.from_numpy(group_matrix(list(names))).to(device)

    def _mean_of_draws(self, bundle: Any, sampler: Any, x_rgb: torch.Tensor, raw: torch.Tensor | None,
                       origins: list[tuple[int, int]], anchor: torch.Tensor | None,
                       start: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The Monte-Carlo posterior mean: each tile's ``mean_draws`` samples averaged, decoded
        ``MEAN_DRAW_CHUNK`` at a time (memory of two samples). Draw i uses noise field i, as sample i
        of ``--mode sample`` does, so the mean of 8 equals the mean of the 8 files ``--samples 8`` writes."""
        b, draws = x_rgb.shape[0], int(self.options.mean_draws)
        hsi_sum: torch.Tensor | None = None
        ab_sum: torch.Tensor | None = None
        for first in range(0, draws, MEAN_DRAW_CHUNK):
            part = list(range(first, min(first + MEAN_DRAW_CHUNK, draws)))
            hsi, ab = self._draw(bundle, sampler, x_rgb, raw, origins, part, anchor, start)
            hsi = hsi.float().view(b, len(part), *hsi.shape[1:]).sum(dim=1)  # (B, bands, H, W)
            hsi_sum = hsi if hsi_sum is None else hsi_sum + hsi
            if ab is not None:
                ab = ab.float().view(b, len(part), *ab.shape[1:]).sum(dim=1)
                ab_sum = ab if ab_sum is None else ab_sum + ab
        assert hsi_sum is not None
        return hsi_sum / draws, None if ab_sum is None else ab_sum / draws

    def _draw(self, bundle: Any, sampler: Any, x_rgb: torch.Tensor, raw: torch.Tensor | None,
              origins: list[tuple[int, int]], draws: list[int], anchor: torch.Tensor | None,
              start: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Samples number ``draws`` of every tile, decoded (and projected to the RGB when asked):
        element ``b * len(draws) + i`` is tile ``b``, draw ``draws[i]`` from its own scene-level noise
        field, so the same draw agrees on overlapping tiles whatever the batch or chunk."""
        cfg = bundle.config
        device = x_rgb.device
        factor = cfg.vqgan.downsample_factor
        rows, cols = x_rgb.shape[-2] // factor, x_rgb.shape[-1] // factor
        n = len(draws)
        fields = [NoiseField(int(self.options.seed), s, cfg.vqgan.latent_channels) for s in draws]
        # DDPM / eta > 0: the next step's noise is drawn on a thread while the U-Net runs
        noisy = any(sampler.needs_noise(t) for t in sampler.timesteps)
        noise_fn = noise_fn_for_windows(fields * len(origins), [o for o in origins for _ in range(n)], rows, cols,
                                        device=device, prefetch=noisy)
        with torch.inference_mode(), self._autocast(device):
            latents = self._sample_latents(bundle, sampler, x_rgb, noise_fn, n, anchor, start)
        with torch.inference_mode():  # quantise and decode in float32: the codebook lookup is exact
            z_q = bundle.vqgan.quantize(latents.float() / bundle.latent_scale).z_q
            hsi, ab = decode_shared_condition(bundle.vqgan, z_q, x_rgb, self.abundances)
            if raw is not None:
                hsi = self._consistent(bundle, hsi.float(), raw.to(device), n, x_rgb)
        return hsi, ab

    def _consistent(self, bundle: Any, hsi: torch.Tensor, raw: torch.Tensor, n: int,
                    x_rgb: torch.Tensor) -> torch.Tensor:
        """``hsi`` (B * n, bands, H, W), n draws per tile, made to reproduce each tile's RGB ``raw``
        (B, 3, H, W; with ``rgb_noise``, moved towards it as far as its error allows) by ``rgb_correction``
        ("ensemble", "anchored": over the n draws of each tile; "anchored" centres them on the fusion with
        the bundle's regression anchor of ``x_rgb``, the normalised RGB the model saw)."""
        mean = self.options.mode == "mean"
        covariance = correction_covariance(bundle, self.rgb_correction, self.toa_input, mean)
        if self.rgb_correction not in ("ensemble", "anchored"):
            target = self._target(hsi, repeat_per_tile(raw, n), covariance)
            return project_to_rgb(hsi, target, self.rgb_response, covariance=covariance)
        b = raw.shape[0]
        draws = hsi.view(b, n, *hsi.shape[1:])
        centre = None
        if self.rgb_correction == "anchored":
            anchor = correction_anchor(bundle, self.toa_input, mean)
            centre = anchor.centre(draws.mean(dim=1, keepdim=True), anchor.predict(x_rgb.float())[:, None])
        start = draws.mean(dim=1, keepdim=True) if centre is None else centre
        target = self._target(start, raw[:, None], covariance)
        return project_ensemble(draws, target, self.rgb_response, covariance, axis=1,
                                centre=centre).view(hsi.shape)

    def _target(self, start: torch.Tensor, rgb: torch.Tensor, covariance: np.ndarray | None) -> torch.Tensor:
        """The RGB the correction projects ``start`` onto: ``rgb``, or with ``rgb_noise`` the part of it that
        its error allows (the Kalman update's, :func:`~hyperldm_engine.spectral.consistency.uncertain_target`)."""
        if self.rgb_noise is None:
            return rgb
        return uncertain_target(start, rgb, self.rgb_response, covariance, np.asarray(self.rgb_noise))

    @timed("tile: denoise")
    def _sample_latents(self, bundle: Any, sampler: Any, x_rgb: torch.Tensor, noise_fn: Any, k: int,
                        anchor: torch.Tensor | None = None, start: int | None = None) -> torch.Tensor:
        """K latents per tile from the sampler (scaled latent units), whatever the model predicts.

        With an ``anchor`` (B, n_x, h, w) the reverse process starts at timestep ``start`` from the
        anchor noised by the forward process, ``sqrt(ab) anchor + sqrt(1 - ab) noise``, with the same
        scene-level noise that would otherwise be x_T (so tiles still agree on their overlaps)."""
        cond = repeat_per_tile(bundle.denoiser.encode_condition(x_rgb), k)  # once per tile, all steps
        n = x_rgb.shape[0] * k
        device = x_rgb.device
        alpha_bar = sampler.schedule.alpha_bar.tolist()
        eps_fn = denoiser_eps_fn(bundle.denoiser, cond, bundle.config.denoiser.prediction, alpha_bar,
                                 sampler.timesteps, n, device)
        x_start = _to_model(noise_fn(INITIAL_STEP), device)
        if anchor is not None and start is not None and start < len(alpha_bar) - 1:
            a = alpha_bar[start]
            x_start = a ** 0.5 * repeat_per_tile(anchor, k).to(x_start.dtype) + (1.0 - a) ** 0.5 * x_start
        return sampler.sample(eps_fn, x_start, noise_fn)

    def _autocast(self, device: torch.device) -> Any:
        """bf16 / fp16 autocast of the denoiser (CUDA, and CPU where torch supports it); else off."""
        if self.autocast is None:
            return torch.autocast(device.type, enabled=False)
        if self.autocast not in ("bf16", "fp16"):
            raise InputError(f"--autocast must be bf16 or fp16, got {self.autocast!r}")
        dtype = torch.bfloat16 if self.autocast == "bf16" else torch.float16
        return torch.autocast(device.type, dtype=dtype)


def _to_model(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A (B, C, H, W) input on ``device`` in channels-last layout (the layout the models run in)."""
    return x.to(device).contiguous(memory_format=torch.channels_last)


@functools.lru_cache(maxsize=2)
def _load_state(bundle_path: str, device_name: str, sampler_name: str, steps: int, eta: float,
                noise_scale: float | None, anchor_strength: float | None = None
                ) -> tuple[Any, Any, torch.device, torch.Tensor]:
    """Bundle, sampler, device and class-group matrix, loaded once per process (dask workers too)."""
    from hyperldm_engine.models.bundle import load_bundle

    device = resolve_device(device_name)
    summarised = _summarised.pop(bundle_path, None) if device.type == "cpu" else None
    _summarised.clear()
    bundle = (summarised or load_bundle(bundle_path, device=device)).eval()
    # channels-last: the PixelNorm layers already return channels-last tensors, so convolutions
    # run without layout conversions (about 1.5x faster U-Net steps on CPU, the same on CUDA).
    bundle.denoiser.to(memory_format=torch.channels_last)
    bundle.vqgan.to(memory_format=torch.channels_last)
    from hyperldm_engine.runtime import accelerate  # HYPERLDM_RUNTIME=onnxruntime: ONNX Runtime on CPU (opt-in)
    bundle = accelerate(bundle, device.type)
    schedule = NoiseSchedule.from_dict(bundle.schedule)
    if noise_scale is not None:
        p = schedule.params
        schedule = NoiseSchedule.linear(num_steps=schedule.num_steps, beta_start=p["beta_start"],
                                        beta_end=p["beta_end"], noise_scale=noise_scale)
    start = anchor_start(bundle, schedule.num_steps, anchor_strength)
    if start is not None and sampler_name == "ddim":
        steps = min(int(steps), start + 1)
    sampler = make_sampler(sampler_name, schedule, None if sampler_name == "ddpm" else steps, eta=eta,
                           clip_x0=bundle.codebook_range(), start=start if sampler_name == "ddim" else None)
    groups = torch.from_numpy(abundance_groups(tuple(bundle.library_classes), "class")[1]).to(device)
    return bundle, sampler, device, groups


def correction_anchor(bundle: Any, toa: bool = False, mean: bool = False) -> Any:
    """The anchor (a ridge or a residual CNN, ``spectral.fusion``) of ``--rgb-correction anchored`` for
    surface (or, ``toa``, top-of-atmosphere) input in sample (or, ``mean``, the mean) mode: on TOA input the
    bundle's TOA anchor where it has one; in the mean mode its mean-mode anchor where it has one; else its
    surface anchor; None without any."""
    if toa and bundle.correction_anchor_toa is not None:
        return bundle.correction_anchor_toa
    if mean and bundle.correction_anchor_mean is not None:
        return bundle.correction_anchor_mean
    return bundle.correction_anchor


def correction_covariance(bundle: Any, correction: str, toa: bool = False, mean: bool = False) -> np.ndarray | None:
    """The prior covariance of ``--rgb-correction``: None for "minimum" (the smallest change); for
    "anchored" the fused centre's (InputError without a regression anchor); for "spectral" and "ensemble"
    the bundle's measured error covariance, else (bundles without one) the covariance of its spectral library."""
    if correction not in RGB_CORRECTIONS:
        raise InputError(f"unknown --rgb-correction {correction!r}; choose one of {', '.join(RGB_CORRECTIONS)}")
    if correction == "minimum":
        return None
    if correction == "anchored":
        anchor = correction_anchor(bundle, toa, mean)
        if anchor is None:
            raise InputError("--rgb-correction anchored needs a bundle with a measured regression anchor "
                             "(scripts/measure_error_covariance.py); this one has none: use ensemble")
        return anchor.covariance
    if bundle.consistency_covariance is not None:
        return bundle.consistency_covariance
    return library_covariance(bundle.library.detach().cpu().double().numpy())


def anchor_start(bundle: Any, num_steps: int, strength: float | None) -> int | None:
    """The first timestep of anchored sampling, ``round(strength * (T - 1))``; None without an anchor
    (or at strength 1: pure noise, the paper's sampling)."""
    if bundle.anchor is None:
        return None
    s = float(bundle.anchor.config.strength if strength is None else strength)
    start = round(s * (num_steps - 1))
    return None if start >= num_steps - 1 else max(start, 0)


#: the bundle :func:`bundle_summary` loaded (and so checked in full, before any work), by path: the first
#: CPU tile function of this process that loads the same path takes it, so a run loads its model once
_summarised: dict[str, Any] = {}


def bundle_summary(bundle_path: str | Path) -> dict[str, Any]:
    """What the writer needs from a bundle: bands, wavelengths, FWHM, alignment, library classes, GSD."""
    from hyperldm_engine.models.bundle import load_bundle

    bundle = load_bundle(bundle_path, device="cpu")
    _summarised.clear()
    _summarised[str(bundle_path)] = bundle
    cfg = bundle.config
    return {
        "n_bands": cfg.n_bands,
        "wavelengths_nm": np.asarray(bundle.sensor_centers_nm, float),
        "fwhm_nm": np.asarray(bundle.sensor_fwhm_nm, float),
        "factor": cfg.vqgan.downsample_factor,
        "align": cfg.vqgan.downsample_factor * cfg.denoiser.alignment,
        "library_classes": tuple(bundle.library_classes),
        # the training GSD range when recorded (a bundle trained on several GSDs), else its one GSD
        "gsd_m": (bundle.training or {}).get("gsd_range_m") or (bundle.training or {}).get("gsd_m"),
        "training_camera": training_camera(bundle.rgb),
        "class_names": list(bundle.class_names),
        "latent_dropout": cfg.vqgan.latent_dropout,
        "anchor_strength": None if bundle.anchor is None else bundle.anchor.config.strength,
        "correction_prior": correction_prior(bundle),
        "correction_anchor": anchor_description(bundle),
        "correction_anchor_toa": toa_anchor_description(bundle),
        "correction_anchor_mean": anchor_description(bundle, "anchor_mean"),
        "abundance_prior": None if bundle.abundance_prior is None else
        f"power {bundle.abundance_prior.power:g} on a degree-{bundle.abundance_prior.degree} ridge from the RGB "
        "to the land-cover groups",
    }


def correction_prior(bundle: Any) -> str:
    """In words, the covariance ``--rgb-correction spectral`` uses for ``bundle``."""
    if bundle.consistency_covariance is None:
        return f"the covariance of the bundle's {bundle.library.shape[1]} library spectra"
    source = (bundle.consistency_info or {}).get("source", "source not recorded")
    return f"the bundle's measured error covariance ({source})"


def anchor_description(bundle: Any, key: str = "anchor") -> str | None:
    """In words, the anchor ``--rgb-correction anchored`` fuses with (``key`` "anchor_toa": the one for
    top-of-atmosphere input; "anchor_mean": the mean mode's); None where the bundle has none."""
    from hyperldm_engine.models.bundle import ANCHORS

    anchor = getattr(bundle, ANCHORS[key])
    if anchor is None:
        return None
    return (bundle.consistency_info or {}).get(key, {}).get("source", f"{anchor.describe()}, source not recorded")


def toa_anchor_description(bundle: Any) -> str | None:
    """In words, the anchor that corrects top-of-atmosphere input: the bundle's TOA anchor, or its anchor when
    that was measured on TOA scenes too; None when neither has seen TOA scenes (``auto`` is then minimum)."""
    if bundle.correction_anchor_toa is not None:
        return anchor_description(bundle, "anchor_toa")
    if bundle.correction_anchor is not None and anchor_sees_toa((bundle.consistency_info or {}).get("anchor")):
        return anchor_description(bundle)
    return None


def mean_estimate(has_anchor: bool, latent_dropout: float) -> str:
    """What ``--mode mean`` writes for a bundle: "anchor" (its latent anchor decoded), "rgb-only" (the
    zero-latent decoder of a bundle trained with latent dropout) or "samples" (the average of
    ``mean_draws`` samples: the Monte-Carlo posterior mean, for bundles with no RGB-only path)."""
    if has_anchor:
        return "anchor"
    return "rgb-only" if latent_dropout else "samples"
