"""Decoder alignment: fine-tune the decoder side on the latents the sampler actually produces.

Why (docs/model-diagnosis.md): the denoiser's samples are plausible latents for *some* scene with
these colours, not the scene's own (R^2 of sampled against encoder latents ~ 0), yet the paper's
decoder is trained only on encoder latents. At synthesis it therefore trusts whatever material and
near-infrared level a sampled latent carries. This stage keeps the paper's reconstruction loss on
the encoder's latents and adds the same loss on the decoded samples of the frozen denoiser (DDIM,
the synthesis default), so the decoder learns which parts of a sampled latent it can trust and takes
the rest from the RGB condition: the decoder becomes the one the sampler needs. An optional
class-group prior, ``-log`` of the abundance mass in the label's material group, on both decodes
(training scenes with land-cover labels), makes the abundances material maps that follow the RGB.

The encoder, codebook, latent scale, denoiser and classifier are frozen, so the bundle's latents and
sampler stay valid; trained: condition encoder, decoder, abundance head and illumination.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from hyperldm_engine.diffusion.parameterization import denoiser_eps_fn
from hyperldm_engine.diffusion.samplers import DEFAULT_STEPS, make_sampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.models.losses import VQGANLoss
from hyperldm_engine.spectral.groups import GROUPS, group_matrix, label_groups
from hyperldm_engine.train.augment import AugmentConfig
from hyperldm_engine.train.budget import run_budgeted
from hyperldm_engine.train.data import PatchBatch, PatchSampler, TrainScene, scene_normaliser

#: ``hyperldm-engine train --align-iterations`` default (0: the paper's decoder, trained on encoder latents only)
DEFAULT_ALIGN_ITERATIONS = 0


@dataclass(frozen=True)
class AlignSettings:
    """``iterations`` is a ceiling; ``budget_minutes`` (if set) stops earlier on wall time (and then
    shapes the cosine schedule too, so a budgeted run depends on the machine's speed). The defaults
    are the recipe of the bundled model (docs/model-diagnosis.md, "Decoder alignment").

    ``sample_weight`` weighs the loss on decoded samples against the reconstruction loss (1);
    ``mean_of`` K > 1 applies it to the mean of K samples of each patch, not to each sample: the
    decoder is taught that its samples average to the truth (the posterior mean) and is left free in
    how they spread around it, so diversity is not trained away. ``group_weight`` weighs the
    class-group prior on the reconstruction and on the (mean) sample abundances (0 = off, or no
    labels). ``steps``/``eta`` are the sampler's (the synthesis default: DDIM 4, eta 1).
    ``sample_loss`` "paper" is the paper's reconstruction terms on the (mean) sample; "energy" the
    energy score of the K samples (Gneiting and Raftery 2007), ``E||x - y|| - E||x - x'|| / 2`` per
    pixel, a proper scoring rule: lowest in expectation when the samples are drawn from the true
    conditional distribution, so it rewards accuracy without rewarding collapse (needs K >= 2)."""

    iterations: int = 1500
    budget_minutes: float | None = None
    patch_size: int = 64
    batch_size: int = 3
    lr: float = 2e-4
    sample_weight: float = 1.0
    mean_of: int = 3
    sample_loss: str = "energy"
    group_weight: float = 2.0
    steps: int = DEFAULT_STEPS
    eta: float = 1.0
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sample_loss not in ("energy", "paper"):
            raise ValueError(f"sample_loss must be 'energy' or 'paper', got {self.sample_loss!r}")


def group_nll(abundances: torch.Tensor, group_of_spectrum: torch.Tensor, want: torch.Tensor,
              ok: torch.Tensor) -> torch.Tensor:
    """Mean over ``ok`` pixels of ``-log`` (abundance mass in the pixel's wanted group).

    ``abundances`` (B, n_g, h, w), ``group_of_spectrum`` (groups, n_g) 0/1, ``want`` (B, h, w) group
    indices, ``ok`` (B, h, w) bool."""
    grouped = torch.einsum("gn,bnhw->bghw", group_of_spectrum, abundances)
    mass = grouped.gather(1, want.clamp_min(0)[:, None]).squeeze(1).clamp_min(1e-6)
    return -(mass.log() * ok).sum() / ok.sum().clamp_min(1)


def energy_score(samples: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over ``valid`` pixels of ``mean_k ||x_k - y|| - mean_{k != l} ||x_k - x_l|| / 2`` (norms over bands).

    ``samples`` (K, B, C, H, W), K >= 2; ``truth`` (B, C, H, W); ``valid`` (B, H, W) bool."""
    k = samples.shape[0]
    if k < 2:
        raise ValueError("the energy score needs at least two samples per patch (mean_of >= 2)")
    to_truth = (samples - truth[None]).pow(2).sum(2).add(1e-12).sqrt().mean(0)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    spread = torch.stack([(samples[i] - samples[j]).pow(2).sum(1).add(1e-12).sqrt() for i, j in pairs]).mean(0)
    score = to_truth - 0.5 * spread
    m = valid.to(score.dtype)
    return (score * m).sum() / m.sum().clamp_min(1.0)


@torch.no_grad()
def sample_latents(denoiser: Any, sampler: Any, prediction: str, rgb: torch.Tensor, latent_channels: int,
                   factor: int, generator: torch.Generator) -> torch.Tensor:
    """One scaled latent per RGB patch from the frozen denoiser (the synthesis sampler, fresh noise)."""
    b, _, h, w = rgb.shape
    shape = (b, latent_channels, h // factor, w // factor)
    eps_fn = denoiser_eps_fn(denoiser, denoiser.encode_condition(rgb), prediction,
                             sampler.schedule.alpha_bar.tolist(), sampler.timesteps, b, rgb.device)
    return sampler.sample(eps_fn, torch.randn(shape, generator=generator),
                          lambda _i: torch.randn(shape, generator=generator))


class Aligner:
    """The alignment objective on a batch; owns nothing but the frozen parts it needs."""

    def __init__(self, bundle: Any, class_names: list[str] | None, settings: AlignSettings) -> None:
        self.vqgan, self.denoiser, self.settings = bundle.vqgan, bundle.denoiser, settings
        self.scale, self.prediction = float(bundle.latent_scale), bundle.config.denoiser.prediction
        self.sampler = make_sampler("ddim", NoiseSchedule.from_dict(bundle.schedule), settings.steps,
                                    eta=settings.eta, clip_x0=bundle.codebook_range())
        self.loss = VQGANLoss(adversarial_weight=0.0)
        self.group_of_spectrum = torch.from_numpy(group_matrix(list(bundle.library_classes)))
        self.group_of_label = (torch.from_numpy(label_groups(np.arange(len(class_names)), list(class_names)))
                               if class_names else None)
        self.bright = GROUPS.index("bright")  # clouds: no library spectrum is a cloud

    def paper_loss(self, hsi: torch.Tensor, decoded: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The paper's reconstruction terms (100 L1 + 1000 (1 - cos)), nodata pixels carrying no gradient."""
        loss, _ = self.loss.reconstruction_loss(torch.where(valid[:, None], decoded, hsi), hsi)
        return loss

    def __call__(self, batch: PatchBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        v, k = self.vqgan, max(int(self.settings.mean_of), 1)
        b = batch.hsi.shape[0]
        with torch.no_grad():
            z_q = v.quantize(v.encode(batch.hsi)).z_q
            rgb_k = batch.rgb.repeat(k, 1, 1, 1)  # sample s of patch i at row s * b + i
            sampled = sample_latents(self.denoiser, self.sampler, self.prediction, rgb_k,
                                     v.config.vqgan.latent_channels, v.factor, generator)
            z_s = v.quantize(sampled / self.scale).z_q
        cond = v.encode_condition(batch.rgb)
        both = v.mix_head(v.decoder(torch.cat([z_q, z_s]), [c.repeat(k + 1, 1, 1, 1) for c in cond]), True)
        recon = both[0][:b]
        samples = both[0][b:].reshape(k, b, *recon.shape[1:])
        l_rec = self.paper_loss(batch.hsi, recon, batch.valid)
        if self.settings.sample_loss == "energy":
            l_sam = energy_score(samples, batch.hsi, batch.valid) * (100.0 / recon.shape[1] ** 0.5)
        else:
            l_sam = self.paper_loss(batch.hsi, samples.mean(0), batch.valid)
        loss = l_rec + self.settings.sample_weight * l_sam
        logs = {"rec": float(l_rec.detach()), "sample": float(l_sam.detach())}
        if self.settings.group_weight > 0 and self.group_of_label is not None and batch.labels is not None:
            want = self.group_of_label[batch.labels.clamp_min(0)]
            ok = batch.valid & (batch.labels >= 0) & (want >= 0) & (want != self.bright)
            ab = both[1]
            mean_ab = ab[b:].reshape(k, b, *ab.shape[1:]).mean(0)
            l_grp = (group_nll(ab[:b], self.group_of_spectrum, want, ok)
                     + group_nll(mean_ab, self.group_of_spectrum, want, ok))
            loss = loss + self.settings.group_weight * l_grp
            logs["group"] = float(l_grp.detach())
        return loss, logs


def align_decoder(bundle: Any, scenes: list[TrainScene], settings: AlignSettings, progress: Any = None
                  ) -> dict[str, Any]:
    """Fine-tune ``bundle``'s decoder side in place (module docstring); returns settings, seconds, history."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng([settings.seed, 0xA119])
    sampler = PatchSampler(scenes, settings.patch_size, rng, scene_normaliser,
                           augment=AugmentConfig() if settings.augment else None)
    v = bundle.vqgan
    names = scenes[0].class_names if any(s.labels is not None for s in scenes) else None
    bundle.denoiser.eval()
    aligner = Aligner(bundle, names, settings)
    for p in list(v.parameters()) + list(bundle.denoiser.parameters()):
        p.requires_grad_(False)
    trained = [v.decoder, v.abundance_head] + ([v.condition_encoder] if v.condition_encoder is not None else [])
    params = [p for m in trained for p in m.parameters()] + [v.illumination_param]
    for p in params:
        p.requires_grad_(True)
    v.eval()  # pixel norms have no batch statistics; eval keeps the codebook's usage counters still
    opt = torch.optim.Adam(params, lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    t0 = time.perf_counter()
    done, history = run_budgeted(opt, settings.iterations, settings.budget_minutes,
                                 lambda _it: aligner(sampler.sample(settings.batch_size), gen), progress)
    for p in list(v.parameters()) + list(bundle.denoiser.parameters()):
        p.requires_grad_(True)
    v.eval()
    return {"settings": asdict(settings), "iterations_done": done, "seconds": round(time.perf_counter() - t0, 1),
            "frozen": "encoder, codebook, latent scale, denoiser, classifier", "history": history}
