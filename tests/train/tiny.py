"""Tiny scenes and configs for fast training tests."""

import numpy as np

from hyperldm_engine.models.config import ClassifierConfig, DenoiserConfig, ModelConfig, VQGANConfig
from hyperldm_engine.train.data import TrainScene, heldout_row0
from hyperldm_engine.train.loop import TrainSettings

BANDS = 8


def tiny_config(n_bands: int = BANDS, n_library: int = 12, n_classes: int = 3) -> ModelConfig:
    return ModelConfig(
        n_bands=n_bands, n_library=n_library, n_classes=n_classes,
        vqgan=VQGANConfig(downsample_factor=2, latent_channels=4, codebook_size=32, encoder_channels=(8, 8),
                          decoder_channels=(8, 8), condition_channels=(4, 8)),
        denoiser=DenoiserConfig(channels=(8, 16), num_res_blocks=1, head_channels=8, time_embed_dim=16,
                                cond_channels=4, cond_hidden=(4,)),
        classifier=ClassifierConfig(channels=(4, 4, 8, 8), kernel_size=3),
        preset="tiny")


def tiny_library(n_bands: int = BANDS, n: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.6, (n_bands, n)).astype(np.float32)


def tiny_scene(h: int = 40, w: int = 40, seed: int = 0, patch: int = 8, n_bands: int = BANDS) -> TrainScene:
    """Smooth random mixtures of the tiny library with 3 labelled classes."""
    rng = np.random.default_rng(seed)
    R = tiny_library(n_bands)
    rows, cols = np.mgrid[0:h, 0:w]
    labels = ((rows // 10 + cols // 10) % 3).astype(np.int64)
    A = np.zeros((R.shape[1], h, w), np.float32)
    for k in range(3):
        A[k * 4:(k + 1) * 4] += (labels == k) * rng.dirichlet(np.ones(4))[:, None, None]
    A += 0.05 * rng.random(A.shape).astype(np.float32)
    A /= A.sum(axis=0, keepdims=True)
    hsi = np.einsum("bn,nhw->bhw", R, A).astype(np.float32)
    rgb = hsi[[6, 4, 1]].copy()
    return TrainScene(name=f"tiny{seed}.tif", hsi=hsi, rgb=rgb, valid=np.ones((h, w), bool),
                      wavelengths_nm=np.linspace(420, 900, n_bands), fwhm_nm=np.full(n_bands, 60.0),
                      labels=labels, class_names=["a", "b", "c"], gsd_m=1.0,
                      heldout_row0=heldout_row0(h, patch, 0.1))


def tiny_settings(**kw) -> TrainSettings:
    base = dict(vq_iterations=6, diffusion_iterations=4, classifier_iterations=3, patch_size=8, batch_size=2,
                seed=1, adv_start=0.5, disc_every=2, reseed_every=3, classifier_batch=32, scale_batches=2,
                checkpoint_every=0, disc_width=8)
    base.update(kw)
    return TrainSettings(**base)


