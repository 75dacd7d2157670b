#!/usr/bin/env python
"""Train the bundled default model into ``hyperldm_engine/data/default_model/`` (the one command).

    .venv/bin/python scripts/train_default_model.py            # full run, <= ~45 min on 2 CPU cores
    .venv/bin/python scripts/train_default_model.py --quick    # 1-minute smoke run into ./default_model_quick

Scenes are simulated in memory with ``simulate_scene`` from the TRAIN split of the spectra (held-out
spectra and held-out seeds are never used), at several seeds and GSDs from 0.5 m to 30 m, with
labels for the classifier. The last rows of every scene are held out for the report. Unless the
iteration counts are given, the script times a few iterations of each stage and picks the counts
that fit ``--minutes`` (rounded down to hundreds; they are recorded in the bundle, so a rerun with
``--vq-iterations/--diffusion-iterations/--classifier-iterations`` reproduces the model exactly).
Interrupted runs resume from ``<out>.checkpoints`` when the same command is run again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "hyperldm_engine" / "data" / "default_model"
# (seed, GSD in metres): train-split seeds; simulate_scene keeps held-out seeds on a separate stream.
FULL_SCENES = [(11, 0.5), (12, 1.0), (13, 2.0), (14, 3.0), (15, 5.0), (16, 10.0), (17, 20.0), (18, 30.0)]
QUICK_SCENES = [(11, 1.0), (16, 10.0)]


def _timed_rates(scenes, settings, config, library, n: int = 4) -> tuple[float, float, float]:
    """Seconds per iteration of each stage, measured on a throw-away trainer."""
    from hyperldm_engine.train.data import scene_normaliser
    from hyperldm_engine.train.loop import Trainer, TrainSettings

    probe = TrainSettings(**{**settings.__dict__, "vq_iterations": n + 1, "diffusion_iterations": n + 1,
                             "classifier_iterations": n + 1, "adv_start": 0.0})
    trainer = Trainer(scenes, config, library, probe, scene_normaliser,
                      n_classes=config.n_classes if any(s.labels is not None for s in scenes) else 0)
    rates = []
    for _ in range(3):
        trainer.step()  # warm-up (and the latent scale before the first diffusion step)
        t = time.perf_counter()
        for _ in range(n):
            trainer.step()
        rates.append((time.perf_counter() - t) / n)
    return rates[0], rates[1], rates[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help=f"bundle folder (default {DEFAULT_OUT})")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (about a minute)")
    ap.add_argument("--minutes", type=float, default=40.0, help="training time budget (default 40)")
    ap.add_argument("--size", type=int, default=192, help="scene side in pixels (default 192)")
    ap.add_argument("--vq-iterations", type=int)
    ap.add_argument("--diffusion-iterations", type=int)
    ap.add_argument("--classifier-iterations", type=int)
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=6)
    ap.add_argument("--diffusion-patch-size", type=int, default=None, help="stage-2 patch side (default: --patch-size)")
    ap.add_argument("--diffusion-batch-size", type=int, default=None)
    ap.add_argument("--lr-vq", type=float, default=2e-4)
    ap.add_argument("--lr-diffusion", type=float, default=2e-4)
    ap.add_argument("--adv-start", type=float, default=0.3, help="fraction of stage 1 before the adversarial loss")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restart", action="store_true")
    ap.add_argument("--progress", default="bar", choices=["bar", "json", "none"])
    args = ap.parse_args(argv)

    from hyperldm_engine.errors import HyperLDMError
    from hyperldm_engine.models.config import ModelConfig
    from hyperldm_engine.simulate.scene import simulate_scene
    from hyperldm_engine.spectral.library import decoder_library
    from hyperldm_engine.spectral.sensor import Sensor
    from hyperldm_engine.train.checkpoint import default_checkpoint_dir, latest_checkpoint
    from hyperldm_engine.train.data import heldout_row0, scene_from_simulation
    from hyperldm_engine.train.loop import TrainSettings
    from hyperldm_engine.train.run import train_bundle, unify_classes

    torch.set_num_threads(args.threads)
    start = time.monotonic()
    out = args.out or (Path("default_model_quick") if args.quick else DEFAULT_OUT)
    plan = QUICK_SCENES if args.quick else FULL_SCENES
    size = 96 if args.quick else args.size
    try:
        scenes = []
        for seed, gsd in plan:
            sim = simulate_scene(size, size, seed=seed, gsd_m=gsd, held_out=False)
            scenes.append(scene_from_simulation(sim, f"simulate_scene(seed={seed}, gsd_m={gsd:g}, {size}x{size})"))
            print(f"simulated seed {seed} at {gsd:g} m", file=sys.stderr, flush=True)
        classes = unify_classes(scenes)
        base = TrainSettings(patch_size=args.patch_size, batch_size=2 if args.quick else args.batch_size,
                             diffusion_patch_size=args.diffusion_patch_size,
                             diffusion_batch_size=args.diffusion_batch_size, lr_vq=args.lr_vq,
                             lr_diffusion=args.lr_diffusion, adv_start=args.adv_start,
                             seed=args.seed, checkpoint_every=100, classifier_batch=512)
        sensor = Sensor(scenes[0].wavelengths_nm, scenes[0].fwhm_nm, "training-scene")
        library, _ = decoder_library(sensor)
        config = ModelConfig.small(n_bands=sensor.n_bands, n_library=library.shape[1], n_classes=len(classes))
        counts = (args.vq_iterations, args.diffusion_iterations, args.classifier_iterations)
        previous = None if args.restart else latest_checkpoint(default_checkpoint_dir(out))
        if previous is not None and None in counts:  # resume with the counts the interrupted run chose
            ps = previous["fingerprint"]["settings"]
            counts = (ps["vq_iterations"], ps["diffusion_iterations"], ps["classifier_iterations"])
        if args.quick:
            counts = tuple(c if c is not None else 20 for c in counts)
        elif None in counts:
            for s in scenes:
                s.heldout_row0 = heldout_row0(s.shape[0], base.patch_size, base.heldout_fraction, s.name)
            t_vq, t_diff, t_clf = _timed_rates(scenes, base, config, library)
            budget = args.minutes * 60 - (time.monotonic() - start) - 60  # a minute for evaluation and writing
            # after 600 classifier iterations, stage 1 (the costlier, quality-bounding one) gets 60% of the
            # time and stage 2 40%
            left = max(budget - 600 * t_clf, 0)
            n_vq, n_diff = (int(share * left / t // 100 * 100) for share, t in ((0.6, t_vq), (0.4, t_diff)))
            counts = (counts[0] if counts[0] is not None else max(n_vq, 100),
                      counts[1] if counts[1] is not None else max(n_diff, 100),
                      counts[2] if counts[2] is not None else 600)
            print(f"measured s/iteration: VQGAN {t_vq:.2f}, diffusion {t_diff:.2f}, classifier {t_clf:.3f}; "
                  f"iterations {counts}", file=sys.stderr, flush=True)
        settings = TrainSettings(**{**base.__dict__, "vq_iterations": counts[0], "diffusion_iterations": counts[1],
                                    "classifier_iterations": counts[2]})
        command = ["scripts/train_default_model.py", *(sys.argv[1:] if argv is None else argv)]
        provenance = {"command": " ".join(command),
                      "scenes_from": "hyperldm_engine.simulate.simulate_scene, train split of the spectra",
                      "seeds_gsd_m": plan, "scene_size_px": size}
        metrics = train_bundle(scenes, out, settings, config=config, device=args.device, restart=args.restart,
                               progress=args.progress, overwrite=True, provenance=provenance)
    except HyperLDMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    size_mb = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"wrote {out} ({size_mb:.1f} MB) in {(time.monotonic() - start) / 60:.1f} min; held-out: {metrics}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
