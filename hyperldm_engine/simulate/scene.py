"""Simulated hyperspectral scenes from real spectra: land cover, mixing, illumination, noise.

``simulate_scene`` draws a landscape (see ``landcover``), a set of scene endmembers from the
shipped library (train or disjoint held-out split), renders the landscape at 1/3 (1/2, 1) of the
GSD, averages it into output pixels (mixed pixels at every boundary, sub-pixel objects as partial
cover), applies a SPECTRL2 illumination for a random sun and atmosphere, and adds signal-dependent
sensor noise. ``write_scene`` writes ``hsi.tif``, ``rgb.tif``, ``labels.tif`` (and
``abundances.tif``) in a UTM CRS.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from hyperldm_engine.errors import InputError, OutputError
from hyperldm_engine.progress import Progress
from hyperldm_engine.simulate.landcover import CLASS_NAMES, MATERIALS, Sun, render_landscape
from hyperldm_engine.spectral.illumination import illumination
from hyperldm_engine.spectral.library import SpectralCollection, simulation_pool
from hyperldm_engine.spectral.mixing import mix
from hyperldm_engine.spectral.rgb import camera_response, rgb_from_cube
from hyperldm_engine.spectral.sensor import Sensor, default_sensor

# Seed streams: train and held-out scenes never share random numbers, whatever the seed.
_STREAM = {False: 0x5EED_7EA1, True: 0x5EED_4E1D}
MAX_PIXELS = 64 * 1024 * 1024


@dataclass
class Scene:
    """A simulated scene: cube (bands, rows, cols) reflectance-like 0-1 and everything about it.

    ``rgb`` is the cube through the camera response (float32, same units as the cube);
    ``abundances`` (n_endmembers, rows, cols) sum to 1 per pixel; ``shade`` is the mean gain
    (shadow x brightness) in each pixel, so ``hsi = illumination * (E.T @ (abundances * shade))``
    plus noise.
    """

    hsi: np.ndarray
    rgb: np.ndarray
    labels: np.ndarray
    abundances: np.ndarray
    shade: np.ndarray
    class_names: tuple[str, ...]
    endmembers: np.ndarray  # (n_endmembers, n_bands) reflectance on the sensor
    endmember_meta: list[dict]
    illumination: np.ndarray
    camera: np.ndarray  # (3, n_bands) response used for rgb
    transform: Affine
    crs: CRS
    sensor: Sensor
    gsd_m: float
    seed: int
    held_out: bool
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.hsi.shape[2])

    @property
    def height(self) -> int:
        return int(self.hsi.shape[1])


def _draw_endmembers(rng: np.random.Generator,
                     pool: SpectralCollection) -> tuple[list[int], dict[str, np.ndarray]]:
    """Scene endmembers per material; materials sharing library classes get distinct spectra."""
    used: set[int] = set()
    chosen: list[int] = []
    slots: dict[str, np.ndarray] = {}
    for material, (classes, k) in MATERIALS.items():
        cand = np.flatnonzero(np.isin(pool.classes, classes))
        if cand.size == 0:
            raise InputError(f"the spectral library has no {'/'.join(classes)} spectra in this split")
        fresh = np.array([i for i in cand if i not in used]) if cand.size > k else cand
        pick = rng.choice(fresh, size=min(k, fresh.size), replace=False)
        idx = []
        for i in pick:
            used.add(int(i))
            chosen.append(int(i))
            idx.append(len(chosen) - 1)
        slots[material] = np.array(idx)
    return chosen, slots


def _supersampling(width: int, height: int) -> int:
    n = width * height
    return 3 if n <= 1_500_000 else 2 if n <= 6_000_000 else 1


def simulate_scene(width: int, height: int, seed: int, gsd_m: float = 1.0, crs_epsg: int = 32633,
                   held_out: bool = False, sensor: Sensor | None = None, camera: str = "Nikon 5100 (NPL)",
                   progress: Progress | None = None) -> Scene:
    """Simulate a ``width x height`` scene at ``gsd_m`` metres; deterministic per (seed, held_out).

    ``held_out=True`` draws spectra only from the held-out split and uses a separate random
    stream, so held-out scenes share neither spectra nor random numbers with training scenes.
    """
    if width < 8 or height < 8 or width * height > MAX_PIXELS:
        raise InputError(f"scene size {width} x {height} must be at least 8 x 8 and at most "
                         f"{MAX_PIXELS} pixels")
    if not 0.05 <= gsd_m <= 1000.0:
        raise InputError(f"GSD {gsd_m} m is outside 0.05-1000 m")
    try:
        crs = CRS.from_epsg(int(crs_epsg))
    except Exception as exc:
        raise InputError(f"EPSG:{crs_epsg} is not a known CRS") from exc
    if not crs.is_projected:
        raise InputError(f"EPSG:{crs_epsg} is not a projected (metre) CRS; use a UTM zone such as 32633")
    sensor = sensor or default_sensor()
    t0 = time.perf_counter()
    seed_words = [int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, _STREAM[bool(held_out)]]
    rng = np.random.default_rng(seed_words)
    pool = simulation_pool("heldout" if held_out else "train")
    chosen, slots = _draw_endmembers(rng, pool)
    E = pool.subset(np.array(chosen)).resampled(sensor)  # (n_e, n_bands)
    meta = [{**pool.metadata(i), "material": m} for m, idx in slots.items() for i in np.array(chosen)[idx]]
    order = [i for m, idx in slots.items() for i in idx]
    E, meta = E[order], [meta[k] for k in np.argsort(order)]
    slots = {m: np.array([order.index(i) for i in idx]) for m, idx in slots.items()}
    # the darkest water is the deep end of lakes, the brighter (turbid) one the shore end
    slots["water"] = slots["water"][np.argsort(E[slots["water"]].mean(1))]

    sun = Sun(zenith_deg=float(rng.uniform(20.0, 60.0)), azimuth_deg=float(rng.uniform(110.0, 250.0)),
              diffuse_fraction=0.0)
    water_cm, aod = float(rng.uniform(0.5, 4.0)), float(rng.uniform(0.03, 0.4))
    sun = Sun(sun.zenith_deg, sun.azimuth_deg, diffuse_fraction=float(np.clip(0.15 + 0.4 * aod, 0.15, 0.35)))
    s = _supersampling(width, height)
    render_m = gsd_m / s
    if progress:
        progress.advance(1, message="landscape")
    maps = render_landscape(rng, height * s, width * s, render_m, slots, sun)
    if progress:
        progress.advance(1, message="mixing")

    n_e = len(E)
    A = np.empty((n_e, height, width), np.float32)
    counts = np.empty((len(CLASS_NAMES), height, width), np.int32)
    strip = max(1, 262_144 // width)
    for r0 in range(0, height, strip):
        r1 = min(height, r0 + strip)
        h = r1 - r0
        sl = slice(r0 * s, r1 * s)
        pix = (np.arange(h)[:, None, None, None] * width + np.arange(width)[None, None, :, None])
        pix = np.broadcast_to(pix, (h, s, width, s)).reshape(h * s, width * s)
        g = maps.gain[sl] / (s * s)
        w = maps.weight[sl]
        idx = np.concatenate([(maps.prim[sl].astype(np.int64) * (h * width) + pix).ravel(),
                              (maps.sec[sl].astype(np.int64) * (h * width) + pix).ravel()])
        wts = np.concatenate([(g * w).ravel(), (g * (1 - w)).ravel()])
        A[:, r0:r1] = np.bincount(idx, wts, minlength=n_e * h * width).reshape(n_e, h, width)
        lab = maps.label[sl].astype(np.int64) * (h * width) + pix
        counts[:, r0:r1] = np.bincount(lab.ravel(), minlength=len(CLASS_NAMES) * h * width).reshape(
            -1, h, width)
    del maps
    labels = counts.argmax(0).astype(np.uint8)
    shade = A.sum(0)
    illum = illumination(sensor, sun.zenith_deg, water_cm, aod)
    hsi = mix(E.T.astype(np.float32), A, illum).astype(np.float32)
    A /= np.maximum(shade, 1e-12)
    if progress:
        progress.advance(1, message="noise")
    # sensor noise: read noise + shot noise, larger at the spectral edges where detectors are weak
    snr_ref = rng.uniform(150.0, 400.0)  # SNR at reflectance 0.3 in mid-spectrum bands
    edge = 1.0 + 2.0 * ((sensor.centers_nm - 700.0) / 300.0) ** 4
    read = 0.5 * 0.3 / snr_ref  # a quarter of the noise variance at 0.3 is read noise
    shot_k = 0.75 * (0.3 / snr_ref) ** 2 / 0.3
    sigma = np.sqrt(read**2 + shot_k * np.clip(hsi, 0, None)) * edge[:, None, None].astype(np.float32)
    hsi += sigma.astype(np.float32) * rng.standard_normal(hsi.shape, dtype=np.float32)
    del sigma
    response = camera_response(sensor, camera)
    rgb = rgb_from_cube(hsi, response)

    x0 = float(np.round(rng.uniform(300_000, 700_000) / gsd_m) * gsd_m)
    y0 = float(np.round(rng.uniform(4_500_000, 5_500_000) / gsd_m) * gsd_m)
    transform = Affine(gsd_m, 0.0, x0, 0.0, -gsd_m, y0)
    params = {"sun_zenith_deg": sun.zenith_deg, "sun_azimuth_deg": sun.azimuth_deg,
              "shadow_diffuse_fraction": sun.diffuse_fraction, "water_vapour_cm": water_cm, "aod500": aod,
              "snr_at_0.3": float(snr_ref), "supersampling": s, "camera": camera,
              "seconds": round(time.perf_counter() - t0, 3)}
    if progress:
        progress.advance(1, message="done")
    return Scene(hsi=hsi, rgb=rgb, labels=labels, abundances=A, shade=shade, class_names=CLASS_NAMES,
                 endmembers=E, endmember_meta=meta, illumination=illum, camera=response,
                 transform=transform, crs=crs, sensor=sensor, gsd_m=float(gsd_m), seed=int(seed),
                 held_out=bool(held_out), params=params)


SCENE_FILES = ("hsi.tif", "rgb.tif", "labels.tif", "abundances.tif", "scene.json")


def scene_metadata(scene: Scene) -> dict[str, Any]:
    """JSON-able description: sensor, classes, endmembers (id, name, class, source), parameters."""
    return {"seed": scene.seed, "held_out": scene.held_out, "gsd_m": scene.gsd_m,
            "width": scene.width, "height": scene.height, "crs": scene.crs.to_string(),
            "transform": list(scene.transform)[:6], "sensor": scene.sensor.to_dict(),
            "class_names": list(scene.class_names), "endmembers": scene.endmember_meta,
            "illumination": np.round(scene.illumination, 5).tolist(),
            "camera_response": np.round(scene.camera, 6).tolist(), "params": scene.params}


def write_scene(scene: Scene, out_dir: str | Path, overwrite: bool = False, abundances: bool = False,
                creation_options: Any = None) -> dict[str, Path]:
    """Write the scene's rasters (+ ``scene.json``) into ``out_dir``, each file atomically.

    ``hsi.tif``: float32 reflectance-like cube with wavelength/FWHM metadata. ``rgb.tif``: float32
    (3 bands, red green blue), the cube integrated through the camera response, same 0-1 units
    (not uint8, so no clipping or quantisation is baked in). ``labels.tif``: uint8 class ids,
    ``class_names`` in the metadata. ``abundances.tif`` (optional): float32 fractions of the scene
    endmembers (summing to 1). All in the scene's UTM CRS and geotransform.
    """
    from hyperldm_engine.io.atomic import atomic_path
    from hyperldm_engine.io.writer import HsiWriter

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror})") from exc
    names = ["hsi.tif", "rgb.tif", "labels.tif", *(["abundances.tif"] if abundances else []), "scene.json"]
    if not overwrite:
        existing = [n for n in names if (out / n).exists()]
        if existing:
            raise OutputError(f"{out / existing[0]}: the output already exists; "
                              "use --overwrite to replace it")
    like = {"crs": scene.crs, "transform": scene.transform, "width": scene.width, "height": scene.height}
    common = {"seed": scene.seed, "held_out": int(scene.held_out), "gsd_m": scene.gsd_m,
              "generator": "hyperldm-engine simulate"}
    classes = json.dumps(list(scene.class_names))
    paths: dict[str, Path] = {}
    with HsiWriter(out / "hsi.tif", like, wavelengths_nm=scene.sensor.centers_nm,
                   fwhm_nm=scene.sensor.fwhm_nm, dtype="float32", overwrite=overwrite,
                   creation_options=creation_options, tags=common) as w:
        w.write(scene.hsi)
    paths["hsi"] = out / "hsi.tif"
    with HsiWriter(out / "rgb.tif", like, count=3, band_names=["red", "green", "blue"], dtype="float32",
                   overwrite=overwrite, creation_options=creation_options,
                   tags={**common, "rgb_definition": f"camera response {scene.params.get('camera')}",
                         "units": "reflectance-like 0-1"}) as w:
        w.write(scene.rgb)
    paths["rgb"] = out / "rgb.tif"
    with HsiWriter(out / "labels.tif", like, count=1, band_names=["class"], dtype="uint8",
                   overwrite=overwrite, creation_options=creation_options,
                   tags={**common, "class_names": classes}) as w:
        w.write(scene.labels[None])
    paths["labels"] = out / "labels.tif"
    if abundances:
        em = [f"{i}: {m['class']} {m['id']}" for i, m in enumerate(scene.endmember_meta)]
        ids = [m["id"] for m in scene.endmember_meta]
        with HsiWriter(out / "abundances.tif", like, count=len(em), band_names=em, dtype="float32",
                       overwrite=overwrite, creation_options=creation_options,
                       tags={**common, "endmember_ids": json.dumps(ids)}) as w:
            w.write(scene.abundances)
        paths["abundances"] = out / "abundances.tif"
    with atomic_path(out / "scene.json", overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(scene_metadata(scene), indent=1) + "\n")
    paths["metadata"] = out / "scene.json"
    return paths
