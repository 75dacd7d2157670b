#!/usr/bin/env python
"""How much does synthesis change when the same scene's RGB comes with another radiometry?

    .venv/bin/python scripts/robustness_check.py [--model BUNDLE] [--size 256] [--seed 1003]

A held-out simulated scene's RGB is re-encoded the way real imagery arrives (8-bit stretched
orthophoto, 16-bit DN, darker exposure, gamma, colour cast, haze) and synthesized with the same seed;
each result is compared with the reference cube and with the synthesis from the clean float RGB.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import rasterio


def variants(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Radiometric re-encodings of a float reflectance-like RGB (3, h, w)."""
    top = np.percentile(rgb, 99.5)
    stretched = np.clip(rgb / top, 0, 1)
    cast = rgb * np.array([1.25, 1.0, 0.8])[:, None, None]
    return {
        "clean float": rgb,
        "8-bit stretched": np.round(stretched * 255).astype(np.uint8),
        "16-bit DN x 10000": np.round(np.clip(rgb, 0, None) * 10000).astype(np.uint16),
        "exposure x 0.5": rgb * 0.5,
        "gamma 1/2.2 (8-bit)": np.round(stretched ** (1 / 2.2) * 255).astype(np.uint8),
        "colour cast R+25% B-20%": cast,
        "haze +0.06": rgb + 0.06,
    }


def main() -> None:
    from hyperldm_engine.metrics.similarity import mpsnr, sam
    from hyperldm_engine.models.bundle import default_bundle_path
    from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
    from hyperldm_engine.pipeline.synthesize import SamplingOptions
    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1003)
    args = ap.parse_args()
    model = args.model or str(default_bundle_path())
    scene = simulate_scene(args.size, args.size, seed=args.seed, gsd_m=2.0, held_out=True)
    with tempfile.TemporaryDirectory() as tmp:
        write_scene(scene, Path(tmp) / "scene")
        with rasterio.open(Path(tmp) / "scene" / "rgb.tif") as ds:
            profile = ds.profile
        results = {}
        for name, data in variants(scene.rgb.astype(np.float64)).items():
            path = Path(tmp) / f"{len(results)}.tif"
            prof = {**profile, "dtype": str(data.dtype), "nodata": None}
            with rasterio.open(path, "w", **prof) as ds:
                ds.write(data.astype(data.dtype) if data.dtype != np.float64 else data.astype(np.float32))
            out = Path(tmp) / f"out{len(results)}.tif"
            synthesize_scene(SceneJob(input=str(path), output=str(out), model=model,
                                      sampling=SamplingOptions(seed=0)), progress_mode="none")
            with rasterio.open(out) as ds:
                results[name] = ds.read()
    clean = results["clean float"]
    print(f"model {model}; held-out scene seed {args.seed}, {args.size} px; same sampling seed for all")
    print(f"{'input':26s} {'MPSNR vs ref':>12s} {'SAM vs ref':>10s} {'MPSNR vs clean':>14s} {'SAM vs clean':>12s}")
    for name, cube in results.items():
        print(f"{name:26s} {mpsnr(cube, scene.hsi):12.2f} {sam(cube, scene.hsi):10.4f} "
              f"{mpsnr(cube, clean) if name != 'clean float' else float('inf'):14.2f} {sam(cube, clean):12.4f}")


if __name__ == "__main__":
    main()
