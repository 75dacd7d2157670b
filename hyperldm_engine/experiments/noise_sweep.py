"""Paper Table IV: diversity (SD, SDM) and fidelity (MPSNR, SAM) against the noise schedule's maximum.

The schedule is a training-time hyper-parameter, so the faithful variant ("fine-tuned") fine-tunes
stage 2 only (the latent denoiser; the VQGAN is frozen and the latent scale kept) from the given
bundle for each noise scale 0.5x / 1x / 2x of the default maximum (the paper's M = 0.01 / 0.02 /
0.04), with the same iteration budget for every scale (1x included, so all three rows saw the same
extra training), then samples each fine-tuned model with its own schedule. The cheaper
"sampling-time rescale" variant samples the unchanged bundle with the betas rescaled at sampling
time only (``SamplingOptions.noise_scale``): a model sampled with a schedule it was not trained on.

Scenes are simulated: fine-tuning uses training scenes (seeds 0...), evaluation held-out scenes
(seeds 1000..., spectra from the held-out split). SD uses sample 0's softmax pooled over all test
scenes; SDM (primary and Inception-Score-like) and MPSNR / SAM (each sample against the reference,
averaged over samples) are averaged over scenes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.experiments.common import (
    classifier_probabilities,
    simulated_scenes,
    synthesize_in_memory,
)
from hyperldm_engine.pipeline.synthesize import SamplingOptions

SCALES = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class NoiseSweepSettings:
    """Sizes and budgets; defaults run in a few minutes on 2 CPU cores with the small model."""

    scenes: int = 2
    train_scenes: int = 2
    size: int = 128
    samples: int = 5
    steps: int = 10
    iterations: int = 100   # stage-2 fine-tuning iterations per noise scale
    batch_size: int = 4
    patch_size: int = 64
    lr: float = 1e-4
    seed: int = 0
    scales: tuple[float, ...] = SCALES
    finetune: bool = True
    device: str = "cpu"

    @classmethod
    def quick(cls) -> NoiseSweepSettings:
        return cls(scenes=1, train_scenes=1, size=32, samples=2, steps=2, iterations=2, batch_size=2,
                   patch_size=32)


def finetune_stage2(bundle_path: str, out_path: Path, noise_scale: float, train_scenes: list[Any],
                    settings: NoiseSweepSettings) -> float:
    """Fine-tune the denoiser of ``bundle_path`` under the schedule scaled by ``noise_scale``; save to ``out_path``.

    Uses the trainer's stage-2 step (``train.loop.Trainer`` with zero stage-1 and classifier
    iterations): the VQGAN is loaded and frozen, the bundle's latent scale is kept. Returns seconds.
    """
    from hyperldm_engine.diffusion.schedule import NoiseSchedule
    from hyperldm_engine.models.bundle import load_bundle, save_bundle
    from hyperldm_engine.train.data import heldout_row0, scene_from_simulation, scene_normaliser
    from hyperldm_engine.train.distributed import DistContext, resolve_device
    from hyperldm_engine.train.loop import Trainer, TrainSettings

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_path)
    p = NoiseSchedule.from_dict(bundle.schedule).params
    schedule = NoiseSchedule.linear(num_steps=NoiseSchedule.from_dict(bundle.schedule).num_steps,
                                    beta_start=p.get("beta_start", 0.01), beta_end=p.get("beta_end", 0.2),
                                    noise_scale=noise_scale)
    scenes = [scene_from_simulation(s.raw) for s in train_scenes]
    ts = TrainSettings(vq_iterations=0, diffusion_iterations=settings.iterations, classifier_iterations=0,
                       patch_size=settings.patch_size, batch_size=settings.batch_size, seed=settings.seed,
                       lr_diffusion=settings.lr, heldout_fraction=0.0, checkpoint_every=0)
    for s in scenes:
        s.heldout_row0 = heldout_row0(s.shape[0], ts.patch_size, 0.0, s.name)
    ctx = DistContext(device=resolve_device(settings.device))
    trainer = Trainer(scenes, bundle.config, bundle.library.numpy(), ts, scene_normaliser, ctx, schedule,
                      n_classes=0, init_weights={"vqgan": bundle.vqgan.state_dict(),
                                                 "denoiser": bundle.denoiser.state_dict()})
    trainer.state.scale = float(bundle.latent_scale)
    trainer.run(None, {})
    tuned = replace(bundle, denoiser=trainer.denoiser.cpu().eval(), schedule=schedule.to_dict(),
                    training={**bundle.training, "finetune": {
                        "what": "stage 2 (denoiser) only, VQGAN frozen", "from": str(bundle_path),
                        "noise_scale": noise_scale, "iterations": settings.iterations, "lr": settings.lr,
                        "batch_size": settings.batch_size, "patch_size": settings.patch_size,
                        "scenes": [s.name for s in scenes]}})
    save_bundle(out_path, tuned, overwrite=True)
    return time.perf_counter() - t0


def evaluate_model(bundle_path: str, test_scenes: list[Any], options: SamplingOptions,
                   device: str = "cpu") -> dict[str, Any]:
    """SD, SDM (primary, IS-like), MPSNR and SAM of K samples per held-out scene."""
    from hyperldm_engine.metrics.diversity import SDAccumulator, sample_diversity
    from hyperldm_engine.metrics.similarity import mpsnr, sam

    sd_acc = None
    sdm, sdm_is, psnrs, sams = [], [], [], []
    t0 = time.perf_counter()
    for scene in test_scenes:
        cubes = synthesize_in_memory(bundle_path, scene.rgb, options, device)
        probs = classifier_probabilities(bundle_path, cubes, device)
        if sd_acc is None:
            sd_acc = SDAccumulator(probs.shape[1])
        sd_acc.update(probs[0])
        res = sample_diversity(probs, with_map=False)
        sdm.append(res.sdm)
        sdm_is.append(res.sdm_global)
        psnrs.append(float(np.mean([mpsnr(c, scene.hsi) for c in cubes])))
        sams.append(float(np.mean([sam(c, scene.hsi) for c in cubes])))
    assert sd_acc is not None
    sd = sd_acc.result()
    return {"sd": sd.sd, "sd_present_mean": sd.sd_present, "sdm": float(np.mean(sdm)),
            "sdm_is_variant": float(np.mean(sdm_is)), "mpsnr_db": float(np.mean(psnrs)),
            "sam_rad": float(np.mean(sams)),
            "per_scene": {"sdm": sdm, "sdm_is_variant": sdm_is, "mpsnr_db": psnrs, "sam_rad": sams},
            "seconds": round(time.perf_counter() - t0, 2)}


def run_noise_sweep(bundle_path: str, out_dir: str | Path, settings: NoiseSweepSettings,
                    overwrite: bool = False, progress_mode: str = "bar") -> dict[str, Any]:
    """Run the sweep and write results.json, results.md and noise_sweep.png into ``out_dir`` (atomically)."""
    import tempfile

    from hyperldm_engine.errors import InputError, OutputError
    from hyperldm_engine.experiments.report import noise_sweep_figure, noise_sweep_markdown
    from hyperldm_engine.io.atomic import atomic_dir
    from hyperldm_engine.pipeline.report import jsonable
    from hyperldm_engine.progress import Progress

    out_dir = Path(out_dir)
    if (out_dir.exists() or out_dir.is_symlink()) and not overwrite:
        raise OutputError(f"{out_dir}: the output folder already exists; use --overwrite to replace it")
    if settings.samples < 2:
        raise InputError(f"--samples must be at least 2, got {settings.samples}")
    t0 = time.perf_counter()
    test = simulated_scenes(settings.scenes, settings.size, held_out=True)
    train = simulated_scenes(settings.train_scenes, max(settings.size, 2 * settings.patch_size),
                             held_out=False) if settings.finetune else []
    base = SamplingOptions(samples=settings.samples, seed=settings.seed, steps=settings.steps)
    rows: list[dict[str, Any]] = []
    n_work = len(settings.scales) * (2 if settings.finetune else 1)
    with Progress(n_work, "noise sweep", mode=progress_mode, unit="model") as progress, \
            tempfile.TemporaryDirectory(prefix="hyperldm-noise-sweep-") as scratch:
        for scale in settings.scales:
            res = evaluate_model(bundle_path, test, replace(base, noise_scale=None if scale == 1.0 else scale),
                                 settings.device)
            rows.append({"variant": "sampling-time rescale", "noise_scale": scale, "M": 0.02 * scale,
                         "finetune_s": 0.0, **res})
            progress.advance(1, message=f"rescale {scale}x")
            if settings.finetune:
                tuned = Path(scratch) / f"tuned_{scale}"
                secs = finetune_stage2(bundle_path, tuned, scale, train, settings)
                res = evaluate_model(str(tuned), test, base, settings.device)
                rows.append({"variant": "fine-tuned", "noise_scale": scale, "M": 0.02 * scale,
                             "finetune_s": round(secs, 2), **res})
                progress.advance(1, message=f"fine-tuned {scale}x")
    result = {"experiment": "noise-sweep (paper Table IV)", "model": str(bundle_path),
              "settings": asdict(settings), "rows": rows, "seconds": round(time.perf_counter() - t0, 2),
              "test_scenes": [s.seed for s in test], "train_scenes": [s.seed for s in train],
              }
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        noise_sweep_figure(result, tmp / "noise_sweep.png")
        (tmp / "results.json").write_text(json.dumps(jsonable(result), indent=2) + "\n")
        (tmp / "results.md").write_text(noise_sweep_markdown(result))
    return result
