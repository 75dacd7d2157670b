"""Stage 1: the conditional VQGAN with spatial and spectral discriminators.

Generator loss (paper, ``models.losses.VQGANLoss``): ``100 * L1 + 1000 * (1 - cos) + VQ +
adversarial`` with taming's adaptive adversarial weight; the adversarial terms start after
``adv_start_iteration``; the discriminators are stepped once per ``disc_every`` generator steps.
With ``latent_dropout`` a fraction of the samples is decoded from a zero latent, so the decoder
must reconstruct from the RGB alone (its deterministic estimate, the mean mode); an optional
abundance-entropy term is a sparsity prior on A. Nodata pixels (zeros in the patch) are excluded
by copying the target into the reconstruction there, so they carry no gradient. Dead codes are
re-seeded from encoder outputs every ``reseed_every`` steps.
"""

from __future__ import annotations

import torch

from hyperldm_engine.models.losses import VQGANLoss
from hyperldm_engine.train.data import PatchBatch


class Stage1:
    """The stage-1 objectives on a batch; the trainer owns models, optimisers and schedulers."""

    def __init__(self, vqgan, spatial_d, spectral_d, adv_weight: float = 0.1, adv_start_iteration: int = 0,
                 disc_every: int = 3, reseed_every: int = 50, latent_dropout: float = 0.0,
                 abundance_entropy_weight: float = 0.0) -> None:
        self.vqgan = vqgan
        self.spatial_d = spatial_d
        self.spectral_d = spectral_d
        self.loss = VQGANLoss(adversarial_weight=adv_weight, disc_start=adv_start_iteration)
        self.adv_weight = adv_weight
        self.adv_start_iteration = adv_start_iteration
        self.disc_every = disc_every
        self.reseed_every = reseed_every
        self.latent_dropout = float(latent_dropout)
        self.abundance_entropy_weight = float(abundance_entropy_weight)

    def generator_loss(self, batch: PatchBatch, iteration: int, generator: torch.Generator):
        keep = None
        if self.latent_dropout > 0:
            keep = torch.rand(batch.hsi.shape[0], generator=generator) >= self.latent_dropout
            keep = keep.to(batch.hsi.device)
        out = self.vqgan(batch.hsi, batch.rgb, latent_keep=keep)
        recon = torch.where(batch.valid[:, None], out.hsi, batch.hsi)
        use_adv = self.adv_weight > 0 and iteration >= self.adv_start_iteration
        loss, log = self.loss.generator_loss(
            batch.hsi, recon, out.vq_loss, iteration,
            self.spatial_d if use_adv else None, self.spectral_d if use_adv else None,
            last_layer=self.vqgan.last_layer, generator=generator)
        logs = {"loss": log["train/total_loss"], "l1": log["train/l1_loss"], "1-cos": log["train/sam_loss"],
                "vq": log["train/vq_loss"]}
        if self.abundance_entropy_weight > 0:
            # sparsity prior on A: mean per-pixel entropy (nats), pushing each pixel towards few spectra
            a = out.abundances.clamp_min(1e-8)
            entropy = -(a * a.log()).sum(1)
            entropy = (entropy * batch.valid).sum() / batch.valid.sum().clamp_min(1)
            loss = loss + self.abundance_entropy_weight * entropy
            logs["entropy"] = float(entropy.detach())
        if use_adv:
            logs["g_adv"] = log["train/g_loss"]
        return loss, out, recon, logs

    def discriminator_active(self, iteration: int) -> bool:
        return (self.adv_weight > 0 and iteration >= self.adv_start_iteration
                and (iteration - self.adv_start_iteration) % self.disc_every == 0)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, iteration: int,
                           generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        loss, log = self.loss.discriminator_loss(real, fake, iteration, self.spatial_d, self.spectral_d,
                                                 generator=generator)
        return loss, {"d": log["train/disc_loss"]}

    def reseed_due(self, iteration: int) -> bool:
        return self.reseed_every > 0 and (iteration + 1) % self.reseed_every == 0
