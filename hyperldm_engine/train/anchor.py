"""Training the latent anchor (``models.anchor``) of a trained bundle, its VQGAN and denoiser frozen.

The anchor regresses the scaled quantised latent ``latent_scale * z_q`` of the frozen encoder from
the normalised RGB, with a second term that decodes the prediction through the frozen decoder and
compares the cube with the truth (L1 on valid pixels): the latent term keeps the anchor where the
denoiser was trained (so sampling can start from it), the cube term makes the decoded anchor, the
deterministic ``--mode mean`` cube, as accurate as the decoder allows. Patches, augmentation and
RGB normalisation are those of the model's own training (``train.data.PatchSampler``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hyperldm_engine.models.anchor import AnchorConfig, LatentAnchor
from hyperldm_engine.train.augment import AugmentConfig
from hyperldm_engine.train.budget import run_budgeted
from hyperldm_engine.train.data import PatchSampler, TrainScene, scene_normaliser
from hyperldm_engine.train.stage2 import clean_latents

#: ``hyperldm-engine train --anchor-iterations`` default: 0 (experimental; measured not to help yet, docs/training.md)
DEFAULT_ANCHOR_ITERATIONS = 0


@dataclass(frozen=True)
class AnchorSettings:
    """``iterations`` is a ceiling; ``budget_minutes`` (if set) stops earlier on wall time."""

    iterations: int = 4000
    budget_minutes: float | None = None
    patch_size: int = 32
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    cube_weight: float = 20.0
    cube_every: int = 2          # the decoded-cube term every n-th iteration (the decoder costs as much as the anchor)
    augment: bool = True
    seed: int = 0


def anchor_loss(anchor: LatentAnchor, vqgan: Any, scale: float, hsi: torch.Tensor, rgb: torch.Tensor,
                valid: torch.Tensor, cube_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Latent MSE to the frozen encoder's scaled ``z_q`` plus ``cube_weight`` x masked L1 of the decoded
    cube (``cube_weight`` 0 skips the decoder)."""
    target = clean_latents(vqgan, hsi) * scale
    pred = anchor(rgb)
    latent = F.mse_loss(pred, target)
    if cube_weight == 0:
        return latent, {"latent_mse": float(latent.detach())}
    cube = vqgan.decode(pred / scale, rgb, return_abundances=False).hsi
    m = valid[:, None].to(cube.dtype)
    l1 = ((cube - hsi).abs() * m).sum() / (m.sum() * cube.shape[1]).clamp_min(1.0)
    loss = latent + cube_weight * l1
    return loss, {"latent_mse": float(latent.detach()), "cube_l1": float(l1.detach())}


def train_anchor(vqgan: Any, scale: float, scenes: list[TrainScene], config: AnchorConfig,
                 settings: AnchorSettings, progress: Any = None) -> tuple[LatentAnchor, dict[str, Any]]:
    """A trained :class:`LatentAnchor` for ``vqgan`` (frozen) and its history (losses, seconds)."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng([settings.seed, 0xA7C])
    sampler = PatchSampler(scenes, settings.patch_size, rng, scene_normaliser,
                           augment=AugmentConfig() if settings.augment else None)
    anchor = LatentAnchor(config, vqgan.config.vqgan.latent_channels, vqgan.factor)
    vqgan.eval()
    for p in vqgan.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(anchor.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    t0 = time.perf_counter()

    def step(it: int) -> tuple[torch.Tensor, dict[str, float]]:
        batch = sampler.sample(settings.batch_size)
        weight = settings.cube_weight if it % max(settings.cube_every, 1) == 0 else 0.0
        return anchor_loss(anchor, vqgan, scale, batch.hsi, batch.rgb, batch.valid, weight)

    done, history = run_budgeted(opt, settings.iterations, settings.budget_minutes, step, progress, log_every=50)
    anchor.eval()
    info = {"settings": asdict(settings), "iterations_done": done, "seconds": round(time.perf_counter() - t0, 1),
            "history": history}
    return anchor, info
