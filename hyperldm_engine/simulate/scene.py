"""Simulated hyperspectral scenes from real spectra: land cover, mixing, illumination, noise.

``simulate_scene`` draws a landscape (see ``landcover``), a set of scene endmembers from the
shipped library (train or disjoint held-out split), renders the landscape at 1/3 (1/2, 1) of the
GSD, averages it into output pixels (mixed pixels at every boundary, sub-pixel objects as partial
cover), applies a SPECTRL2 illumination for a random sun and atmosphere, and adds signal-dependent
sensor noise. ``write_scene`` writes ``hsi.tif``, ``rgb.tif``, ``labels.tif`` (and
``abundances.tif``) in a UTM CRS.
"""

from __future__ import annotations

import contextlib
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
from hyperldm_engine.simulate import surfaces
from hyperldm_engine.simulate.fields import smooth_noise
from hyperldm_engine.simulate.landcover import (
    CLASS_NAMES,
    CLOUD,
    LANDSCAPE_NAMES,
    LANDSCAPES,
    MATERIALS,
    MATERIALS_EXTRA,
    Sun,
    render_landscape,
)
from hyperldm_engine.spectral import atmosphere as atm
from hyperldm_engine.spectral import input_sensors
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


RADIOMETRIES = ("surface", "toa", "camera", "mixed")
MIXED = "mixed"
#: input sensors a ``mixed`` scene draws from (the paper's band selection is a model-side choice)
MIXED_INPUT_SENSORS = ("generic-camera", "nikon-5100", "sigma-sdmerill", "sentinel2-msi", "sentinel2b-msi",
                       "landsat8-oli", "landsat7-etm")


