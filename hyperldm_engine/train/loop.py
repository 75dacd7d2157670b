"""The training run: stage 1 (VQGAN + discriminators), latent scale, stage 2 (latent diffusion), classifier.

One global iteration counter runs through the stages: ``[0, vq)`` VQGAN, ``[vq, vq + diff)``
diffusion, then the classifier. After every iteration the trainer may write a checkpoint (every
``checkpoint_every`` iterations, at the end, and when SIGINT/SIGTERM arrive); a checkpoint holds
all weights, optimiser and scheduler states, the iteration, the latent scale, the loss history and
every random state of every rank, so a run resumed from it reaches bit-identical weights (CPU).
Model initialisation uses ``torch.manual_seed`` only inside ``torch.random.fork_rng``, so the
caller's global RNG is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hyperldm_engine.diffusion.loss import diffusion_loss
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import InputError, Interrupted
from hyperldm_engine.models.config import ModelConfig
from hyperldm_engine.train import checkpoint as ckpt
from hyperldm_engine.train.augment import AugmentConfig
from hyperldm_engine.train.data import Normaliser, PatchSampler, TrainScene, labelled_pixels
from hyperldm_engine.train.distributed import (
    DistContext,
    all_mean,
    any_flag,
    average_gradients,
    broadcast_module,
    gather_objects,
)
from hyperldm_engine.train.stage1 import Stage1
from hyperldm_engine.train.stage2 import clean_latents, latent_scale


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained weights (besides data, model config and seed)."""

    vq_iterations: int = 2000
    diffusion_iterations: int = 2000
    classifier_iterations: int = 500
    patch_size: int = 64
    batch_size: int = 8
    diffusion_patch_size: int | None = None  # stage 2 (None: patch_size); larger gives the U-Net context
    diffusion_batch_size: int | None = None  # stage 2 (None: batch_size)
    seed: int = 0
    lr_vq: float = 2e-4
    lr_disc: float = 2e-4
    lr_diffusion: float = 2e-4
    lr_classifier: float = 5e-3
    weight_decay: float = 1e-2
    adv_weight: float = 0.1
    adv_start: float = 0.3            # fraction of stage 1 before the adversarial loss starts
    disc_every: int = 3
    disc_width: int = 64
    reseed_every: int = 50
    classifier_batch: int = 512
    scale_batches: int = 8
    heldout_fraction: float = 0.1
    min_valid: float = 0.9
    orient: bool = True
    augment: bool = True
    checkpoint_every: int = 200
    abundance_entropy: float = 0.0    # weight of the abundance-entropy sparsity prior (0 = the paper)
    min_snr_gamma: float | None = None  # Min-SNR-gamma loss weighting of stage 2 (None = the paper's plain MSE)
    #: latent-anchor iterations after the three stages (``train.anchor``; 0 = no anchor, the paper)
    anchor_iterations: int = 0
    #: decoder-alignment iterations after the stages (``train.align``; 0 = the paper's decoder)
    align_iterations: int = 0

    @property
    def total(self) -> int:
        return self.vq_iterations + self.diffusion_iterations + self.classifier_iterations

    def stage_of(self, iteration: int) -> str:
        if iteration < self.vq_iterations:
            return "vq"
        if iteration < self.vq_iterations + self.diffusion_iterations:
            return "diffusion"
        if iteration < self.total:
            return "classifier"
        return "done"


