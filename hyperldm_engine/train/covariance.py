"""The model's spectral error covariance: the prior of the covariance-weighted RGB correction.

``--rgb-correction spectral`` (``spectral.consistency``) corrects each sample with
``C S^T (S C S^T)^-1 (rgb - S I)``. The C that makes this the best linear update is the second
moment of the errors the sampler's cubes make, ``E[(truth - sample)(truth - sample)^T]``: it says how an
error the RGB can see (too red, too dark) goes with errors it cannot see (the near infrared). This
module measures it on training patches, with the synthesis sampler's own settings (DDIM, eta 1,
decoded without consistency), the bundle frozen; ``bundle.consistency_covariance`` stores it.
On the quality report's held-out scenes this C gave one sample +4.3 dB over the smallest change and
+1.6 dB over the library's covariance (docs/model-diagnosis.md, "Covariance-weighted RGB correction").
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from hyperldm_engine.diffusion.samplers import DEFAULT_STEPS, make_sampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.spectral.consistency import with_jitter
from hyperldm_engine.train.align import sample_latents
from hyperldm_engine.train.data import PatchSampler, TrainScene, scene_normaliser


@dataclass(frozen=True)
class CovarianceSettings:
    """``batches`` x ``batch_size`` patches of ``patch_size`` px, ``samples`` draws of each."""

    batches: int = 16
    batch_size: int = 4
    patch_size: int = 64
    samples: int = 2
    steps: int = DEFAULT_STEPS
    eta: float = 1.0
    jitter: float = 1e-6
    seed: int = 0


def error_covariance(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings | None = None
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """``E[e e^T]`` (n_bands, n_bands) of ``e = truth - decoded sample`` over valid pixels of training
    patches of ``scenes`` (their training rows), and what was measured (for the bundle's record)."""
    settings = settings or CovarianceSettings()
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    patches = PatchSampler(scenes, settings.patch_size, np.random.default_rng([settings.seed, 0xC0F]),
                           scene_normaliser, augment=None)
    v = bundle.vqgan
    sampler = make_sampler("ddim", NoiseSchedule.from_dict(bundle.schedule), settings.steps, eta=settings.eta,
                           clip_x0=bundle.codebook_range())
    n_bands = bundle.config.n_bands
    sums, count = np.zeros((n_bands, n_bands)), 0
    bundle.eval()
    with torch.no_grad():
        for _ in range(settings.batches):
            batch = patches.sample(settings.batch_size)
            rgb = batch.rgb.repeat(settings.samples, 1, 1, 1)
            latents = sample_latents(bundle.denoiser, sampler, bundle.config.denoiser.prediction, rgb,
                                     v.config.vqgan.latent_channels, v.factor, generator)
            decoded = v.decode(v.quantize(latents / float(bundle.latent_scale)).z_q, rgb, return_abundances=False).hsi
            err = (batch.hsi.repeat(settings.samples, 1, 1, 1) - decoded).double()
            ok = batch.valid.repeat(settings.samples, 1, 1)
            e = err.permute(0, 2, 3, 1)[ok].numpy()  # (n, n_bands)
            sums += e.T @ e
            count += len(e)
    if count == 0:
        raise ValueError("no valid training pixels to measure the error covariance on")
    mean_diag = float(np.mean(np.diag(sums / count)))
    covariance = with_jitter(sums / count, settings.jitter)
    info = {"source": f"errors of DDIM {settings.steps}-step samples on {count:,} training pixels of "
                      f"{len(scenes)} scene(s)",
            "settings": asdict(settings), "pixels": count, "rms_error": round(mean_diag ** 0.5, 5),
            "seconds": round(time.perf_counter() - t0, 1)}
    return covariance, info


def attach_error_covariance(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings | None = None
                            ) -> dict[str, Any]:
    """Measure :func:`error_covariance` and store it in ``bundle`` (``consistency_covariance``)."""
    covariance, info = error_covariance(bundle, scenes, settings)
    bundle.consistency_covariance = covariance
    bundle.consistency_info = info
    return info

