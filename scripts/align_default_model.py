"""Align the bundled default model's decoder to its sampler (``hyperldm_engine.train.align``).

Simulates the bundle's recorded training scenes again (train split of the spectra, with their
land-cover labels), fine-tunes the decoder side on encoder latents and on the denoiser's own
samples, and writes a new bundle whose provenance records this exact command.

    .venv/bin/python scripts/align_default_model.py OUT_BUNDLE [--iterations 2000] [--minutes 40]
        [--sample-weight 1.0] [--mean-of 1] [--group-weight 2.0] [--lr 1e-4] [--init BUNDLE]
        [--real-world-scenes 8]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from hyperldm_engine.experiments.quality import QualitySettings, training_scenes
from hyperldm_engine.models.bundle import default_bundle_path, load_bundle, save_bundle
from hyperldm_engine.progress import Progress
from hyperldm_engine.train.align import AlignSettings, align_decoder
from hyperldm_engine.train.data import heldout_row0
from hyperldm_engine.train.default_plan import scene_plan, simulate_training_scenes
from hyperldm_engine.train.run import unify_classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--init", default=None, help="bundle to align (default: the bundled default model)")
    ap.add_argument("--iterations", type=int, default=AlignSettings.iterations)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--sample-weight", type=float, default=AlignSettings.sample_weight)
    ap.add_argument("--mean-of", type=int, default=AlignSettings.mean_of)
    ap.add_argument("--sample-loss", choices=["paper", "energy"], default=AlignSettings.sample_loss)
    ap.add_argument("--group-weight", type=float, default=AlignSettings.group_weight)
    ap.add_argument("--lr", type=float, default=AlignSettings.lr)
    ap.add_argument("--patch-size", type=int, default=AlignSettings.patch_size)
    ap.add_argument("--batch-size", type=int, default=AlignSettings.batch_size)
    ap.add_argument("--real-world-scenes", type=int, default=0,
                    help="also N scenes of the simulator's mixed real-world plan (satellites, cameras, TOA)")
    ap.add_argument("--real-world-size", type=int, default=256)
    ap.add_argument("--real-world-seed", type=int, default=200)
    ap.add_argument("--progress", choices=["bar", "json", "none"], default="bar")
    args = ap.parse_args()
    source = args.init or str(default_bundle_path())
    bundle = load_bundle(source)
    scenes, info = training_scenes(bundle, QualitySettings(), "none")
    if args.real_world_scenes:
        specs = scene_plan(args.real_world_scenes, args.real_world_seed)
        extra = simulate_training_scenes(specs, args.real_world_size, log=lambda _m: None)
        for s in extra:
            s.heldout_row0 = heldout_row0(s.shape[0], args.patch_size, 0.1, s.name)
        scenes = scenes + extra
        unify_classes(scenes)
        info["real_world"] = [spec.describe(args.real_world_size) for spec in specs]
    settings = AlignSettings(iterations=args.iterations, budget_minutes=args.minutes, lr=args.lr,
                             sample_weight=args.sample_weight, mean_of=args.mean_of,
                             sample_loss=args.sample_loss, group_weight=args.group_weight,
                             patch_size=args.patch_size, batch_size=args.batch_size)
    t0 = time.perf_counter()
    with Progress(settings.iterations, "align", mode=args.progress) as bar:
        result = align_decoder(bundle, scenes, settings, bar)
    command = "scripts/align_default_model.py " + shlex.join(sys.argv[1:])
    bundle.training = {**(bundle.training or {}), "decoder_alignment": {
        **{k: v for k, v in result.items() if k != "history"}, "command": command,
        "initialised_from": "the bundled default model" if args.init is None else args.init,
        "scenes": info, "history": result["history"][::4]}}
    save_bundle(args.out, bundle, overwrite=True)
    print(f"saved {args.out} after {result['iterations_done']} iterations in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