@dataclass
class TrainState:
    """What the run has produced so far besides weights."""

    iteration: int = 0
    scale: float | None = None
    history: dict[str, list[list[float]]] = field(default_factory=lambda: {"vq": [], "diffusion": [],
                                                                            "classifier": []})


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag the loop checks between iterations (main thread only)."""

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: object) -> None:
        self.signum = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()


def _cosine(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(int(steps), 1),
                                                      eta_min=optimizer.param_groups[0]["lr"] * 0.05)


def _disc_layers(patch_size: int) -> int:
    """PatchGAN depth that leaves at least a 2 x 2 logit map (3 for 64 px patches and larger)."""
    return int(max(1, min(3, int(np.log2(patch_size)) - 2)))


def _ssim_kernel(latent_side: int) -> int:
    k = min(11, latent_side)
    return k if k % 2 else k - 1


class Trainer:
    """Builds the networks and optimisers and runs the iterations; rank-aware, checkpointable."""

    def __init__(self, scenes: list[TrainScene], config: ModelConfig, library: np.ndarray,
                 settings: TrainSettings, normaliser: Normaliser, ctx: DistContext | None = None,
                 schedule: NoiseSchedule | None = None, n_classes: int = 0,
                 init_weights: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
        from hyperldm_engine.models.classifier import SpectralClassifier
        from hyperldm_engine.models.discriminators import SpatialDiscriminator, SpectralDiscriminator
        from hyperldm_engine.models.unet import LatentDenoiser
        from hyperldm_engine.models.vqgan import ConditionalVQGAN

        self.ctx = ctx or DistContext()
        self.settings = s = settings
        self.config = config
        self.schedule = schedule or NoiseSchedule.linear()
        self.device = self.ctx.device
        align = config.vqgan.downsample_factor * config.denoiser.alignment
        for size in {s.patch_size, s.diffusion_patch_size or s.patch_size}:
            if size % align:
                raise InputError(f"--patch-size {size} must be a multiple of {align} for the "
                                 f"{config.preset} model (latent factor x U-Net alignment)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.seed)
            self.vqgan = ConditionalVQGAN(config, torch.as_tensor(library, dtype=torch.float32))
            self.spatial_d = SpatialDiscriminator(config.n_bands, s.disc_width, _disc_layers(s.patch_size))
            self.spectral_d = SpectralDiscriminator(config.n_bands, max(s.disc_width // 2, 1))
            self.denoiser = LatentDenoiser(config)
            self.classifier = SpectralClassifier(config.n_bands, n_classes, config.classifier) \
                if n_classes > 0 else None
        self.modules: dict[str, torch.nn.Module] = {"vqgan": self.vqgan, "spatial_d": self.spatial_d,
                                                    "spectral_d": self.spectral_d, "denoiser": self.denoiser}
        if self.classifier is not None:
            self.modules["classifier"] = self.classifier
        self.fresh_codebook = not (init_weights and "vqgan" in init_weights)
        if init_weights:
            for name, sd in init_weights.items():
                if name in self.modules:
                    self.modules[name].load_state_dict(sd)
        for m in self.modules.values():
            m.to(self.device)
            broadcast_module(self.ctx, m)

        self.opt = {
            "vq": torch.optim.Adam(self.vqgan.parameters(), lr=s.lr_vq, betas=(0.5, 0.9)),
            "disc": torch.optim.Adam(list(self.spatial_d.parameters()) + list(self.spectral_d.parameters()),
                                     lr=s.lr_disc, betas=(0.5, 0.9)),
            "diffusion": torch.optim.AdamW(self.denoiser.parameters(), lr=s.lr_diffusion,
                                           weight_decay=s.weight_decay),
        }
        if self.classifier is not None:
            self.opt["classifier"] = torch.optim.Adam(self.classifier.parameters(), lr=s.lr_classifier)
        self.sched = {
            "vq": _cosine(self.opt["vq"], s.vq_iterations),
            "disc": _cosine(self.opt["disc"], max(s.vq_iterations // s.disc_every, 1)),
            "diffusion": _cosine(self.opt["diffusion"], s.diffusion_iterations),
        }
        if self.classifier is not None:
            self.sched["classifier"] = _cosine(self.opt["classifier"], s.classifier_iterations)

        rank_seed = [s.seed, self.ctx.rank]
        self.rng = np.random.default_rng(rank_seed)
        self.gen = torch.Generator().manual_seed(int(np.random.default_rng(rank_seed).integers(2**62)))
        self.global_seed = int(np.random.default_rng([s.seed, self.ctx.rank, 1]).integers(2**62))
        self.sampler = PatchSampler(scenes, s.patch_size, self.rng, normaliser, s.min_valid, s.orient,
                                    AugmentConfig() if s.augment else None)
        self.diffusion_sampler = self.sampler
        if (s.diffusion_patch_size or s.patch_size) != s.patch_size:
            self.diffusion_sampler = PatchSampler(scenes, s.diffusion_patch_size, self.rng, normaliser, s.min_valid,
                                                  s.orient, AugmentConfig() if s.augment else None)
        self.stage1 = Stage1(self.vqgan, self.spatial_d, self.spectral_d, s.adv_weight,
                             round(s.adv_start * s.vq_iterations), s.disc_every, s.reseed_every,
                             latent_dropout=config.vqgan.latent_dropout,
                             abundance_entropy_weight=s.abundance_entropy)
        self.pixels = labelled_pixels(scenes, "train") if self.classifier is not None else None
        if self.pixels is not None and self.pixels[1].size == 0:
            raise InputError("the labels raster has no valid labelled pixel in the training rows")
        self.state = TrainState()
        self._global_rng_state: torch.Tensor | None = None

    # ---- checkpoint state -----------------------------------------------------------------------
    def _local_state(self) -> dict[str, Any]:
        """What differs between ranks: random states and the code-usage statistics."""
        return {"rng": ckpt.rng_state({"gen": self.gen}, {"rng": self.rng}),
                "usage": self.vqgan.quantizer.usage.detach().cpu().clone()}

    def checkpoint_state(self, fingerprint: dict[str, Any]) -> dict[str, Any]:
        """Full state (collective under DDP: every rank must call it)."""
        local = gather_objects(self.ctx, self._local_state())
        return {
            "fingerprint": fingerprint, "world_size": self.ctx.world_size,
            "iteration": self.state.iteration, "stage": self.settings.stage_of(self.state.iteration),
            "scale": self.state.scale, "history": self.state.history, "ranks": local,
            "models": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.opt.items()},
            "schedulers": {k: v.state_dict() for k, v in self.sched.items()},
        }

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(state["models"][k])
        for k, o in self.opt.items():
            o.load_state_dict(state["optimizers"][k])
        for k, v in self.sched.items():
            v.load_state_dict(state["schedulers"][k])
        local = state["ranks"][self.ctx.rank]
        ckpt.restore_rng_state(local["rng"], {"gen": self.gen}, {"rng": self.rng}, set_global=False)
        self._global_rng_state = local["rng"]["torch_global"]
        self.vqgan.quantizer.usage.copy_(local["usage"])
        self.state = TrainState(iteration=int(state["iteration"]), scale=state["scale"],
                                history={k: [list(r) for r in v] for k, v in state["history"].items()})

    # ---- one iteration --------------------------------------------------------------------------
    def _step(self, opt_key: str, loss: torch.Tensor, params) -> None:
        opt = self.opt[opt_key]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.ctx, params)
        opt.step()
        self.sched[opt_key].step()

    def step(self) -> dict[str, float]:
        """Run the current iteration of whichever stage it belongs to; return its logged losses."""
        s, it = self.settings, self.state.iteration
        stage = s.stage_of(it)
        if stage == "vq":
            logs = self._vq_step(it)
        elif stage == "diffusion":
            if self.state.scale is None:
                self.state.scale = latent_scale(self.vqgan, self.diffusion_sampler,
                                                s.diffusion_batch_size or s.batch_size, s.scale_batches,
                                                self.ctx, self.device)
            logs = self._diffusion_step()
        elif stage == "classifier":
            logs = self._classifier_step()
        else:
            raise RuntimeError("training is already complete")
        logs = {k: all_mean(self.ctx, v) for k, v in logs.items()}
        self.state.history[stage].append([float(it), logs["loss"]])
        self.state.iteration += 1
        return logs

    def _batch(self, stage: str = "vq"):
        if stage == "diffusion":
            b = self.diffusion_sampler.sample(self.settings.diffusion_batch_size or self.settings.batch_size)
        else:
            b = self.sampler.sample(self.settings.batch_size)
        return type(b)(hsi=b.hsi.to(self.device), rgb=b.rgb.to(self.device), valid=b.valid.to(self.device))

    def _vq_step(self, it: int) -> dict[str, float]:
        self.vqgan.train()
        batch = self._batch()
        loss, out, recon, logs = self.stage1.generator_loss(batch, it, self.gen)
        self._step("vq", loss, self.vqgan.parameters())
        if self.stage1.discriminator_active(it):
            d_loss, d_logs = self.stage1.discriminator_loss(batch.hsi, recon, it, self.gen)
            self._step("disc", d_loss, list(self.spatial_d.parameters()) + list(self.spectral_d.parameters()))
            logs.update(d_logs)
        if it == 0 and self.fresh_codebook:  # data-dependent codebook initialisation
            self.vqgan.quantizer.reseed_dead_codes(out.z.detach().cpu(), threshold=float("inf"),
                                                       generator=self.gen)
        elif self.stage1.reseed_due(it):
            logs["reseeded"] = float(self.vqgan.quantizer.reseed_dead_codes(out.z.detach().cpu(), generator=self.gen))
        return logs

    def _diffusion_step(self) -> dict[str, float]:
        self.denoiser.train()
        batch = self._batch("diffusion")
        x0 = clean_latents(self.vqgan, batch.hsi) * self.state.scale
        cond = self.denoiser.encode_condition(batch.rgb)
        loss, logs = diffusion_loss(self.denoiser, x0, cond, self.schedule, self.gen,
                                    ssim_kernel_size=_ssim_kernel(min(x0.shape[-2:])),
                                    prediction=self.config.denoiser.prediction,
                                    min_snr_gamma=self.settings.min_snr_gamma)
        self._step("diffusion", loss, self.denoiser.parameters())
        return {k.split("/")[-1]: float(v) for k, v in logs.items()}

    def _classifier_step(self) -> dict[str, float]:
        assert self.classifier is not None and self.pixels is not None
        self.classifier.train()
        x, y = self.pixels
        idx = self.rng.integers(y.size, size=self.settings.classifier_batch)
        xb = torch.from_numpy(x[idx]).to(self.device)
        yb = torch.from_numpy(y[idx]).to(self.device)
        logits = self.classifier(xb)
        loss = F.cross_entropy(logits, yb)
        self._step("classifier", loss, self.classifier.parameters())
        acc = float((logits.argmax(dim=1) == yb).float().mean())
        return {"loss": float(loss.detach()), "acc": acc}

    # ---- the run --------------------------------------------------------------------------------
    def run(self, checkpoint_dir: Path | None, fingerprint: dict[str, Any], progress=None,
            stop: StopRequest | None = None, stop_after: int | None = None) -> None:
        """Iterate to the end, checkpointing; on a stop signal checkpoint and raise Interrupted.

        ``stop_after`` stops (as a signal would) once that global iteration is done (for tests).
        """
        s = self.settings
        with torch.random.fork_rng(devices=[]):
            if self._global_rng_state is not None:
                torch.set_rng_state(self._global_rng_state)
            else:
                torch.manual_seed(self.global_seed)
            if progress is not None and self.state.iteration:
                progress.advance(self.state.iteration, message="resumed")
            while self.state.iteration < s.total:
                logs = self.step()
                it = self.state.iteration
                if progress is not None:
                    stage = s.stage_of(it - 1)
                    progress.advance(1, message=stage, **{k: round(v, 4) for k, v in logs.items()})
                signum = stop.signum if stop is not None else 0
                if stop_after is not None and it >= stop_after:
                    signum = int(signal.SIGINT)
                signum = any_flag(self.ctx, signum)
                due = checkpoint_dir is not None and (
                    signum or it == s.total or (s.checkpoint_every > 0 and it % s.checkpoint_every == 0))
                if due:
                    self.save(checkpoint_dir, fingerprint)
                if signum:
                    code = 143 if signum == signal.SIGTERM else 130
                    where = f"; a checkpoint was written to {checkpoint_dir}" if checkpoint_dir else ""
                    raise Interrupted(f"training stopped at iteration {it} of {s.total}{where}; "
                                      "run the same command again to resume", exit_code=code)

    def save(self, checkpoint_dir: Path, fingerprint: dict[str, Any]) -> None:
        state = self.checkpoint_state(fingerprint)  # collective
        if self.ctx.is_main:
            ckpt.save_checkpoint(checkpoint_dir, self.state.iteration, state)

    def resume(self, checkpoint_dir: Path, fingerprint: dict[str, Any]) -> bool:
        """Load the newest checkpoint if there is one; refuse one made with other arguments."""
        state = ckpt.latest_checkpoint(checkpoint_dir)
        if state is None:
            return False
        if state.get("fingerprint") != fingerprint:
            raise InputError(f"{checkpoint_dir}: these checkpoints come from a run with other inputs or "
                             "settings; use --restart to discard them")
        if int(state.get("world_size", 1)) != self.ctx.world_size:
            raise InputError(f"{checkpoint_dir}: checkpoints were written by {state.get('world_size')} "
                             f"processes, this run has {self.ctx.world_size}; use the same number or --restart")
        self.load_checkpoint_state(state)
        return True

    @property
    def weights(self) -> dict[str, dict[str, torch.Tensor]]:
        return {k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in self.modules.items()}


def fingerprint(settings: TrainSettings, config: ModelConfig, inputs: dict[str, Any]) -> dict[str, Any]:
    """A JSON description of what decides the weights; checkpoints from another run are refused."""
    blob = {"settings": asdict(settings) | {"checkpoint_every": None}, "config": config.to_dict(),
            "inputs": inputs}
    blob = json.loads(json.dumps(blob, default=str))
    blob["digest"] = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]
    return blob


@contextlib.contextmanager
def no_grad_eval(*modules: torch.nn.Module):
    """Eval mode and no autograd for the duration, restoring the training flags after."""
    flags = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, f in zip(modules, flags, strict=True):
            m.train(f)
