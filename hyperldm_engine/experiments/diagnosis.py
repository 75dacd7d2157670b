"""Diagnosis of a bundle: where between the RGB and the cube the quality is lost (issue 20, item 1).

On held-out simulated scenes (``quality.heldout_scenes``: held-out spectra and seeds, GSDs cycled)
it measures, with the engine's own pieces so that the numbers are what users get:

- the decoder fed (a) the encoder's quantised latents (``quality.vqgan_reconstruct``, the quality
  report's reconstruction row), (b) a zero latent, the mean latent and spatially shuffled encoder
  latents (the RGB-conditioned decoder alone), (c) latents sampled by the scene pipeline's tile
  function (``pipeline.synthesize.SynthesisTileFn``, DDIM at several step counts and eta 0 / 1);
- the statistics of the sampler's latents (x_t and its x0 estimate ``pred_original_sample``) along
  the trajectory against the encoder's latents, per channel;
- the denoiser's error per timestep on the held-out encoder latents (eps and x0, against the
  trivial predictor that knows only the mean latent), whatever the model predicts
  (``config.denoiser.prediction``: epsilon, x0 or v);
- the RGB condition's effect: zeroed or shuffled (across pixels, across patches) for the decoder
  and for the denoiser;
- a per-pixel ridge regression (``train.baselines.RidgeRegressor``, degree 2, fitted on the bundle's
  training scenes) for reference;

then writes a short "what explains the loss" paragraph derived from those numbers by fixed rules.

Every MPSNR is given with two peaks: ``peak 1`` (reflectance data range 1.0, pooled over scenes,
the quality report's definition) and ``band range`` (each band's own max - min in each reference
scene, averaged over scenes; the definition of ``docs/design`` section 7). SAM is in radians.

``run_diagnosis`` writes ``diagnosis.json``, ``diagnosis.md`` and two figures into the output folder.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperldm_engine.errors import InputError, OutputError
from hyperldm_engine.experiments.common import display_path
from hyperldm_engine.experiments.quality import (
    QualitySettings,
    _jsonable,
    _log,
    heldout_plan,
    heldout_scenes,
    training_scenes,
    vqgan_reconstruct,
)
from hyperldm_engine.experiments.report import has_section, markers, replace_marked_section
from hyperldm_engine.metrics.similarity import ErrorSums, psnr_from_mse, similarity_sums
from hyperldm_engine.train.baselines import PairedScene, RidgeRegressor, normalised_rgb

PEAK_NOTE = ("MPSNR peak: 'peak 1' = reflectance data range 1.0, pooled over scenes (quality report); "
             "'band range' = each band's own max - min in each reference scene, mean over scenes")
#: rule thresholds of the "what explains the loss" paragraph (dB unless stated)
NEAR_DB = 1.0            # two MPSNRs within this are "about the same"
CONDITION_USED_DB = 1.0  # shuffling the RGB must cost at least this much for the condition to count
STD_TOLERANCE = 0.2      # sampled latent std within 20 % of the encoder's is "matched"


@dataclass(frozen=True)
class DiagnosisSettings:
    """What the diagnosis measures: scenes, samples per setting, sampler grid, timesteps probed."""

    scenes: int = 4
    size: int = 128
    samples: int = 4
    steps: tuple[int, ...] = (5, 10, 20, 50, 100)
    etas: tuple[float, ...] = (0.0, 1.0)
    timesteps: int = 11          # timesteps probed for the denoiser's error, spread over 0..T-1
    eps_draws: int = 2           # noise draws per probed timestep and scene
    patch: int = 16              # side (px) of the patches shuffled in the patch-shuffle condition
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    quick: bool = False

    @classmethod
    def quick_settings(cls, **changes: Any) -> DiagnosisSettings:
        """A seconds-long smoke run: two small scenes, two step counts, two samples."""
        base = dict(scenes=2, size=32, samples=2, steps=(2, 5), timesteps=3, eps_draws=1, patch=8, quick=True)
        return cls(**{**base, **changes})

    def validate(self, align: int, num_steps: int) -> None:
        if self.scenes < 1:
            raise InputError(f"--scenes must be at least 1, got {self.scenes}")
        if self.size < align or self.size % align:
            raise InputError(f"--size must be a positive multiple of the model's alignment {align} px, "
                             f"got {self.size}")
        if self.samples < 2:
            raise InputError(f"--samples must be at least 2 (one sample and the mean of K), got {self.samples}")
        if not self.steps or any(not 1 <= s <= num_steps for s in self.steps):
            raise InputError(f"sampler steps must lie in 1..{num_steps}, got {list(self.steps)}")
        if self.patch < 1 or self.size % self.patch:
            raise InputError(f"patch side {self.patch} must divide the scene size {self.size}")


# ---- scoring ------------------------------------------------------------------------------------------

class Scores:
    """Pooled error sums (peak 1) and per-scene MPSNR with each band's own range as peak, of one method."""

    def __init__(self) -> None:
        self.total: ErrorSums | None = None
        self.band_range_mpsnr: list[float] = []
        self.scene_mpsnr: list[float] = []

    def add(self, pred: np.ndarray, ref: np.ndarray) -> None:
        """Score one prediction (bands, h, w) of one scene; several calls for one scene pool their errors."""
        s = similarity_sums(pred, ref, None, data_range=1.0, with_ssim=False)[0]
        if self.total is None:
            self.total = ErrorSums(s.n_bands)
        self.total += s
        span = np.nanmax(ref, axis=(1, 2)).astype(np.float64) - np.nanmin(ref, axis=(1, 2))
        self.band_range_mpsnr.append(float(np.mean(psnr_from_mse(s.band_mse(), 1.0) + 20 * np.log10(span))))
        self.scene_mpsnr.append(s.mpsnr(1.0))

    def result(self) -> dict[str, Any]:
        assert self.total is not None
        return {"mpsnr": self.total.mpsnr(1.0), "mpsnr_band_range": float(np.mean(self.band_range_mpsnr)),
                "sam": self.total.sam(), "rmse": self.total.rmse(), "mrae": self.total.mrae(),
                "n_scored": len(self.scene_mpsnr), "per_scene_mpsnr": self.scene_mpsnr}


class Rows:
    """Named :class:`Scores` in insertion order, with labels."""

    def __init__(self) -> None:
        self.scores: dict[str, Scores] = {}
        self.labels: dict[str, str] = {}

    def add(self, key: str, label: str, pred: np.ndarray, ref: np.ndarray) -> None:
        if key not in self.scores:
            self.scores[key], self.labels[key] = Scores(), label
        self.scores[key].add(pred, ref)

    def results(self) -> dict[str, dict[str, Any]]:
        return {k: {"label": self.labels[k], **s.result()} for k, s in self.scores.items()}


# ---- the denoiser's output, whatever it predicts ------------------------------------------------------

