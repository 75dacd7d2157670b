"""RGB corrections on satellite RGB: simulated held-out scenes seen through Sentinel-2 and Landsat 8.

The quality report's scenes are the training camera's own colours. This bench asks what a user with
satellite true colour gets: for each scene (held-out spectra, mixed landscape, the sensor's own
bands, surface or top-of-atmosphere radiometry) it runs the whole ``synthesize`` job (sensor from the
raster's tags, harmonisation, tiling) with each ``--rgb-correction`` asked for (minimum, ensemble), for one
sample and for four, and prints MPSNR / SAM (peak 1) against the scene's surface cube: the one-sample
run, each of the four samples pooled, and their mean; and the Pearson r of the one-sample run's NDVI
(Landsat 8 OLI red and NIR bands of the cube) with the scene's.

    .venv/bin/python benchmarks/bench_rgb_correction_sensors.py [--size 256] [--corrections minimum ensemble]
        [--radiometry toa]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state, read_cube

from hyperldm_engine.api import synthesize
from hyperldm_engine.metrics.similarity import ErrorSums, error_sums
from hyperldm_engine.simulate.scene import simulate_scene, write_scene
from hyperldm_engine.spectral.consistency import RGB_CORRECTIONS

#: (input sensor, radiometry, GSD m, seed): surface reflectance first, then top of atmosphere
SCENES = (("sentinel2-msi", "surface", 10.0, 2001), ("landsat8-oli", "surface", 30.0, 2002),
          ("sentinel2-msi", "surface", 20.0, 2005), ("landsat8-oli", "surface", 30.0, 2006),
          ("sentinel2-msi", "toa", 10.0, 2003), ("landsat8-oli", "toa", 30.0, 2004),
          ("landsat8-oli", "toa", 30.0, 2007), ("sentinel2-msi", "toa", 20.0, 2008))


def pooled(cubes: list[np.ndarray], ref: np.ndarray) -> ErrorSums:
    total = None
    for cube in cubes:
        sums = error_sums(cube, ref)[0]
        total = sums if total is None else total.__iadd__(sums)
    return total


def ndvi_r(cube: np.ndarray, ref: np.ndarray) -> float:
    """Pearson r of the NDVI of ``cube`` and of ``ref`` (Landsat 8 OLI red and NIR on the default bands)."""
    from hyperldm_engine.experiments.real_check import ndvi, pearson
    from hyperldm_engine.spectral.input_sensors import band_response
    from hyperldm_engine.spectral.sensor import default_sensor

    sensor = default_sensor()
    red, nir = (band_response("landsat8-oli", band, sensor) for band in ("red", "nir"))
    a, b = (ndvi(np.tensordot(red, c, 1), np.tensordot(nir, c, 1)) for c in (cube, ref))
    ok = np.isfinite(a) & np.isfinite(b)
    return pearson(a[ok], b[ok])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--corrections", nargs="+", default=["minimum", "ensemble"],
                    choices=["auto", *RGB_CORRECTIONS])
    ap.add_argument("--radiometry", choices=["all", "surface", "toa"], default="all",
                    help="only the scenes of this radiometry")
    args = ap.parse_args()
    scenes = [s for s in SCENES if args.radiometry in ("all", s[1])]
    print(machine_state())
    model = args.model or default_model()
    print(f"model {model}; {len(scenes)} held-out scenes of {args.size} px, mixed landscape")
    print("| sensor | radiometry | GSD m | correction | one-sample run | each of 4 | mean of 4 | NDVI r | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-rgbc-") as tmp:
        for sensor, radiometry, gsd, seed in scenes:
            folder = Path(tmp) / f"{sensor}_{radiometry}_{seed}"
            write_scene(simulate_scene(args.size, args.size, seed=seed, gsd_m=gsd, held_out=True,
                                       input_sensor=sensor, radiometry=radiometry, landscape="mixed"), folder)
            ref = read_cube(folder / "hsi.tif")
            for correction in args.corrections:
                t0 = time.perf_counter()
                one = synthesize(folder / "rgb.tif", folder / f"{correction}_1.tif", model=model,
                                 rgb_correction=correction, overwrite=True)
                four = synthesize(folder / "rgb.tif", folder / f"{correction}_4.tif", model=model, samples=4,
                                  sample_layout="bands", rgb_correction=correction, overwrite=True)
                seconds = time.perf_counter() - t0
                cubes = read_cube(four[0]).reshape(4, -1, *ref.shape[1:])
                single = read_cube(one[0])
                a, b, c = pooled([single], ref), pooled(list(cubes), ref), pooled([cubes.mean(0)], ref)
                r = ndvi_r(single, ref)
                print(f"| {sensor} | {radiometry} | {gsd:g} | {correction} | {a.mpsnr():.2f} / {a.sam():.3f} | "
                      f"{b.mpsnr():.2f} / {b.sam():.3f} | {c.mpsnr():.2f} / {c.sam():.3f} | {r:.3f} | {seconds:.1f} |",
                      flush=True)


if __name__ == "__main__":
    main()
