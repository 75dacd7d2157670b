#!/usr/bin/env python
"""Picture of what ``--rgb-correction`` changes: the near infrared of one sample, and spectra.

    .venv/bin/python scripts/rgb_correction_figure.py [--model BUNDLE] [--out docs/img/rgb-correction.png]

A held-out simulated scene (spectra and seed never seen in training) is synthesized with the same
seed through the real pipeline, once per correction of :data:`CORRECTIONS` (one sample: ``ensemble`` is
the covariance-weighted update, ``anchored`` that of the sample fused with the regression anchor): the
top row shows the ~860 nm band of the truth and of each cube, the bottom row three typical pixels'
spectra (vegetation, soil, water: the pixel nearest its group's median spectrum) against the truth.
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
#: --rgb-correction -> (panel title, line style)
CORRECTIONS = {"minimum": ("minimum (the paper's way)", "C0--"), "ensemble": ("ensemble (previous default)", "C2-."),
               "anchored": ("anchored (default)", "C3-")}


def main() -> None:
    from hyperldm_engine.models.bundle import default_bundle_path
    from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
    from hyperldm_engine.pipeline.synthesize import SamplingOptions
    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "rgb-correction.png")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1000)
    args = ap.parse_args()
    model = args.model or str(default_bundle_path())
    scene = simulate_scene(args.size, args.size, seed=args.seed, gsd_m=1.0, held_out=True)
    wl = np.asarray(scene.sensor.centers_nm)
    cubes = {}
    with tempfile.TemporaryDirectory() as tmp:
        write_scene(scene, Path(tmp) / "scene")
        for correction in CORRECTIONS:
            out = Path(tmp) / f"{correction}.tif"
            synthesize_scene(SceneJob(input=str(Path(tmp) / "scene" / "rgb.tif"), output=str(out), model=model,
                                      sampling=SamplingOptions(samples=1, seed=0), rgb_correction=correction),
                             progress_mode="none")
            with rasterio.open(out) as ds:
                cubes[correction] = ds.read().astype(np.float32)
    truth = scene.hsi.astype(np.float32)
    nir = int(np.argmin(np.abs(wl - 860.0)))
    names = list(scene.class_names)

    def pick(words: tuple[str, ...]) -> tuple[int, int] | None:
        """The pixel of these classes whose true spectrum is nearest their median spectrum."""
        ids = [i for i, n in enumerate(names) if any(w in n.lower() for w in words)]
        mask = np.isin(scene.labels, ids)
        if not mask.any():
            return None
        median = np.median(truth[:, mask], axis=1)
        dist = np.where(mask, np.abs(truth - median[:, None, None]).sum(0), np.inf)
        return tuple(int(v) for v in np.unravel_index(int(np.argmin(dist)), dist.shape))

    picks = {"vegetation": pick(("forest", "grass", "crop", "veg", "tree", "shrub")),
             "soil": pick(("soil", "bare", "sand")), "water": pick(("water",))}
    picks = {k: v for k, v in picks.items() if v is not None}
    fig, axes = plt.subplots(2, 1 + len(CORRECTIONS), figsize=(4 * (1 + len(CORRECTIONS)), 7.5))
    vmax = float(np.percentile(truth[nir], 99))
    panels = [("truth", truth)] + [(f"{title}, 1 sample", cubes[c]) for c, (title, _) in CORRECTIONS.items()]
    for ax, (title, cube) in zip(axes[0], panels, strict=True):
        err = "" if cube is truth else f"\nRMSE {np.sqrt(np.mean((cube[nir] - truth[nir]) ** 2)):.3f}"
        ax.imshow(cube[nir], vmin=0, vmax=vmax, cmap="magma")
        ax.set_title(f"{title}, {wl[nir]:.0f} nm{err}", fontsize=10)
        ax.axis("off")
    for ax, (what, (r, c)) in zip(axes[1], picks.items(), strict=False):
        ax.plot(wl, truth[:, r, c], "k-", lw=2, label="truth")
        for correction, (_, style) in CORRECTIONS.items():
            ax.plot(wl, cubes[correction][:, r, c], style, label=correction)
        ax.axvspan(700, wl[-1], color="0.9", zorder=0)
        ax.set_title(f"{what} ({names[scene.labels[r, c]]}), pixel {r},{c}", fontsize=10)
        ax.set_xlabel("wavelength (nm)")
        ax.set_ylabel("reflectance")
        ax.legend(fontsize=8)
    for ax in axes[1][len(picks):]:
        ax.axis("off")
    fig.suptitle(f"--rgb-correction on held-out scene seed {args.seed} (Nikon RGB, same sample seed; "
                 "shaded: bands the camera does not see)", fontsize=11)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
