"""Tiny model configs and data shared by the model tests (fast on 2 CPU cores)."""

from __future__ import annotations

import torch

from hyperldm_engine.models.config import ClassifierConfig, DenoiserConfig, ModelConfig, VQGANConfig


def tiny_config(**vq_changes) -> ModelConfig:
    vq = dict(
        downsample_factor=4, latent_channels=4, codebook_size=16, encoder_channels=(8, 8, 8),
        decoder_channels=(8, 8, 8), condition_channels=(4, 4, 4), num_res_blocks=1,
    )  # fmt: skip
    vq.update(vq_changes)
    return ModelConfig(
        n_bands=8, n_library=5, n_classes=3,
        vqgan=VQGANConfig(**vq),
        denoiser=DenoiserConfig(
            channels=(8, 16), num_res_blocks=1, attention_downsample=(2,), head_channels=8,
            time_embed_dim=16, cond_channels=4, cond_hidden=(4, 8),
        ),
        classifier=ClassifierConfig(channels=(4, 4, 8, 8), kernel_size=3),
    )  # fmt: skip


def make_scene(library: torch.Tensor, n: int = 4, size: int = 16, seed: int = 0):
    """HSI made by mixing the library with smooth random abundances; RGB = 3 of its bands."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, library.shape[1], size // 4, size // 4, generator=g) * 2
    logits = torch.nn.functional.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
    a = torch.softmax(logits, dim=1)
    hsi = torch.einsum("bg,ngij->nbij", library, a)
    rgb = hsi[:, [6, 3, 1]]
    return hsi, rgb
