"""Model configs for tests: the real presets with every width shrunk, so a bundle builds in milliseconds."""

from __future__ import annotations

import dataclasses

from hyperldm_engine.models.config import ClassifierConfig, DenoiserConfig, ModelConfig


def tiny_config(n_library: int) -> ModelConfig:
    """``ModelConfig.small`` (48 bands, f = 4) with every width shrunk; latent alignment 2 (8 px)."""
    base = ModelConfig.small(n_bands=48, n_library=n_library, n_classes=3)
    return dataclasses.replace(
        base,
        vqgan=dataclasses.replace(base.vqgan, latent_channels=4, codebook_size=16, encoder_channels=(8, 8, 8),
                                  decoder_channels=(8, 8, 8), condition_channels=(4, 4, 4)),
        denoiser=DenoiserConfig(channels=(8, 16), num_res_blocks=1, attention_downsample=(), head_channels=8,
                                time_embed_dim=16, cond_channels=4, cond_hidden=(4, 8)),
        classifier=ClassifierConfig(channels=(4, 4, 8, 8), kernel_size=3),
        preset="tiny",
    )