def _draw_endmembers(rng: np.random.Generator, pool: SpectralCollection,
                     materials: dict | None = None) -> tuple[list[int], dict[str, np.ndarray]]:
    """Scene endmembers per material; materials sharing library classes get distinct spectra."""
    used: set[int] = set()
    chosen: list[int] = []
    slots: dict[str, np.ndarray] = {}
    for material, (classes, k) in (materials or MATERIALS).items():
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
                   progress: Progress | None = None, *, input_sensor: str | None = None,
                   radiometry: str = "surface", landscape: str | None = None) -> Scene:
    """Simulate a ``width x height`` scene at ``gsd_m`` metres; deterministic per (seed, held_out).

    ``held_out=True`` draws spectra only from the held-out split and uses a separate random
    stream, so held-out scenes share neither spectra nor random numbers with training scenes.

    Real-world RGB (all keyword-only; the defaults reproduce the original scenes bit for bit):
    - ``input_sensor``: a ``spectral.input_sensors`` name (``landsat8-oli``, ``sentinel2-msi``,
      ``generic-camera``, ...) or ``mixed`` (one drawn per scene); ``None``: the ``camera`` argument.
    - ``radiometry``: the state of ``Scene.rgb``: ``surface`` (reflectance, L2A-like), ``toa``
      (top-of-atmosphere reflectance with Rayleigh + aerosol path radiance, transmittances and a
      patchy haze; L1C-like; half the scenes not divided by cos(sun zenith), like Landsat's
      2.0e-5 DN - 0.1), ``camera`` (auto-exposure, white balance, gamma, 8- or 16-bit; values 0-1)
      or ``mixed`` (one of the three per scene).
    - ``landscape``: ``balanced``, ``agricultural``, ``forest``, ``urban``, ``coastal`` or ``mixed``
      (one per scene); any of them also switches on the modelled surfaces (Lee water, wet soil,
      sand beaches, marsh, crop phenology, clouds and their shadows at GSD >= 5 m).
      ``None``: the original layout and library-only surfaces.
    ``Scene.hsi`` is always the surface cube (what a model learns to output); ``Scene.params``
    records every choice (sensor, radiometry, atmosphere, exposure, water constituents, clouds).
    """
    if radiometry not in RADIOMETRIES:
        raise InputError(f"radiometry must be one of {', '.join(RADIOMETRIES)}, not {radiometry!r}")
    if landscape is not None and landscape not in LANDSCAPE_NAMES:
        raise InputError(f"landscape must be one of {', '.join(LANDSCAPE_NAMES)}, not {landscape!r}")
    if input_sensor is not None and input_sensor != MIXED:
        input_sensor = input_sensors.get_input_sensor(input_sensor).name
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
    profile = None
    if landscape is not None:
        # a separate stream for the new choices keeps the original draws (and scenes) unchanged
        rng_x = np.random.default_rng([*seed_words, 0x1A4D])
        kind = str(rng_x.choice(list(LANDSCAPES))) if landscape == MIXED else landscape
        profile = LANDSCAPES[kind]
        materials = {m: v for m, v in {**MATERIALS, **MATERIALS_EXTRA}.items() if m != "water"}
        chosen, slots = _draw_endmembers(rng, pool, materials)
    else:
        chosen, slots = _draw_endmembers(rng, pool)
    E = pool.subset(np.array(chosen)).resampled(sensor)  # (n_e, n_bands)
    meta = [{**pool.metadata(i), "material": m} for m, idx in slots.items() for i in np.array(chosen)[idx]]
    order = [i for m, idx in slots.items() for i in idx]
    E, meta = E[order], [meta[k] for k in np.argsort(order)]
    slots = {m: np.array([order.index(i) for i in idx]) for m, idx in slots.items()}

    sun = Sun(zenith_deg=float(rng.uniform(20.0, 60.0)), azimuth_deg=float(rng.uniform(110.0, 250.0)),
              diffuse_fraction=0.0)
    water_cm, aod = float(rng.uniform(0.5, 4.0)), float(rng.uniform(0.03, 0.4))
    sun = Sun(sun.zenith_deg, sun.azimuth_deg, diffuse_fraction=float(np.clip(0.15 + 0.4 * aod, 0.15, 0.35)))
    extra_params: dict[str, Any] = {}
    if profile is not None:
        E, meta, slots, extra_params = _modelled_endmembers(rng_x, pool, E, meta, slots, sensor, sun)
        extra_params["landscape"] = profile.name
    # the darkest water is the deep end of lakes, the brighter (turbid) one the shore end
    slots["water"] = slots["water"][np.argsort(E[slots["water"]].mean(1))]
    s = _supersampling(width, height)
    render_m = gsd_m / s
    if progress:
        progress.advance(1, message="landscape")
    maps = render_landscape(rng_x if profile is not None else rng, height * s, width * s, render_m, slots, sun,
                            profile)
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
    if profile is not None:
        cloud = _clouds(rng_x, height, width, gsd_m, sun)
        if cloud is not None:
            f, ground_gain, cloud_params = cloud
            A *= ((1.0 - f) * ground_gain)[None]
            A[slots["cloud"][0]] += f
            labels[f > 0.5] = CLOUD
            extra_params.update(cloud_params)
        else:
            extra_params["cloud_cover"] = 0.0
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
    if input_sensor is None and radiometry == "surface":
        response = camera_response(sensor, camera)
        rgb = rgb_from_cube(hsi, response)
        rgb_params: dict[str, Any] = {}
    else:
        rng_r = np.random.default_rng([*seed_words, 0x2AD1])  # own stream: the cube does not depend on it
        name = input_sensor or input_sensors.get_input_sensor(camera).name
        if name == MIXED:
            name = str(rng_r.choice(MIXED_INPUT_SENSORS))
        response = input_sensors.rgb_response(name, sensor)
        rgb, rgb_params = _rgb_state(rng_r, hsi, response, sensor, radiometry, sun, water_cm, aod, gsd_m)
        rgb_params = {"input_sensor": name, **rgb_params}

    x0 = float(np.round(rng.uniform(300_000, 700_000) / gsd_m) * gsd_m)
    y0 = float(np.round(rng.uniform(4_500_000, 5_500_000) / gsd_m) * gsd_m)
    transform = Affine(gsd_m, 0.0, x0, 0.0, -gsd_m, y0)
    params = {"sun_zenith_deg": sun.zenith_deg, "sun_azimuth_deg": sun.azimuth_deg,
              "shadow_diffuse_fraction": sun.diffuse_fraction, "water_vapour_cm": water_cm, "aod500": aod,
              "snr_at_0.3": float(snr_ref), "supersampling": s, "camera": camera,
              **extra_params, **rgb_params, "seconds": round(time.perf_counter() - t0, 3)}
    if progress:
        progress.advance(1, message="done")
    return Scene(hsi=hsi, rgb=rgb, labels=labels, abundances=A, shade=shade, class_names=CLASS_NAMES,
                 endmembers=E, endmember_meta=meta, illumination=illum, camera=response,
                 transform=transform, crs=crs, sensor=sensor, gsd_m=float(gsd_m), seed=int(seed),
                 held_out=bool(held_out), params=params)