def prediction_type(bundle: Any) -> str:
    """What the denoiser predicts: 'epsilon' (the paper's, and older bundles'), 'x0' or 'v'."""
    value = getattr(bundle.config.denoiser, "prediction", "epsilon")
    return str(getattr(value, "value", value))


def output_to_x0_eps(output: torch.Tensor, x_t: torch.Tensor, alpha_bar: float,
                     prediction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0_hat, eps_hat) from the denoiser's output at noise level ``alpha_bar``.

    Uses ``diffusion.parameterization.model_output_to_x0_eps`` when the engine has it; the local
    formulas are the same conversions (eps: identity; x0: eps = (x_t - sqrt(ab) x0) / sqrt(1 - ab);
    v = sqrt(ab) eps - sqrt(1 - ab) x0).
    """
    try:
        from hyperldm_engine.diffusion.parameterization import model_output_to_x0_eps
    except ImportError:  # pragma: no cover - engines before the prediction types
        model_output_to_x0_eps = None
    if model_output_to_x0_eps is not None:
        return model_output_to_x0_eps(output, x_t, alpha_bar, prediction)
    s, r = alpha_bar ** 0.5, (1.0 - alpha_bar) ** 0.5
    if prediction == "epsilon":
        return (x_t - r * output) / s, output
    if prediction == "x0":
        return output, (x_t - s * output) / r
    if prediction == "v":
        return s * x_t - r * output, r * x_t + s * output
    raise InputError(f"unknown denoiser prediction {prediction!r}")


# ---- conditions ---------------------------------------------------------------------------------------

def shuffle_pixels(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same random permutation of the pixel positions of every channel of ``x`` (C, h, w)."""
    c, h, w = x.shape
    perm = rng.permutation(h * w)
    return np.ascontiguousarray(x.reshape(c, -1)[:, perm].reshape(c, h, w))


