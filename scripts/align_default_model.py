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

from default_model_scenes import add_scene_arguments, bundle_and_scenes

from hyperldm_engine.models.bundle import save_bundle
from hyperldm_engine.progress import Progress
from hyperldm_engine.train.align import AlignSettings, align_decoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    add_scene_arguments(ap, "align")
    ap.add_argument("--iterations", type=int, default=AlignSettings.iterations)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--sample-weight", type=float, default=AlignSettings.sample_weight)
    ap.add_argument("--mean-of", type=int, default=AlignSettings.mean_of)
    ap.add_argument("--sample-loss", choices=["paper", "energy"], default=AlignSettings.sample_loss)
    ap.add_argument("--group-weight", type=float, default=AlignSettings.group_weight)
    ap.add_argument("--lr", type=float, default=AlignSettings.lr)
    ap.add_argument("--patch-size", type=int, default=AlignSettings.patch_size)
    ap.add_argument("--batch-size", type=int, default=AlignSettings.batch_size)
    ap.add_argument("--progress", choices=["bar", "json", "none"], default="bar")
    args = ap.parse_args()
    bundle, scenes, info = bundle_and_scenes(args, args.patch_size)
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