def _modelled_endmembers(rng: np.random.Generator, pool: SpectralCollection, E: np.ndarray, meta: list[dict],
                         slots: dict[str, np.ndarray], sensor: Sensor, sun: Sun) -> tuple[Any, ...]:
    """Append modelled water (deep, shore, shallow), wet soil / wet sand and a cloud to the endmembers."""
    wl = pool.wavelengths_nm.astype(np.float64)
    by_id = {m: pool.spectra[np.flatnonzero(pool.ids == m)[0]].astype(np.float64) for m in
             {x["id"] for x in meta}}
    bottoms_meta = [m for m in meta if m["material"] in ("sand", "soil", "grass")]
    bottoms = np.array([by_id[m["id"]] for m in bottoms_meta])
    water, water_meta = surfaces.water_endmembers(rng, wl, bottoms, bottoms_meta, sun.zenith_deg)
    new_rows, new_meta, new_slots = [], [], {"water": [0, 1], "water_shallow": [2]}
    new_rows.extend(water)
    new_meta.extend({**m, "material": "water" if "shallow" not in m["id"] else "water_shallow"} for m in water_meta)
    wet_src = [m for m in meta if m["material"] == "soil"][:1] + [m for m in meta if m["material"] == "sand"][:1]
    wetness = rng.uniform(0.5, 1.0, len(wet_src))
    for k, (m, w) in enumerate(zip(wet_src, wetness, strict=True)):
        new_rows.append(surfaces.wet_soil(wl, by_id[m["id"]], float(w)))
        new_meta.append({"id": f"model:wet:{m['id']}", "name": f"wet {m['name']}", "class": "wet_" + m["class"],
                         "source": "Twomey, Bohren and Mergenthaler 1986 wet-surface model on a measured spectrum",
                         "split": m["split"], "params": {"wetness": round(float(w), 3), "dry": m["id"]},
                         "material": "wet_soil"})
        new_slots.setdefault("wet_soil", []).append(3 + k)
    cloud, cloud_meta = surfaces.cloud_endmember(rng, wl)
    new_rows.append(cloud)
    new_meta.append({**cloud_meta, "material": "cloud"})
    new_slots["cloud"] = [len(new_rows) - 1]
    from hyperldm_engine.spectral.sensor import resample

    extra = resample(np.array(new_rows), wl, sensor).astype(np.float32)
    n0 = len(E)
    slots = {**slots, **{k: n0 + np.array(v) for k, v in new_slots.items()}}
    params = {"water": water_meta[0]["params"]}
    return np.concatenate([E, extra]), meta + new_meta, slots, params