def shuffle_patches(x: np.ndarray, patch: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` (C, h, w) cut into ``patch`` x ``patch`` tiles that are put back in a random order."""
    c, h, w = x.shape
    gh, gw = h // patch, w // patch
    tiles = x[:, :gh * patch, :gw * patch].reshape(c, gh, patch, gw, patch).transpose(1, 3, 0, 2, 4)
    tiles = tiles.reshape(gh * gw, c, patch, patch)[rng.permutation(gh * gw)]
    out = x.copy()
    out[:, :gh * patch, :gw * patch] = tiles.reshape(gh, gw, c, patch, patch).transpose(2, 0, 3, 1, 4).reshape(
        c, gh * patch, gw * patch)
    return out


RGB_CONDITIONS = {
    "rgb": "the scene's RGB",
    "zero": "RGB zeroed",
    "shuffled_pixels": "RGB pixels shuffled",
    "shuffled_patches": "RGB patches shuffled",
}


def rgb_variants(rgb: np.ndarray, patch: int, seed: int) -> dict[str, np.ndarray]:
    """The normalised RGB and its three broken versions, keyed as :data:`RGB_CONDITIONS`."""
    rng = np.random.default_rng(seed)
    return {"rgb": rgb, "zero": np.zeros_like(rgb), "shuffled_pixels": shuffle_pixels(rgb, rng),
            "shuffled_patches": shuffle_patches(rgb, patch, rng)}


# ---- sampling with a callback (the tile function's loop, instrumented) --------------------------------

@dataclass
class _Model:
    """The engine's loaded bundle and the pieces the tile function uses."""

    path: str
    bundle: Any
    device: torch.device
    prediction: str
    schedule: Any

    @property
    def scale(self) -> float:
        return float(self.bundle.latent_scale)

    def tensor(self, x: np.ndarray) -> torch.Tensor:
        from hyperldm_engine.pipeline.synthesize import _to_model

        return _to_model(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None], self.device)

    def decode(self, z_q: torch.Tensor, rgb: np.ndarray) -> np.ndarray:
        """Cubes (n, bands, H, W) of latents ``z_q`` (unscaled, n, n_x, h, w) with one RGB condition."""
        from hyperldm_engine.models.vqgan import decode_shared_condition

        with torch.inference_mode():
            hsi, _ = decode_shared_condition(self.bundle.vqgan, z_q.float().to(self.device), self.tensor(rgb), False)
        return hsi.float().cpu().numpy()

    def quantize(self, scaled: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> unscaled codebook vectors, as the tile function does."""
        with torch.inference_mode():
            return self.bundle.vqgan.quantize(scaled.float() / self.bundle.latent_scale).z_q

    def output(self, x_t: torch.Tensor, t: int, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) of the denoiser at timestep ``t`` (no clipping)."""
        steps = torch.full((x_t.shape[0],), t, device=self.device, dtype=torch.long)
        out = self.bundle.denoiser(x_t, steps, cond)
        return output_to_x0_eps(out, x_t, float(self.schedule.alpha_bar[t]), self.prediction)


def sample_latents(model: _Model, sampler: Any, rgb_cond: np.ndarray, samples: int, seed: int,
                   callback: Callable[[int, int, Any], None] | None = None) -> torch.Tensor:
    """K scaled latents (K, n_x, h, w) for one tile at latent origin (0, 0), with the tile function's noise.

    The same loop as ``SynthesisTileFn`` (scene-level noise fields, condition computed once, the
    sampler's x0 clipping), with the denoiser's output converted to eps for the eps-based samplers
    and the sampler's ``callback`` exposed.
    """
    from hyperldm_engine.diffusion.noise import INITIAL_STEP, NoiseField, noise_fn_for_windows
    from hyperldm_engine.models.vqgan import repeat_per_tile

    cfg = model.bundle.config
    x_rgb = model.tensor(rgb_cond)
    factor = cfg.vqgan.downsample_factor
    rows, cols = x_rgb.shape[-2] // factor, x_rgb.shape[-1] // factor
    fields = [NoiseField(int(seed), s, cfg.vqgan.latent_channels) for s in range(samples)]
    noise_fn = noise_fn_for_windows(fields, [(0, 0)] * samples, rows, cols, device=model.device)
    with torch.inference_mode():
        cond = repeat_per_tile(model.bundle.denoiser.encode_condition(x_rgb), samples)

        def eps_fn(x_t: torch.Tensor, t: int) -> torch.Tensor:
            return model.output(x_t, t, cond)[1]

        from hyperldm_engine.pipeline.synthesize import _to_model

        return sampler.sample(eps_fn, _to_model(noise_fn(INITIAL_STEP), model.device), noise_fn, callback=callback)


def _channel_stats(x: torch.Tensor) -> dict[str, Any]:
    """Mean and std over everything and per channel of latents (n, C, h, w)."""
    x = x.double()
    per_mean = x.mean(dim=(0, 2, 3))
    per_std = x.std(dim=(0, 2, 3), unbiased=False)
    return {"mean": float(x.mean()), "std": float(x.std(unbiased=False)),
            "channel_mean": [float(v) for v in per_mean], "channel_std": [float(v) for v in per_std]}


class TrajectoryStats:
    """Per sampler step: statistics of x_t and of the x0 estimate against the scene's encoder latents."""

    def __init__(self, x0_ref: torch.Tensor, clip: tuple[float, float]) -> None:
        self.ref = x0_ref.double()
        self.ref_std = self.ref.std(dim=(0, 2, 3), unbiased=False)
        self.clip = clip
        self.steps: list[dict[str, Any]] = []

    def __call__(self, i: int, t: int, out: Any) -> None:
        x0 = out.pred_original_sample.double()
        xt = out.prev_sample.double()
        mse = float(((x0 - self.ref) ** 2).mean())
        at_clip = float(((x0 <= self.clip[0] + 1e-6) | (x0 >= self.clip[1] - 1e-6)).double().mean())
        s0 = _channel_stats(x0)
        ratio = [a / max(float(b), 1e-12) for a, b in zip(s0["channel_std"], self.ref_std.tolist(), strict=True)]
        self.steps.append({"step": i, "t": int(t), "x_t": _channel_stats(xt), "x0_hat": s0,
                           "x0_hat_std_ratio_per_channel": ratio,
                           "x0_hat_mse_to_encoder": mse,
                           "x0_hat_r2": 1.0 - mse / max(float(self.ref.var(unbiased=False)), 1e-12),
                           "x0_hat_fraction_at_clip": at_clip})


# ---- the report ---------------------------------------------------------------------------------------

def _load_model(path: str, device: str) -> _Model:
    from hyperldm_engine.diffusion.schedule import NoiseSchedule
    from hyperldm_engine.pipeline.synthesize import _load_state

    bundle, _, dev, _ = _load_state(path, device, "ddim", 1, 0.0, None)
    return _Model(path=path, bundle=bundle, device=dev, prediction=prediction_type(bundle),
                  schedule=NoiseSchedule.from_dict(bundle.schedule))


def _sampler(model: _Model, steps: int, eta: float) -> Any:
    """The sampler the tile function builds for (steps, eta): same schedule, same x0 clipping."""
    from hyperldm_engine.diffusion.samplers import make_sampler

    return make_sampler("ddim", model.schedule, steps, eta=eta, clip_x0=model.bundle.codebook_range())


def _tile_samples(model_path: str, rgb_raw: np.ndarray, samples: int, seed: int, steps: int, eta: float,
                  device: str) -> np.ndarray:
    """K cubes through the engine's own tile function (``experiments.common.synthesize_in_memory``)."""
    from hyperldm_engine.experiments.common import synthesize_in_memory
    from hyperldm_engine.pipeline.synthesize import SamplingOptions

    options = SamplingOptions(samples=samples, seed=seed, sampler="ddim", steps=steps, eta=eta)
    return synthesize_in_memory(model_path, rgb_raw, options, device=device)


def run_diagnosis(model: str | Path | None = None, out: str | Path = "reports/diagnosis",
                  settings: DiagnosisSettings | None = None, command: str | None = None,
                  progress: str = "bar", markdown_copy: str | Path | None = None) -> dict[str, Any]:
    """Measure every section, write ``diagnosis.json``, ``diagnosis.md`` and figures into ``out``
    (and the Markdown also to ``markdown_copy``, figure links adjusted)."""
    from hyperldm_engine.models.bundle import default_bundle_path
    from hyperldm_engine.pipeline.synthesize import DEFAULT_ETA, DEFAULT_STEPS

    settings = settings or DiagnosisSettings()
    check_markdown_copy(markdown_copy)  # before any work: nothing measured for a copy that cannot be written
    model_path = str(model) if model is not None else str(default_bundle_path())
    out = Path(out)
    torch.set_num_threads(int(settings.threads))
    start = time.perf_counter()
    m = _load_model(model_path, settings.device)
    cfg = m.bundle.config
    factor = cfg.vqgan.downsample_factor
    settings.validate(factor * cfg.denoiser.alignment, m.schedule.num_steps)
    out.mkdir(parents=True, exist_ok=True)
    clip = m.bundle.codebook_range()
    qs = QualitySettings(scenes=settings.scenes, size=settings.size, quick=settings.quick)
    test = heldout_scenes(qs)
    _log(f"diagnosis of {model_path}: {len(test)} held-out scenes of {settings.size} px, "
         f"prediction {m.prediction}", progress)
    rows = Rows()
    rgbs = [normalised_rgb(s.rgb).astype(np.float32) for s in test]

    # encoder latents of every scene (unscaled z_q) and their statistics
    enc: list[torch.Tensor] = []
    with torch.inference_mode():
        for scene in test:
            x = m.tensor(scene.hsi)
            enc.append(m.bundle.vqgan.quantize(m.bundle.vqgan.encode(x)).z_q.float())
    all_enc = torch.cat(enc)
    mean_latent = all_enc.mean(dim=(0, 2, 3), keepdim=True)
    enc_stats = _channel_stats(all_enc * m.scale)

    # (a), (b): the decoder from given latents, and the RGB condition's effect on the decoder
    rng = np.random.default_rng(settings.seed)
    for i, (scene, rgb) in enumerate(zip(test, rgbs, strict=True)):
        ref = scene.hsi
        rows.add("decoder_encoder_latents", "(a) decoder, encoder latents (quantised), RGB",
                 vqgan_reconstruct(m.bundle.vqgan, ref, rgb, str(m.device)), ref)
        z = enc[i]
        variants = rgb_variants(rgb, settings.patch, settings.seed + i)
        for key in ("zero", "shuffled_pixels", "shuffled_patches"):
            rows.add(f"decoder_encoder_latents_rgb_{key}", f"(a) decoder, encoder latents, {RGB_CONDITIONS[key]}",
                     m.decode(z, variants[key])[0], ref)
        rows.add("decoder_zero_latent", "(b) decoder, zero latent (not quantised), RGB",
                 m.decode(torch.zeros_like(z), rgb)[0], ref)
        rows.add("decoder_zero_latent_quantised", "(b) decoder, the code nearest to zero, RGB",
                 m.decode(m.quantize(torch.zeros_like(z)), rgb)[0], ref)
        rows.add("decoder_mean_latent", "(b) decoder, mean encoder latent (per channel, not quantised), RGB",
                 m.decode(mean_latent.expand_as(z), rgb)[0], ref)
        shuffled = torch.from_numpy(shuffle_pixels(z[0].cpu().numpy(), rng))[None]
        rows.add("decoder_shuffled_latent", "(b) decoder, encoder latents shuffled across positions, RGB",
                 m.decode(shuffled, rgb)[0], ref)
    _log("decoder rows done", progress)

    # ridge reference (the quality report's training scenes and fit)
    train, train_info = training_scenes(m.bundle, qs, progress)
    ridge = RidgeRegressor.fit_scenes([PairedScene.from_train_scene(s) for s in train], 2, 1e-6)
    del train
    for scene, rgb in zip(test, rgbs, strict=True):
        rows.add("ridge_poly2", "ridge regression, degree-2 polynomial (reference)", ridge.predict(rgb), scene.hsi)

    # (c) sampled latents through the engine's tile function
    sampler_rows: list[dict[str, Any]] = []
    for eta in settings.etas:
        for steps in settings.steps:
            t0 = time.perf_counter()
            single, mean_k = f"sampled_{steps}_eta{eta:g}", f"sampled_{steps}_eta{eta:g}_mean"
            for scene in test:
                cubes = _tile_samples(model_path, scene.rgb, settings.samples, settings.seed, steps, eta,
                                      settings.device)
                for cube in cubes:
                    rows.add(single, f"(c) DDIM {steps} steps, eta {eta:g}, 1 sample", cube, scene.hsi)
                rows.add(mean_k, f"(c) DDIM {steps} steps, eta {eta:g}, mean of {settings.samples}",
                         cubes.mean(axis=0), scene.hsi)
            sampler_rows.append({"steps": steps, "eta": eta, "single": single, "mean": mean_k,
                                 "seconds": round(time.perf_counter() - t0, 2)})
            _log(f"DDIM {steps} steps eta {eta:g}: {sampler_rows[-1]['seconds']:.1f} s", progress)

    # trajectory statistics and the denoiser's RGB condition, at the default sampler settings
    def_steps = DEFAULT_STEPS if DEFAULT_STEPS in settings.steps else settings.steps[-1]
    def_eta = DEFAULT_ETA
    sampler = _sampler(m, def_steps, def_eta)
    trajectories, final_latents, loop_check = [], [], []
    for i, (scene, rgb) in enumerate(zip(test, rgbs, strict=True)):
        ref_latent = (enc[i] * m.scale).expand(settings.samples, -1, -1, -1)
        stats = TrajectoryStats(ref_latent, clip)
        variants = rgb_variants(rgb, settings.patch, settings.seed + i)
        latents = sample_latents(m, sampler, rgb, settings.samples, settings.seed, stats)
        trajectories.append(stats.steps)
        final_latents.append(latents.float())
        cubes = m.decode(m.quantize(latents), rgb)
        engine = _tile_samples(model_path, scene.rgb, settings.samples, settings.seed, def_steps, def_eta,
                               settings.device)
        loop_check.append(float(np.abs(cubes - engine).max()))
        for key in ("zero", "shuffled_pixels", "shuffled_patches"):
            lat = sample_latents(m, sampler, variants[key], settings.samples, settings.seed)
            for cube in m.decode(m.quantize(lat), rgb):
                rows.add(f"sampled_default_denoiser_rgb_{key}",
                         f"(c) DDIM {def_steps} steps, eta {def_eta:g}, denoiser given {RGB_CONDITIONS[key]} "
                         f"(decoder given the RGB), 1 sample", cube, scene.hsi)
    trajectory = _mean_trajectory(trajectories)
    fin = torch.cat(final_latents)
    with torch.inference_mode():
        fin_q = m.quantize(fin) * m.scale
        enc_scaled = all_enc * m.scale
        enc_z = torch.cat([m.bundle.vqgan.encode(m.tensor(s.hsi)).float() for s in test]) * m.scale
    latents_section = {
        "encoder": enc_stats,
        "sampled_final_before_quantisation": _channel_stats(fin),
        "sampled_final_quantised": _channel_stats(fin_q),
        "std_ratio_sampled_to_encoder": _channel_stats(fin)["std"] / max(enc_stats["std"], 1e-12),
        "std_ratio_per_channel": [a / max(b, 1e-12) for a, b in zip(
            _channel_stats(fin)["channel_std"], enc_stats["channel_std"], strict=True)],
        "quantisation_shift_rms_sampled": float(((fin - fin_q) ** 2).mean().sqrt()),
        "quantisation_shift_rms_encoder": float(((enc_z - enc_scaled) ** 2).mean().sqrt()),
        "code_usage_sampled": _code_usage(m, fin),
        "code_usage_encoder": _code_usage(m, enc_scaled),
        "clip_range_scaled": list(clip),
        "settings": {"steps": def_steps, "eta": def_eta, "samples": settings.samples},
        "trajectory": trajectory,
        "own_loop_vs_tile_function_max_abs": max(loop_check),
    }
    _log("trajectory and denoiser-condition sampling done", progress)

    denoiser_section = _denoiser_errors(m, enc, rgbs, test, settings, mean_latent * m.scale)
    _log("denoiser error per timestep done", progress)

    results = rows.results()
    report = {
        "model": display_path(model_path), "command": command, "settings": dataclasses.asdict(settings),
        "prediction": m.prediction, "latent_scale": m.scale,
        "schedule": m.bundle.schedule,
        "heldout": {"seeds": [s.seed for s in test], "gsd_m": [s.gsd_m for s in test],
                    "landscape": [p[2] for p in heldout_plan(qs)], "size_px": settings.size, "held_out": True},
        "training_data_of_ridge": train_info,
        "peak_definition": PEAK_NOTE,
        "rows": results,
        "sampler_grid": [{**g, "single_mpsnr": results[g["single"]]["mpsnr"],
                          "single_mpsnr_band_range": results[g["single"]]["mpsnr_band_range"],
                          "single_sam": results[g["single"]]["sam"],
                          "mean_mpsnr": results[g["mean"]]["mpsnr"],
                          "mean_mpsnr_band_range": results[g["mean"]]["mpsnr_band_range"],
                          "mean_sam": results[g["mean"]]["sam"]} for g in sampler_rows],
        "default_sampler": {"steps": def_steps, "eta": def_eta},
        "latents": latents_section,
        "denoiser": denoiser_section,
    }
    report["findings"] = findings(report)
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    write_outputs(report, out, markdown_copy)
    _log(f"wrote {out}/diagnosis.json and diagnosis.md in {report['wall_seconds']:.0f} s", progress)
    return report


def _code_usage(m: _Model, scaled: torch.Tensor) -> dict[str, float]:
    """How many codebook entries scaled latents use after quantisation, and the usage's perplexity."""
    with torch.inference_mode():
        idx = m.bundle.vqgan.quantize(scaled.float() / m.scale).indices.reshape(-1)
    counts = torch.bincount(idx.cpu(), minlength=m.bundle.config.vqgan.codebook_size).double()
    p = counts[counts > 0] / counts.sum()
    return {"codes_used": int((counts > 0).sum()), "perplexity": float(torch.exp(-(p * p.log()).sum()))}


def _mean_trajectory(per_scene: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Scalar trajectory statistics averaged over scenes (step by step)."""
    out = []
    for steps in zip(*per_scene, strict=True):
        first = steps[0]

        def avg(f: Callable[[dict[str, Any]], float], steps: tuple[dict[str, Any], ...] = steps) -> float:
            return float(np.mean([f(s) for s in steps]))

        out.append({"step": first["step"], "t": first["t"],
                    "x_t_mean": avg(lambda s: s["x_t"]["mean"]), "x_t_std": avg(lambda s: s["x_t"]["std"]),
                    "x0_hat_mean": avg(lambda s: s["x0_hat"]["mean"]),
                    "x0_hat_std": avg(lambda s: s["x0_hat"]["std"]),
                    "x0_hat_std_ratio_per_channel": [float(v) for v in np.mean(
                        [s["x0_hat_std_ratio_per_channel"] for s in steps], axis=0)],
                    "x0_hat_mse_to_encoder": avg(lambda s: s["x0_hat_mse_to_encoder"]),
                    "x0_hat_r2": avg(lambda s: s["x0_hat_r2"]),
                    "x0_hat_fraction_at_clip": avg(lambda s: s["x0_hat_fraction_at_clip"])})
    return out


def probe_timesteps(num_steps: int, n: int) -> list[int]:
    """``n`` timesteps spread over 0..T-1, both ends included."""
    return sorted({round(float(v)) for v in np.linspace(0, num_steps - 1, max(n, 2))})


def _denoiser_errors(m: _Model, enc: list[torch.Tensor], rgbs: list[np.ndarray], test: list[Any],
                     settings: DiagnosisSettings, mean_scaled: torch.Tensor) -> dict[str, Any]:
    """Per probed timestep: eps and x0 MSE of the denoiser under each RGB condition, the trivial
    predictor's, and the MPSNR of the decoded one-step x0 estimate (true RGB)."""
    ts = probe_timesteps(m.schedule.num_steps, settings.timesteps)
    sums = {k: {t: [0.0, 0.0] for t in ts} for k in RGB_CONDITIONS}
    trivial = {t: [0.0, 0.0] for t in ts}
    v_err = {t: 0.0 for t in ts}
    n = {t: 0 for t in ts}
    decoded = {t: Scores() for t in ts}
    gen = torch.Generator().manual_seed(int(settings.seed) + 7)
    with torch.inference_mode():
        for i, (z, rgb, scene) in enumerate(zip(enc, rgbs, test, strict=True)):
            x0 = (z * m.scale).to(m.device).expand(settings.eps_draws, -1, -1, -1)
            conds = {k: m.bundle.denoiser.encode_condition(m.tensor(v))
                     for k, v in rgb_variants(rgb, settings.patch, settings.seed + i).items()}
            for t in ts:
                eps = torch.randn(x0.shape, generator=gen).to(m.device)
                x_t = m.schedule.add_noise(x0, eps, t)
                for key, cond in conds.items():
                    x0_hat, eps_hat = m.output(x_t, t, cond.expand(x_t.shape[0], -1, -1, -1))
                    sums[key][t][0] += float(((eps_hat - eps) ** 2).mean())
                    sums[key][t][1] += float(((x0_hat - x0) ** 2).mean())
                    if key == "rgb":
                        ab = float(m.schedule.alpha_bar[t])
                        v, v_hat = (ab ** 0.5 * e - (1 - ab) ** 0.5 * x for e, x in ((eps, x0), (eps_hat, x0_hat)))
                        v_err[t] += float(((v_hat - v) ** 2).mean())
                        lo, hi = codebook_clip(m)
                        cube = m.decode(m.quantize(x0_hat[:1].clamp(lo, hi)), rgb)[0]
                        decoded[t].add(cube, scene.hsi)
                mu = mean_scaled.to(m.device).expand_as(x0)
                trivial[t][0] += float(((m.schedule.predict_eps(x_t, mu, t) - eps) ** 2).mean())
                trivial[t][1] += float(((mu - x0) ** 2).mean())
                n[t] += 1
    var_x0 = float(torch.cat(enc).mul(m.scale).var(unbiased=False))
    per_t = []
    for t in ts:
        row: dict[str, Any] = {"t": t, "alpha_bar": float(m.schedule.alpha_bar[t])}
        for key in RGB_CONDITIONS:
            row[f"eps_mse_{key}"] = sums[key][t][0] / n[t]
            row[f"x0_mse_{key}"] = sums[key][t][1] / n[t]
        row["v_mse_rgb"] = v_err[t] / n[t]
        row["eps_mse_trivial"] = trivial[t][0] / n[t]
        row["x0_mse_trivial"] = trivial[t][1] / n[t]
        row["x0_r2_rgb"] = 1.0 - row["x0_mse_rgb"] / max(var_x0, 1e-12)
        d = decoded[t].result()
        row["decoded_x0_hat_mpsnr"] = d["mpsnr"]
        row["decoded_x0_hat_mpsnr_band_range"] = d["mpsnr_band_range"]
        row["decoded_x0_hat_sam"] = d["sam"]
        per_t.append(row)
    return {"prediction": m.prediction, "timesteps": ts, "draws_per_scene": settings.eps_draws,
            "latent_variance": var_x0, "per_timestep": per_t,
            "what": "x_t = add_noise(encoder latent * scale, eps, t); model output converted to (x0_hat, eps_hat) "
                    "(and v_hat = sqrt(ab) eps_hat - sqrt(1 - ab) x0_hat, so every prediction type's own error is "
                    "there); columns without a condition use the scene's RGB; "
                    "trivial = x0_hat is the mean encoder latent (per channel); decoded = x0_hat (clipped to the "
                    "codebook range, quantised) decoded with the scene's RGB"}


def codebook_clip(m: _Model) -> tuple[float, float]:
    return m.bundle.codebook_range()


# ---- findings: the text, from the numbers -------------------------------------------------------------

def findings(report: dict[str, Any]) -> list[str]:
    """Sentences that explain the loss, each derived from measured values by a fixed rule.

    Uses the 'band range' MPSNR (design section 7's definition); each sentence names its measurement.
    The first sentence splits the single sample's shortfall against the issue's target (ridge + 1 dB)
    into the autoencoder's part (target minus the encoder-latent ceiling, if positive) and the sampled
    latents' part (ceiling minus sample).
    """
    r = report["rows"]
    v = {k: row["mpsnr_band_range"] for k, row in r.items()}
    sam = {k: row["sam"] for k, row in r.items()}
    ds = report["default_sampler"]
    k = report["settings"]["samples"]
    default_single = f"sampled_{ds['steps']}_eta{ds['eta']:g}"
    default_mean = default_single + "_mean"
    a, ridge = v["decoder_encoder_latents"], v["ridge_poly2"]
    alone = max(v["decoder_zero_latent"], v["decoder_mean_latent"], v["decoder_zero_latent_quantised"])
    single, mean_k = v[default_single], v[default_mean]
    target = ridge + NEAR_DB
    out = []
    # 0. the split of the shortfall
    ae_part, latent_part = max(0.0, target - a), a - single
    if single >= target:
        out.append(f"One sample ({single:.2f} dB) meets the target of ridge + 1 dB ({target:.2f} dB) "
                   f"(measurements (c) and ridge).")
    else:
        cause = ("the sampled latents" if latent_part >= ae_part else "the autoencoder")
        out.append(f"**Main cause: {cause}.** One sample ({single:.2f} dB, DDIM {ds['steps']} steps, eta "
                   f"{ds['eta']:g}) misses ridge + 1 dB ({target:.2f} dB) by {target - single:.2f} dB; the "
                   f"decoder's ceiling with the encoder's own latents is {a:.2f} dB, so the autoencoder costs "
                   f"{ae_part:.2f} dB of the shortfall and the sampled latents lose {latent_part:.2f} dB below "
                   f"that ceiling (measurements (a) and (c)).")
    # 1. the autoencoder's ceiling against ridge
    if a < target:
        out.append(f"The autoencoder is a limit: fed the encoder's own latents the decoder reaches {a:.2f} dB, "
                   f"{a - ridge:+.2f} dB from ridge ({ridge:.2f} dB), so even perfect latents could not beat ridge "
                   f"by 1 dB (measurement (a)).")
    else:
        out.append(f"The autoencoder leaves room: with the encoder's latents the decoder reaches {a:.2f} dB, "
                   f"{a - ridge:+.2f} dB above ridge ({ridge:.2f} dB) (measurement (a)).")
    # 2. does the decoder use its RGB condition, and can it do without a latent?
    rgb_cost = a - min(v["decoder_encoder_latents_rgb_shuffled_pixels"], v["decoder_encoder_latents_rgb_zero"])
    used = "uses its RGB condition" if rgb_cost >= CONDITION_USED_DB else "barely uses its RGB condition"
    if alone < ridge - NEAR_DB:
        out.append(f"The decoder {used} (breaking the RGB costs {rgb_cost:.2f} dB with encoder latents) but cannot "
                   f"do without a latent: from the RGB alone (zero or mean latent) it gives {alone:.2f} dB, "
                   f"{ridge - alone:.2f} dB below ridge, so every dB above that must come from the sampled latents "
                   f"(measurement (b) and the decoder's RGB rows).")
    else:
        out.append(f"The decoder {used} (breaking the RGB costs {rgb_cost:.2f} dB) and from the RGB alone "
                   f"(zero or mean latent) gives {alone:.2f} dB, {alone - ridge:+.2f} dB from ridge "
                   f"(measurement (b)).")
    # 3. what the sampled latents add, and how close they are to the scene's latents
    gain = single - alone
    lat = report["latents"]
    last = lat["trajectory"][-1]
    out.append(f"Sampled latents give {single:.2f} dB per sample and {mean_k:.2f} dB as the mean of {k}: "
               f"{gain:+.2f} dB over the decoder alone, "
               + ("they carry little of the scene" if gain < NEAR_DB else
                  f"{100 * gain / max(a - alone, 1e-9):.0f}% of what the encoder latents add")
               + f"; the final sampled latents are at MSE {last['x0_hat_mse_to_encoder']:.3f} from the scene's "
               f"encoder latents (R^2 {last['x0_hat_r2']:.2f}; the mean latent has R^2 0) "
               f"(measurement (c), trajectory).")
    # 4. steps and eta
    grid = report["sampler_grid"]
    best = max(grid, key=lambda g: g["single_mpsnr_band_range"])
    worst = min(grid, key=lambda g: g["single_mpsnr_band_range"])
    spread = best["single_mpsnr_band_range"] - worst["single_mpsnr_band_range"]
    if spread < 0.5:
        out.append(f"The number of steps and eta do not matter (single-sample spread {spread:.2f} dB over the "
                   f"grid): the loss is not in the sampler's discretisation (measurement (c)).")
    else:
        trend = []
        for eta in sorted({g["eta"] for g in grid}):
            row = sorted((g for g in grid if g["eta"] == eta), key=lambda g: g["steps"])
            d = row[-1]["single_mpsnr_band_range"] - row[0]["single_mpsnr_band_range"]
            trend.append(f"eta {eta:g}: {row[-1]['steps']} steps {d:+.2f} dB against {row[0]['steps']}")
        out.append(f"Sampler settings matter: best {best['steps']} steps eta {best['eta']:g} "
                   f"({best['single_mpsnr_band_range']:.2f} dB), worst {worst['steps']} steps eta {worst['eta']:g} "
                   f"({worst['single_mpsnr_band_range']:.2f} dB); {'; '.join(trend)} (measurement (c)).")
    # 5. latent statistics
    ratio = lat["std_ratio_sampled_to_encoder"]
    if abs(ratio - 1.0) > STD_TOLERANCE:
        kind = "over" if ratio > 1 else "under"
        out.append(f"Sampled latents are {kind}-dispersed: their std is {ratio:.2f}x the encoder latents' "
                   f"(per channel {min(lat['std_ratio_per_channel']):.2f}-{max(lat['std_ratio_per_channel']):.2f}x) "
                   f"(latent statistics).")
    else:
        out.append(f"Sampled latents match the encoder latents' spread (std ratio {ratio:.2f}, per channel "
                   f"{min(lat['std_ratio_per_channel']):.2f}-{max(lat['std_ratio_per_channel']):.2f}), so their "
                   f"marginal statistics are not the problem: which latent goes where is (latent statistics).")
    # 6. the denoiser: where its x0 estimate beats the mean latent, and its use of the RGB
    den = report["denoiser"]["per_timestep"]
    good = [row for row in den if row["x0_mse_rgb"] < row["x0_mse_trivial"]]
    top = den[-1]
    first = lat["trajectory"][0]
    if good and len(good) < len(den):
        t_max = max(row["t"] for row in good)
        out.append(f"The denoiser's x0 estimate beats the mean latent only up to t = {t_max} of "
                   f"{den[-1]['t'] + 1} (alpha_bar >= {min(row['alpha_bar'] for row in good):.3g}); at t = "
                   f"{top['t']} its x0 MSE is {top['x0_mse_rgb'] / max(top['x0_mse_trivial'], 1e-12):.0f}x the mean "
                   f"latent's ({report['prediction']} prediction), so the sampler's first x0 estimates sit at the "
                   f"codebook clip ({100 * first['x0_hat_fraction_at_clip']:.0f}% of values at step 0) "
                   f"(denoiser error per timestep, trajectory).")
    elif good:
        out.append("The denoiser's x0 estimate beats the mean latent at every probed timestep "
                   "(denoiser error per timestep).")
    else:
        out.append("The denoiser's x0 estimate is worse than the mean latent at every probed timestep "
                   "(denoiser error per timestep).")
    mid = [row for row in den if 0.05 <= row["alpha_bar"] <= 0.95] or den
    shuf = float(np.mean([row["x0_mse_shuffled_pixels"] / max(row["x0_mse_rgb"], 1e-12) for row in mid]))
    dn_cost = single - v.get("sampled_default_denoiser_rgb_shuffled_pixels", single)
    out.append(f"Shuffling the denoiser's RGB raises its x0 error {shuf:.2f}x at alpha_bar 0.05-0.95 and costs a "
               f"sample {dn_cost:.2f} dB (decoder still given the true RGB): the denoiser "
               + ("uses" if shuf > 1.1 or dn_cost >= CONDITION_USED_DB else "ignores")
               + " its RGB condition (denoiser error per timestep, denoiser RGB rows).")
    # 7. the headline against ridge
    out.append(f"Against ridge: one sample {single - ridge:+.2f} dB (SAM {sam[default_single]:.4f} vs "
               f"{sam['ridge_poly2']:.4f}), mean of {k} {mean_k - ridge:+.2f} dB (SAM {sam[default_mean]:.4f}).")
    return out


# ---- writing ------------------------------------------------------------------------------------------

def _lands(h: dict[str, Any]) -> str:
    lands = [x for x in h.get("landscape") or [] if x is not None]
    return f", landscapes {', '.join(lands)}" if lands else ""


def _f(x: Any, digits: int = 2) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def markdown(report: dict[str, Any], figure_dir: str = "") -> str:
    """The diagnosis as Markdown (copied to docs/model-diagnosis.md); figures linked from ``figure_dir``."""
    fig = f"{figure_dir.rstrip('/')}/" if figure_dir and figure_dir != "." else ""
    s = report["settings"]
    h = report["heldout"]
    lines = ["# Model diagnosis", ""]
    if report.get("command"):
        lines += ["Regenerate with:", "", "```", report["command"], "```", ""]
    lines += [f"Model `{report['model']}` (denoiser predicts {report['prediction']}, latent scale "
              f"{report['latent_scale']:.4g}). {len(h['seeds'])} held-out simulated scenes of {h['size_px']} x "
              f"{h['size_px']} px (held-out spectra, seeds {h['seeds']}, "
              f"GSD {', '.join(f'{g:g}' for g in h['gsd_m'])} m{_lands(h)}); "
              f"K = {s['samples']} samples per sampler setting, seed {s['seed']}.", "",
              f"{report['peak_definition']}. SAM in radians, pooled over scenes.", ""]
    if s.get("quick"):
        lines += ["**Quick smoke run (`--quick`): tiny settings, numbers not meaningful.**", ""]
    lines += ["## What explains the loss", ""] + [f"- {t}" for t in report["findings"]] + [""]
    lines += ["## Decoder and references", "",
              "| Input | MPSNR (dB, peak 1) | MPSNR (dB, band range) | SAM (rad) |", "|---|---|---|---|"]
    for key, row in report["rows"].items():
        if key.startswith("sampled_"):
            continue
        lines.append(f"| {row['label']} | {_f(row['mpsnr'])} | {_f(row['mpsnr_band_range'])} | {_f(row['sam'], 4)} |")
    lines += ["", "## Sampled latents (engine tile function, DDIM)", "",
              "| Steps | eta | 1 sample MPSNR (peak 1) | 1 sample MPSNR (band range) | 1 sample SAM | "
              f"mean of {s['samples']} MPSNR (peak 1) | mean MPSNR (band range) | mean SAM | seconds |",
              "|---|---|---|---|---|---|---|---|---|"]
    for g in report["sampler_grid"]:
        lines.append(f"| {g['steps']} | {g['eta']:g} | {_f(g['single_mpsnr'])} | {_f(g['single_mpsnr_band_range'])} | "
                     f"{_f(g['single_sam'], 4)} | {_f(g['mean_mpsnr'])} | {_f(g['mean_mpsnr_band_range'])} | "
                     f"{_f(g['mean_sam'], 4)} | {g['seconds']:.1f} |")
    ds = report["default_sampler"]
    lines += ["", f"With the denoiser's RGB condition broken (DDIM {ds['steps']} steps, eta {ds['eta']:g}; the "
              "decoder still gets the true RGB), 1 sample:", "",
              "| Denoiser condition | MPSNR (dB, peak 1) | MPSNR (dB, band range) | SAM (rad) |", "|---|---|---|---|"]
    for key, row in report["rows"].items():
        if key.startswith("sampled_default_denoiser_rgb_"):
            cond = RGB_CONDITIONS[key.removeprefix("sampled_default_denoiser_rgb_")]
            lines.append(f"| {cond} | {_f(row['mpsnr'])} | {_f(row['mpsnr_band_range'])} | {_f(row['sam'], 4)} |")
    lat = report["latents"]
    enc, fin = lat["encoder"], lat["sampled_final_before_quantisation"]
    lines += ["", "## Latent statistics (scaled latents)", "",
              "| Latents | mean | std | channel std min-max |", "|---|---|---|---|"]
    for name, st in (("encoder (quantised)", enc), ("sampled, before quantisation", fin),
                     ("sampled, quantised", lat["sampled_final_quantised"])):
        lines.append(f"| {name} | {st['mean']:.3f} | {st['std']:.3f} | "
                     f"{min(st['channel_std']):.3f}-{max(st['channel_std']):.3f} |")
    lines += ["", f"- Std ratio sampled / encoder: {lat['std_ratio_sampled_to_encoder']:.3f} overall, per channel "
              + ", ".join(f"{x:.2f}" for x in lat["std_ratio_per_channel"]) + ".",
              f"- Codes used: sampled {lat['code_usage_sampled']['codes_used']} (perplexity "
              f"{lat['code_usage_sampled']['perplexity']:.1f}), encoder {lat['code_usage_encoder']['codes_used']} "
              f"(perplexity {lat['code_usage_encoder']['perplexity']:.1f}); RMS shift by quantisation: sampled "
              f"{lat['quantisation_shift_rms_sampled']:.3f}, encoder {lat['quantisation_shift_rms_encoder']:.3f}.",
              "- The instrumented loop reproduces the engine's tile function to "
              f"{lat['own_loop_vs_tile_function_max_abs']:.2g} "
              "(max abs reflectance difference)" + (" -- it DIFFERS: the trajectory may not be what users get."
                                                   if lat["own_loop_vs_tile_function_max_abs"] > 1e-3 else "."),
              "", f"Trajectory (DDIM {ds['steps']} steps, eta {ds['eta']:g}; mean over scenes; x0_hat = the sampler's "
              "`pred_original_sample` after clipping):", "",
              "| step | t | x_t std | x0_hat mean | x0_hat std | x0_hat std / encoder (channel mean) | "
              "x0_hat MSE to encoder latents | R^2 | at clip |", "|---|---|---|---|---|---|---|---|---|"]
    for row in lat["trajectory"]:
        lines.append(f"| {row['step']} | {row['t']} | {row['x_t_std']:.3f} | {row['x0_hat_mean']:.3f} | "
                     f"{row['x0_hat_std']:.3f} | {np.mean(row['x0_hat_std_ratio_per_channel']):.3f} | "
                     f"{row['x0_hat_mse_to_encoder']:.3f} | {row['x0_hat_r2']:.3f} | "
                     f"{row['x0_hat_fraction_at_clip']:.3f} |")
    den = report["denoiser"]
    lines += ["", f"## Denoiser error per timestep (prediction: {den['prediction']}; {den['draws_per_scene']} noise "
              "draws per scene)", "", den["what"] + f"; latent variance {den['latent_variance']:.3f}.", "",
              "| t | alpha_bar | eps MSE | eps MSE RGB zero | eps MSE RGB pixels shuffled | eps MSE RGB patches "
              "shuffled | eps MSE trivial | x0 MSE | x0 MSE trivial | x0 R^2 | v MSE | decoded x0_hat MPSNR "
              "(band range) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in den["per_timestep"]:
        lines.append(f"| {row['t']} | {row['alpha_bar']:.3g} | {row['eps_mse_rgb']:.4f} | {row['eps_mse_zero']:.4f} | "
                     f"{row['eps_mse_shuffled_pixels']:.4f} | {row['eps_mse_shuffled_patches']:.4f} | "
                     f"{row['eps_mse_trivial']:.4f} | {row['x0_mse_rgb']:.4f} | {row['x0_mse_trivial']:.4f} | "
                     f"{row['x0_r2_rgb']:.3f} | {row['v_mse_rgb']:.4f} | "
                     f"{_f(row['decoded_x0_hat_mpsnr_band_range'])} |")
    tr = report["training_data_of_ridge"]
    lines += ["", f"![MPSNR against sampler steps]({fig}diagnosis_steps.png)", "",
              f"![Latent statistics along the trajectory and denoiser error per timestep]({fig}diagnosis_latents.png)",
              "",
              f"Ridge: {tr['source']}, {len(tr['seeds_gsd_m'])} scenes of {tr['size_px']} px, training rows only. "
              f"Wall time {report['wall_seconds']:.0f} s; numbers in `diagnosis.json`."]
    return "\n".join(lines) + "\n"


def figures(report: dict[str, Any], out: Path) -> list[Path]:
    """``diagnosis_steps.png`` (MPSNR against steps) and ``diagnosis_latents.png`` (trajectory, eps error)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = report["rows"]
    paths = []
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for eta, style in zip(report["settings"]["etas"], ("o-", "s--", "^:"), strict=False):
        g = [x for x in report["sampler_grid"] if x["eta"] == eta]
        ax.plot([x["steps"] for x in g], [x["single_mpsnr_band_range"] for x in g], style,
                label=f"1 sample, eta {eta:g}")
        ax.plot([x["steps"] for x in g], [x["mean_mpsnr_band_range"] for x in g], style, alpha=0.5,
                label=f"mean of K, eta {eta:g}")
    for key, colour, label in (("decoder_encoder_latents", "k", "decoder, encoder latents"),
                               ("ridge_poly2", "tab:red", "ridge (degree 2)"),
                               ("decoder_zero_latent", "tab:gray", "decoder, zero latent")):
        ax.axhline(r[key]["mpsnr_band_range"], color=colour, lw=1, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("DDIM steps")
    ax.set_ylabel("MPSNR (dB, peak = band range)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths.append(out / "diagnosis_steps.png")
    fig.savefig(paths[-1], dpi=90)

    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    tr = report["latents"]["trajectory"]
    x = [row["t"] for row in tr]
    ax1.plot(x, [row["x_t_std"] for row in tr], "o-", ms=3, label="x_t std")
    ax1.plot(x, [row["x0_hat_std"] for row in tr], "s-", ms=3, label="x0_hat std")
    ax1.plot(x, [row["x0_hat_mse_to_encoder"] ** 0.5 for row in tr], "^-", ms=3, label="x0_hat RMS error")
    ax1.axhline(report["latents"]["encoder"]["std"], color="k", lw=1, label="encoder latent std")
    ax1.invert_xaxis()
    ax1.set_xlabel("timestep t (sampling runs right)")
    ax1.set_title("trajectory (scaled latents)", fontsize=9)
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    den = report["denoiser"]["per_timestep"]
    t = [row["t"] for row in den]
    for key, style in (("rgb", "o-"), ("zero", "s--"), ("shuffled_pixels", "^--"), ("trivial", "k:")):
        ax2.plot(t, [row[f"x0_mse_{key}"] for row in den], style, ms=3, label=key)
    ax2.set_yscale("log")
    ax2.set_xlabel("timestep t")
    ax2.set_ylabel("x0 MSE (scaled latents)")
    ax2.set_title("denoiser error by RGB condition", fontsize=9)
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    paths.append(out / "diagnosis_latents.png")
    fig.savefig(paths[-1], dpi=90)
    return paths


def check_markdown_copy(path: str | Path | None) -> None:
    """Refuse a ``--markdown-copy`` file that holds text but no diagnosis markers: writing it would replace
    text the diagnosis did not write (``docs/model-diagnosis.md`` keeps hand-written sections after its
    generated part)."""
    if path is None or not Path(path).is_file():
        return
    text = Path(path).read_text()
    if text.strip() and not has_section(text, "diagnosis"):
        start, end = markers("diagnosis")
        raise OutputError(f"{path}: has text but no '{start}' / '{end}' markers; the diagnosis replaces only "
                          "the text between them (add them around the generated part, or give a new file)")


def write_outputs(report: dict[str, Any], out: Path, markdown_copy: str | Path | None = None) -> None:
    """``diagnosis.json``, ``diagnosis.md`` and the figures, each written atomically; with
    ``markdown_copy`` also a copy of the Markdown there (e.g. ``docs/model-diagnosis.md``) whose figure
    links point back into ``out``."""
    import os

    from hyperldm_engine.io.atomic import atomic_path

    figures(report, out)
    with atomic_path(out / "diagnosis.json", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(_jsonable(report), indent=1) + "\n")
    with atomic_path(out / "diagnosis.md", overwrite=True) as tmp:
        Path(tmp).write_text(markdown(report))
    if markdown_copy is not None:
        copy = Path(markdown_copy)
        copy.parent.mkdir(parents=True, exist_ok=True)
        rel = Path(os.path.relpath(out.resolve(), copy.parent.resolve())).as_posix()
        check_markdown_copy(copy)
        text = copy.read_text() if copy.is_file() else ""
        with atomic_path(copy, overwrite=True) as tmp:  # only the generated section: the rest is kept
            Path(tmp).write_text(replace_marked_section(text, markdown(report, figure_dir=rel), "diagnosis",
                                                       title=""))
