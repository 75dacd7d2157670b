"""Stage-1 losses: reconstruction (100 L1 + 1000 (1 - cos)), VQ, and two adversarial terms.

As in taming-transformers' ``VQLPIPSWithDiscriminator``: the adversarial terms switch on at
``disc_start`` (before that their factor is 0) and the generator's adversarial weight is adaptive,
``||grad rec|| / ||grad adv||`` at the decoder's last layer, clamped to [0, 1e4]. Both calls return
``(loss, log)`` with keys like ``train/rec_loss`` (plain floats, detached).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hyperldm_engine.models.discriminators import SpatialDiscriminator, SpectralDiscriminator


def spectral_angle_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean of 1 - cos(angle) between predicted and target spectra along dim 1 (bands)."""
    return (1.0 - F.cosine_similarity(pred, target, dim=1, eps=eps)).mean()


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def vanilla_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())


class VQGANLoss(nn.Module):
    """Generator and discriminator objectives of the conditional VQGAN (weights from the paper)."""

    def __init__(
        self,
        l1_weight: float = 100.0,
        sam_weight: float = 1000.0,
        vq_weight: float = 1.0,
        adversarial_weight: float = 1.0,
        disc_start: int = 0,
        disc_loss: Literal["hinge", "vanilla"] = "hinge",
        adaptive_weight: bool = True,
        spectral_pixels: int | None = 4096,
    ) -> None:
        super().__init__()
        if disc_loss not in ("hinge", "vanilla"):
            raise ValueError(f"disc_loss must be hinge or vanilla, got {disc_loss!r}")
        self.l1_weight = l1_weight
        self.sam_weight = sam_weight
        self.vq_weight = vq_weight
        self.adversarial_weight = adversarial_weight
        self.disc_start = disc_start
        self.disc_loss = disc_loss
        self.adaptive_weight = adaptive_weight
        self.spectral_pixels = spectral_pixels

    def adversarial_factor(self, step: int) -> float:
        """0 before ``disc_start``, 1 from then on (taming's ``adopt_weight``)."""
        return 0.0 if step < self.disc_start else 1.0

    def reconstruction_loss(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        l1 = (pred - target).abs().mean()
        sam = spectral_angle_loss(pred, target)
        return self.l1_weight * l1 + self.sam_weight * sam, {"l1": l1, "sam": sam}

    def _generator_adv(self, fake: torch.Tensor, d: nn.Module, spectral: bool, generator) -> torch.Tensor:
        logits = d(fake, self.spectral_pixels, generator) if spectral else d(fake)
        if self.disc_loss == "hinge":
            return -logits.mean()
        return F.softplus(-logits).mean()

    def _adaptive(self, rec: torch.Tensor, adv: torch.Tensor, last_layer: torch.Tensor | None) -> torch.Tensor:
        if not self.adaptive_weight or last_layer is None or not torch.is_grad_enabled():
            return torch.tensor(self.adversarial_weight, device=rec.device)
        rec_grad = torch.autograd.grad(rec, last_layer, retain_graph=True)[0]
        adv_grad = torch.autograd.grad(adv, last_layer, retain_graph=True)[0]
        weight = rec_grad.norm() / (adv_grad.norm() + 1e-4)
        return torch.clamp(weight, 0.0, 1e4).detach() * self.adversarial_weight

    def generator_loss(
        self,
        target: torch.Tensor,
        recon: torch.Tensor,
        vq_loss: torch.Tensor,
        step: int,
        spatial_disc: SpatialDiscriminator | None = None,
        spectral_disc: SpectralDiscriminator | None = None,
        last_layer: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        split: str = "train",
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total generator loss for HSI ``target`` and reconstruction ``recon`` (B, n_bands, H, W)."""
        rec, parts = self.reconstruction_loss(recon, target)
        loss = rec + self.vq_weight * vq_loss
        factor = self.adversarial_factor(step)
        adv = torch.zeros((), device=recon.device)
        weight = torch.zeros((), device=recon.device)
        if factor > 0 and (spatial_disc is not None or spectral_disc is not None):
            if spatial_disc is not None:
                adv = adv + self._generator_adv(recon, spatial_disc, False, generator)
            if spectral_disc is not None:
                adv = adv + self._generator_adv(recon, spectral_disc, True, generator)
            weight = self._adaptive(rec, adv, last_layer)
            loss = loss + factor * weight * adv
        log = {
            f"{split}/total_loss": loss.detach(),
            f"{split}/rec_loss": rec.detach(),
            f"{split}/l1_loss": parts["l1"].detach(),
            f"{split}/sam_loss": parts["sam"].detach(),
            f"{split}/vq_loss": vq_loss.detach(),
            f"{split}/g_loss": adv.detach(),
            f"{split}/d_weight": weight.detach(),
            f"{split}/disc_factor": torch.tensor(factor),
        }
        return loss, {k: float(v) for k, v in log.items()}

    def discriminator_loss(
        self,
        target: torch.Tensor,
        recon: torch.Tensor,
        step: int,
        spatial_disc: SpatialDiscriminator | None = None,
        spectral_disc: SpectralDiscriminator | None = None,
        generator: torch.Generator | None = None,
        split: str = "train",
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Discriminator loss on real ``target`` and (detached) ``recon``; 0 before ``disc_start``."""
        fake = recon.detach()
        d_fn = hinge_d_loss if self.disc_loss == "hinge" else vanilla_d_loss
        factor = self.adversarial_factor(step)
        loss = torch.zeros((), device=target.device)
        log: dict[str, float] = {}
        if spatial_disc is not None:
            real_l, fake_l = spatial_disc(target), spatial_disc(fake)
            d = d_fn(real_l, fake_l)
            loss = loss + d
            log[f"{split}/disc_spatial_loss"] = float(d.detach())
            log[f"{split}/logits_real"] = float(real_l.detach().mean())
            log[f"{split}/logits_fake"] = float(fake_l.detach().mean())
        if spectral_disc is not None:
            state = generator.get_state() if generator is not None else None
            real_l = spectral_disc(target, self.spectral_pixels, generator)
            if state is not None:
                generator.set_state(state)  # same pixels for real and fake
            fake_l = spectral_disc(fake, self.spectral_pixels, generator)
            d = d_fn(real_l, fake_l)
            loss = loss + d
            log[f"{split}/disc_spectral_loss"] = float(d.detach())
        loss = factor * loss
        log[f"{split}/disc_loss"] = float(loss.detach())
        return loss, log