def _clouds(rng: np.random.Generator, height: int, width: int, gsd_m: float,
            sun: Sun) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """Cumulus cover fraction ``f`` (rows, cols), ground gain (cloud shadows), parameters; None when clear.

    Clouds are drawn for satellite-like GSDs (>= 5 m; aerial surveys are flown clear) in 40 % of the
    scenes: a smooth field thresholded at the cover fraction with soft edges (sub-pixel cover),
    optionally a thin veil (cirrus / haze as low partial cover), and shadows: the thick cloud moved
    by ``height * tan(sun zenith)`` away from the sun, lit only by diffuse light there.
    """
    if gsd_m < 5.0 or rng.random() > 0.4:
        return None
    from scipy.ndimage import shift

    shape = (height, width)
    scale = float(rng.uniform(300.0, 2000.0))
    n = smooth_noise(rng, shape, gsd_m, scale)
    cover = float(rng.uniform(0.03, 0.5))
    thr = float(np.quantile(n, 1.0 - cover))
    f_thick = np.clip((n - thr) / rng.uniform(0.1, 0.6), 0.0, 1.0).astype(np.float32)
    veil = 0.0
    f = f_thick
    if rng.random() < 0.5:
        veil = float(rng.uniform(0.02, 0.25))
        v = np.clip(0.5 + 0.5 * smooth_noise(rng, shape, gsd_m, 4000.0), 0.0, 1.0)
        f = 1.0 - (1.0 - f_thick) * (1.0 - veil * v)
    cloud_height = float(rng.uniform(500.0, 3000.0))
    dx, dy = sun.shadow_vector(np.array([cloud_height]))[0] / gsd_m
    shadow = shift(f_thick, (dy, dx), order=1, mode="constant", cval=0.0)
    gain = (1.0 - (1.0 - sun.diffuse_fraction) * np.clip(shadow, 0.0, 1.0)).astype(np.float32)
    params = {"cloud_cover": round(float((f_thick > 0.5).mean()), 4), "cloud_scale_m": round(scale, 1),
              "cloud_veil": round(veil, 4), "cloud_height_m": round(cloud_height, 1)}
    return f.astype(np.float32), gain, params


def _rgb_state(rng: np.random.Generator, hsi: np.ndarray, response: np.ndarray, sensor: Sensor, radiometry: str,
               sun: Sun, water_cm: float, aod500: float, gsd_m: float) -> tuple[np.ndarray, dict]:
    """The RGB of the surface cube through ``response`` in one radiometric state (see ``simulate_scene``)."""
    if radiometry == MIXED:
        radiometry = str(rng.choice(["surface", "toa", "camera"]))
    params: dict[str, Any] = {"radiometry": radiometry}
    if radiometry == "surface":
        return rgb_from_cube(hsi, response), params
    if radiometry == "toa":
        view = float(rng.uniform(0.0, 10.0) if gsd_m >= 5.0 else rng.uniform(0.0, 25.0))
        rel_az = float(rng.uniform(0.0, 180.0))
        tau550 = float(aod500 * (550.0 / 500.0) ** -1.3 * rng.uniform(0.7, 1.6))
        angstrom = float(rng.uniform(0.5, 2.0))
        haze = float(rng.uniform(0.0, 0.8))  # relative spatial variation of the aerosol load
        kw = {"view_zenith_deg": view, "relative_azimuth_deg": rel_az, "angstrom": angstrom,
              "water_vapour_cm": water_cm}
        lo = atm.atmosphere_terms(sensor, sun.zenith_deg, tau550=tau550 * (1.0 - haze / 2), **kw)
        hi = atm.atmosphere_terms(sensor, sun.zenith_deg, tau550=tau550 * (1.0 + haze), **kw)
        h = np.clip(0.5 + 0.5 * smooth_noise(rng, hsi.shape[1:], gsd_m, float(rng.uniform(1000.0, 8000.0))), 0, 1)
        rgb = np.empty((3, *hsi.shape[1:]), np.float32)
        for terms, wgt in ((lo, 1.0 - h), (hi, h)):
            r = rgb_from_cube(hsi, (response * (terms.t_down * terms.t_up)[None]).astype(np.float32))
            r += (response @ terms.path).astype(np.float32)[:, None, None]
            if terms is lo:
                rgb[:] = r * wgt
            else:
                rgb += r * wgt
        sun_normalised = bool(rng.random() < 0.5)
        if not sun_normalised:  # Landsat-style M_rho * DN + A_rho, not divided by cos(sun zenith)
            rgb *= np.float32(np.cos(np.radians(sun.zenith_deg)))
        params.update({"view_zenith_deg": round(view, 2), "relative_azimuth_deg": round(rel_az, 1),
                       "tau550": round(tau550, 4), "angstrom": round(angstrom, 3), "haze_variation": round(haze, 3),
                       "sun_normalised": sun_normalised,
                       "path_reflectance_rgb": np.round(response @ lo.path, 5).tolist()})
        return rgb, params
    lin = rgb_from_cube(hsi, response)
    wb_mode = str(rng.choice(["gray-world", "daylight"]))
    jitter = rng.uniform(0.9, 1.1, 3) if wb_mode == "gray-world" else rng.uniform(0.85, 1.15, 3)
    jitter[1] = 1.0
    wb = np.array(atm.gray_world_balance(lin) if wb_mode == "gray-world" else (1.0, 1.0, 1.0)) * jitter
    exposure = atm.auto_exposure(lin * wb[:, None, None].astype(np.float32)) * float(rng.uniform(0.6, 1.25))
    gamma = float(rng.choice([1 / 2.2, 1 / 2.4, 1.0], p=[0.45, 0.25, 0.3]))
    bits = int(rng.choice([8, 16], p=[0.7, 0.3]))
    params.update({"white_balance": wb_mode, "wb_gains": np.round(wb, 4).tolist(), "exposure": round(exposure, 4),
                   "gamma": round(gamma, 4), "bits": bits})
    return atm.camera_rgb(lin, exposure, tuple(wb), gamma, bits), params


