"""Sampler settings against quality and diversity on the quality report's held-out scenes.

For each setting (DDIM steps, eta, RGB consistency) draws K samples of each held-out scene (the
scenes of ``hyperldm-engine experiment quality``: 128 px, seeds 1000-1003, two landscapes, GSDs 1, 5,
20 and 2 m) with the engine's own tile function, for every sampling seed given, and prints:
one-sample MPSNR / SAM pooled over all samples (peak 1), MPSNR / SAM of the mean of the K samples,
the paper's SDM (K samples, the bundle's spectral classifier), the paper's SD of each sample (diversity
within one image, mean over samples and scenes) beside the SD of the reference cubes, and seconds. This
is what chose the default number of steps (``diffusion.samplers.DEFAULT_STEPS``).

    .venv/bin/python benchmarks/bench_sampler_quality.py --steps 3 4 5 6 8 10 20 --seeds 0
    .venv/bin/python benchmarks/bench_sampler_quality.py --steps 4 6 10 --seeds 1 2
    .venv/bin/python benchmarks/bench_sampler_quality.py --steps 4 10 --seeds 0 1 2 \
        --rgb-correction minimum spectral ensemble
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state

from hyperldm_engine.experiments.common import classifier_probabilities, rgb_statistics
from hyperldm_engine.experiments.quality import QualitySettings, heldout_scenes, scene_response
from hyperldm_engine.metrics.diversity import sample_diversity, spectral_diversity
from hyperldm_engine.metrics.similarity import ErrorSums, error_sums
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn
from hyperldm_engine.spectral.consistency import RGB_CORRECTIONS
from hyperldm_engine.tiling.runner import TileRequest


def draw(model: str, scene: object, options: SamplingOptions, consistency: bool,
         correction: str = "minimum") -> np.ndarray:
    """K cubes ``(K, bands, h, w)`` of one held-out scene, as one tile of the scene pipeline."""
    rgb = scene.rgb.astype(np.float32)
    h, w = rgb.shape[-2:]
    fn = SynthesisTileFn(model, options, rgb_statistics(rgb),
                         rgb_response=scene_response(scene) if consistency else None, rgb_correction=correction)
    out = fn(TileRequest(window=Window(0, 0, w, h), rgb=rgb, mask=np.ones((h, w), bool), row=0, col=0,
                         latent_row0=0, latent_col0=0, align=1))
    return np.stack([out[f"s{k}"] for k in range(options.samples)])


def pooled(total: ErrorSums | None, pred: np.ndarray, ref: np.ndarray) -> ErrorSums:
    sums = error_sums(pred, ref)[0]
    if total is None:
        return sums
    total += sums
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 10, 20])
    ap.add_argument("--eta", type=float, nargs="+", default=[1.0])
    ap.add_argument("--samples", type=int, default=5, help="K per scene and seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--no-consistency", action="store_true", help="also the settings without RGB consistency")
    ap.add_argument("--rgb-correction", nargs="+", choices=list(RGB_CORRECTIONS),
                    default=["ensemble"],
                    help="the consistency update(s) to measure (--rgb-correction of synthesize)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_state())
    model = args.model or default_model()
    scenes = heldout_scenes(QualitySettings())
    print(f"model {model}; {len(scenes)} held-out scenes; K = {args.samples}; seeds {args.seeds}")
    reference_sd = [spectral_diversity(classifier_probabilities(model, scene.hsi[None])[0], with_map=False).sd
                    for scene in scenes]
    print(f"SD of the reference cubes: {np.mean(reference_sd):.3f} (per scene "
          + ", ".join(f"{v:.3f}" for v in reference_sd) + ")")
    print("| steps | eta | RGB consistency | 1 sample MPSNR | 1 sample SAM | mean of K MPSNR | mean SAM | SDM "
          "| SD of a sample | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    settings = [(True, c) for c in args.rgb_correction] + ([(False, "minimum")] if args.no_consistency else [])
    for consistency, correction in settings:
        for eta in args.eta:
            for steps in args.steps:
                t0 = time.perf_counter()
                one = mean = None
                sdm, sd = [], []
                for scene in scenes:
                    for seed in args.seeds:
                        options = SamplingOptions(samples=args.samples, seed=seed, steps=steps, eta=eta)
                        cubes = draw(model, scene, options, consistency, correction)
                        for cube in cubes:
                            one = pooled(one, cube, scene.hsi)
                        mean = pooled(mean, cubes.mean(axis=0), scene.hsi)
                        probs = classifier_probabilities(model, cubes)
                        sdm.append(sample_diversity(probs, with_map=False).sdm)
                        sd.extend(spectral_diversity(p, with_map=False).sd for p in probs)
                seconds = time.perf_counter() - t0
                said = correction if consistency else "off"
                print(f"| {steps} | {eta:g} | {said} | {one.mpsnr():.2f} | {one.sam():.4f} "
                      f"| {mean.mpsnr():.2f} | {mean.sam():.4f} | {np.mean(sdm):.3f} | {np.mean(sd):.3f} "
                      f"| {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
