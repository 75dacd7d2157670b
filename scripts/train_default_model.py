#!/usr/bin/env python
"""Train the bundled default model into ``hyperldm_engine/data/default_model/`` (the one command).

    .venv/bin/python scripts/train_default_model.py                 # full run, --minutes on 2 CPU cores
    .venv/bin/python scripts/train_default_model.py --quick         # 1-minute smoke run into ./default_model_quick
    .venv/bin/python scripts/train_default_model.py --preset paper  # the paper's configuration

The plan (scenes, model configuration, budget planner) lives in ``hyperldm_engine.train.default_plan``.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help=f"bundle folder (default {DEFAULT_OUT})")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (about a minute)")
    ap.add_argument("--preset", default="small", choices=["small", "default", "paper"],
                    help="small: the committed bundle's preset; default: experimental (docs/training.md)")
    ap.add_argument("--minutes", type=float, default=60.0, help="training time budget (default 60)")
    ap.add_argument("--scenes", type=int, default=24, help="simulated training scenes (default 24)")
    ap.add_argument("--size", type=int, default=160, help="scene side in pixels (default 160)")
    ap.add_argument("--vq-iterations", type=int)
    ap.add_argument("--diffusion-iterations", type=int)
    ap.add_argument("--classifier-iterations", type=int)
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--diffusion-patch-size", type=int, default=64, help="stage-2 patch side (default 64)")
    ap.add_argument("--diffusion-batch-size", type=int, default=8)
    ap.add_argument("--lr-vq", type=float, default=2e-4)
    ap.add_argument("--lr-diffusion", type=float, default=4e-4)
    ap.add_argument("--adv-start", type=float, default=0.5, help="fraction of stage 1 before the adversarial loss")
    ap.add_argument("--min-snr-gamma", type=float, default=None,
                    help="stage-2 Min-SNR-gamma (0: plain MSE; default: the preset's)")
    ap.add_argument("--abundance-entropy", type=float, default=None,
                    help="abundance sparsity prior weight (default: the preset's)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restart", action="store_true")
    ap.add_argument("--init", type=Path, default=None, help="start from this bundle's weights (same shapes)")
    ap.add_argument("--progress", default="bar", choices=["bar", "json", "none"])
    args = ap.parse_args(argv)

    from hyperldm_engine.errors import HyperLDMError
    from hyperldm_engine.train.default_plan import PRESET_SETTINGS, scene_plan, train_default_model
    from hyperldm_engine.train.loop import TrainSettings

    torch.set_num_threads(args.threads)
    start = time.monotonic()
    out = args.out or (Path("default_model_quick") if args.quick else DEFAULT_OUT)
    specs = scene_plan(2 if args.quick else args.scenes)
    size = 96 if args.quick else args.size
    counts = (args.vq_iterations, args.diffusion_iterations, args.classifier_iterations)
    if args.quick:
        counts = tuple(c if c is not None else 20 for c in counts)
    recipe = dict(PRESET_SETTINGS[args.preset])  # e.g. Min-SNR only with the x0-predicting preset
    if args.min_snr_gamma is not None:
        recipe["min_snr_gamma"] = args.min_snr_gamma or None
    if args.abundance_entropy is not None:
        recipe["abundance_entropy"] = args.abundance_entropy
    settings = TrainSettings(patch_size=args.patch_size, batch_size=2 if args.quick else args.batch_size,
                             diffusion_patch_size=args.diffusion_patch_size,
                             diffusion_batch_size=2 if args.quick else args.diffusion_batch_size,
                             lr_vq=args.lr_vq, lr_diffusion=args.lr_diffusion, adv_start=args.adv_start,
                             seed=args.seed, checkpoint_every=100, classifier_batch=512,
                             **recipe)
    command = " ".join(["scripts/train_default_model.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        metrics = train_default_model(out, specs, size, settings, args.minutes, counts, preset=args.preset,
                                      device=args.device, restart=args.restart, progress=args.progress,
                                      command=command, log=lambda m: print(m, file=sys.stderr, flush=True),
                                      init_bundle=args.init)
    except HyperLDMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    size_mb = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"wrote {out} ({size_mb:.1f} MB) in {(time.monotonic() - start) / 60:.1f} min; held-out: {metrics}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
