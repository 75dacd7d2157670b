#!/usr/bin/env python
"""Make the README picture: a held-out simulated RGB, K synthesized cubes, abundances and spectra.

    .venv/bin/python scripts/readme_figure.py [--model BUNDLE] [--out docs/img/synthesis.png]

Everything comes from the real engine: ``simulate_scene(held_out=True)`` (spectra and seed never seen
in training), ``hyperldm-engine synthesize`` through :func:`synthesize_scene`, and the bundle's
library classes for the abundance map.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parent.parent


def joint_stretch(rgb: np.ndarray) -> np.ndarray:
    """(3, h, w) -> (h, w, 3) in 0-1 with ONE scale for all channels, so colours keep their balance."""
    img = np.nan_to_num(np.moveaxis(np.asarray(rgb, float), 0, -1))
    top = np.percentile(img, 99.0)
    return np.clip(img / top if top > 0 else img, 0, 1) ** (1 / 1.6)


def true_colour_joint(cube: np.ndarray, wl: np.ndarray) -> np.ndarray:
    idx = [int(np.argmin(np.abs(wl - t))) for t in (640.0, 550.0, 460.0)]
    return joint_stretch(cube[idx])


def main() -> None:
    from hyperldm_engine.models.bundle import default_bundle_path
    from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
    from hyperldm_engine.pipeline.synthesize import SamplingOptions
    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "synthesis.png")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    model = args.model or str(default_bundle_path())

    with tempfile.TemporaryDirectory() as tmp:
        scene = simulate_scene(args.size, args.size, seed=args.seed, gsd_m=1.0, held_out=True)
        write_scene(scene, Path(tmp) / "scene")
        job = SceneJob(input=str(Path(tmp) / "scene" / "rgb.tif"), output=str(Path(tmp) / "hsi.tif"), model=model,
                       sampling=SamplingOptions(samples=args.samples, seed=1), abundances=str(Path(tmp) / "ab.tif"))
        synthesize_scene(job, progress_mode="none")
        cubes = []
        for k in range(args.samples):
            with rasterio.open(Path(tmp) / f"hsi_s{k}.tif") as ds:
                cubes.append(ds.read())
                wl = np.array([float(ds.tags(b + 1).get("wavelength", np.nan)) for b in range(ds.count)])
        with rasterio.open(Path(tmp) / "ab.tif") as ds:
            ab, groups = ds.read(), [d.replace("abundance ", "") for d in ds.descriptions]
        reference = scene.hsi
    cubes = np.stack(cubes)
    if np.isnan(wl).any():
        wl = np.asarray(scene.sensor.centers_nm)

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.4))
    axes[0].imshow(joint_stretch(scene.rgb))
    axes[0].set_title("input RGB (held-out scene)")
    axes[1].imshow(true_colour_joint(cubes[0], wl))
    axes[1].set_title("synthesized HSI, sample 0 (true colour)")
    dominant = ab.argmax(axis=0)
    im = axes[2].imshow(dominant, cmap="tab10", vmin=-0.5, vmax=9.5, interpolation="nearest")
    present = sorted(set(np.unique(dominant).tolist()))
    cbar = fig.colorbar(im, ax=axes[2], ticks=present, fraction=0.046)
    cbar.ax.set_yticklabels([groups[i] for i in present], fontsize=7)
    axes[2].set_title("dominant library class (abundances)")
    h, w = dominant.shape
    pixels = [(h // 4, w // 4), (h // 2, w // 2), (3 * h // 4, 3 * w // 4)]
    colours = ["tab:blue", "tab:green", "tab:red"]
    for (r, c), col in zip(pixels, colours, strict=True):
        axes[3].plot(wl, reference[:, r, c], color=col, lw=2, label=f"reference ({r},{c})")
        lo, hi = cubes[:, :, r, c].min(axis=0), cubes[:, :, r, c].max(axis=0)
        axes[3].fill_between(wl, lo, hi, color=col, alpha=0.25)
        axes[3].plot(wl, cubes[:, :, r, c].mean(axis=0), color=col, ls="--", lw=1)
        for ax in axes[:3]:
            ax.plot(c, r, "o", mfc="none", mec=col, ms=9, mew=2)
    axes[3].set_xlabel("wavelength (nm)")
    axes[3].set_ylabel("reflectance")
    axes[3].set_title(f"spectra: reference (solid), {args.samples} samples (band, mean dashed)")
    axes[3].legend(fontsize=7)
    for ax in axes[:3]:
        ax.set_axis_off()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