SCENE_FILES = ("hsi.tif", "rgb.tif", "labels.tif", "abundances.tif", "scene.json")


def scene_metadata(scene: Scene) -> dict[str, Any]:
    """JSON-able description: sensor, classes, endmembers (id, name, class, source), parameters."""
    return {"seed": scene.seed, "held_out": scene.held_out, "gsd_m": scene.gsd_m,
            "width": scene.width, "height": scene.height, "crs": scene.crs.to_string(),
            "transform": list(scene.transform)[:6], "sensor": scene.sensor.to_dict(),
            "class_names": list(scene.class_names), "endmembers": scene.endmember_meta,
            "illumination": np.round(scene.illumination, 5).tolist(),
            "camera_response": np.round(scene.camera, 6).tolist(), "params": scene.params}


def _rgb_tags(scene: Scene) -> dict[str, str]:
    """Tags of rgb.tif: what made it (input sensor, radiometric state) and its units."""
    name = scene.params.get("input_sensor")
    if name is None:
        tags = {"rgb_definition": f"camera response {scene.params.get('camera')}", "units": "reflectance-like 0-1",
                "radiometry": "surface"}
        with contextlib.suppress(Exception):  # the registry name, so synthesize --input-sensor auto finds it
            tags["input_sensor"] = input_sensors.get_input_sensor(str(scene.params.get("camera"))).name
        return tags
    state = scene.params.get("radiometry", "surface")
    units = {"surface": "surface reflectance-like 0-1",
             "toa": "top-of-atmosphere reflectance" + ("" if scene.params.get("sun_normalised") else
                                                       " x cos(sun zenith) (not sun-normalised)"),
             "camera": f"camera values 0-1 ({scene.params.get('bits')}-bit, gamma {scene.params.get('gamma')})"}[state]
    return {"rgb_definition": f"input sensor {name}, radiometry {state}", "input_sensor": name,
            "radiometry": state, "units": units}


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
                   overwrite=overwrite, creation_options=creation_options, tags={**common, **_rgb_tags(scene)}) as w:
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
