#!/usr/bin/env python
"""Continue stage 2 (the latent denoiser) of a bundle on the default model's training scenes.

    .venv/bin/python scripts/continue_denoiser.py --model hyperldm_engine/data/default_model \
        --out /tmp/default_model_ft --iterations 4000

The VQGAN, the library, the latent scale and the schedule stay as they are; only the denoiser is
trained further (stage 2 is the cheap stage: ~0.1-0.2 s per iteration on 2 CPU cores at 64 px patches),
with the same simulated scenes as ``scripts/train_default_model.py`` (train split, seeds 11-18,
0.5-30 m). The continuation is recorded in the bundle's ``training.finetune``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from train_default_model import FULL_SCENES  # noqa: E402


def main() -> int:
    from hyperldm_engine.experiments.common import SimScene
    from hyperldm_engine.experiments.noise_sweep import NoiseSweepSettings, finetune_stage2
    from hyperldm_engine.simulate.scene import simulate_scene

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--iterations", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scenes = []
    for seed, gsd in FULL_SCENES:
        sim = simulate_scene(args.size, args.size, seed=seed, gsd_m=gsd, held_out=False)
        scenes.append(SimScene(hsi=sim.hsi, rgb=sim.rgb, labels=sim.labels, class_names=list(sim.class_names),
                               seed=seed, held_out=False, raw=sim))
    settings = NoiseSweepSettings(iterations=args.iterations, batch_size=8, patch_size=64, lr=args.lr)
    seconds = finetune_stage2(args.model, args.out, 1.0, scenes, settings)
    print(f"wrote {args.out}: denoiser continued for {args.iterations} iterations in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
