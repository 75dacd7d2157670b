"""Stage 2 helpers: the latent scale factor and the latents the denoiser learns to generate.

Latents are the quantised codes ``z_q`` of the frozen VQGAN multiplied by ``scale = 1 / std(z_q)``
over training patches (latent-diffusion's scale factor; the HyperLDM authors used 0.24), so the
diffusion works on unit-variance data and ``x_T`` ~ N(0, I) is a fair start.
"""

from __future__ import annotations

import torch

from hyperldm_engine.train.data import PatchSampler
from hyperldm_engine.train.distributed import DistContext, all_mean


@torch.no_grad()
def clean_latents(vqgan, hsi: torch.Tensor) -> torch.Tensor:
    """Quantised latents ``z_q`` of ``hsi`` (VQGAN in eval mode: code usage is not updated)."""
    was_training = vqgan.training
    vqgan.eval()
    try:
        return vqgan.quantize(vqgan.encode(hsi)).z_q
    finally:
        vqgan.train(was_training)


@torch.no_grad()
def latent_scale(vqgan, sampler: PatchSampler, batch_size: int, batches: int, ctx: DistContext,
                 device: torch.device) -> float:
    """``1 / std`` of the quantised latents over ``batches`` batches of training patches (all ranks)."""
    s1 = s2 = n = 0.0
    for _ in range(batches):
        z = clean_latents(vqgan, sampler.sample(batch_size).hsi.to(device)).double()
        s1 += float(z.sum())
        s2 += float((z * z).sum())
        n += z.numel()
    s1, s2, n = all_mean(ctx, s1), all_mean(ctx, s2), all_mean(ctx, n)
    var = max(s2 / n - (s1 / n) ** 2, 1e-12)
    return float(1.0 / var ** 0.5)
