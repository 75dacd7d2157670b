"""Input harmonisation: the input sensor's RGB mapped onto the colours the model was trained on.

Why: a bundle learns spectra from one camera's colours (the default model: the Nikon 5100 on
surface reflectance). The same surface gives other RGB through Landsat's or Sentinel-2's bands, and a
top-of-atmosphere image adds path radiance (bluer, brighter darks), so the model reads those colours
as other materials: on the real Landsat 8 check (TOA) one sample's NDVI correlated 0.42 with the real
NDVI, 0.70 once harmonised (docs/model-diagnosis.md, "Input harmonisation").

How: a per-pixel affine map ``rgb' = M [r, g, b, 1]`` fitted by least squares on simulated scenes, the
same surfaces seen through the input sensor (with the input's radiometry, atmosphere included) and
through the training camera on surface reflectance. It is the linear spectral bandpass adjustment that
harmonised Landsat / Sentinel-2 products use, with an empirical-line offset for the path radiance on
top-of-atmosphere input, except where the haze is kept (``keep_haze``): a TOA input whose
cubes are centred on a regression anchor measured on TOA scenes (``--rgb-correction anchored`` with a
bundle's TOA anchor, the default) gets the bandpass map alone, because the anchor and its fusion gain
were measured on hazy RGB; one average atmosphere subtracted from every scene also over-corrects a scene
with less path radiance than the average (on the real Landsat 8 check it drove 8.8 % of the blue
channel below zero, and one sample's NDVI r was 0.823 with it, 0.852 without;
docs/model-diagnosis.md, "Top-of-atmosphere input: the haze left to the anchored correction").
Only the model's input changes. RGB consistency uses the input sensor's own response; on surface input
its target is the input RGB, and on top-of-atmosphere input the surface RGB the same kind of map
estimates from it (:func:`surface_estimate`: onto the input sensor's own surface colours), because the
model writes surface reflectance, which cannot reproduce path radiance.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

#: simulated scenes the map is fitted on (seeds from FIT_SEED0; mixed landscapes, 30 m), and their side
FIT_SCENES, FIT_SIZE, FIT_SEED0, FIT_GSD_M = 12, 64, 7000, 30.0
#: radiometries an affine map can undo (``camera``: gamma-encoded, auto-exposed values are not affine)
AFFINE_RADIOMETRIES = ("surface", "toa")
#: the ``camera`` of a map onto the input sensor's own surface colours (:func:`surface_estimate`)
OWN_SURFACE = "own surface"


@dataclass(frozen=True)
class Harmonisation:
    """``matrix`` (3, 4): rows give the training camera's R, G, B from (r, g, b, 1) of the input."""

    matrix: tuple[tuple[float, ...], ...]
    input_sensor: str
    radiometry: str
    camera: str
    fit_rmse: tuple[float, ...]
    #: the surface bandpass map given to top-of-atmosphere input whose haze is kept for the TOA anchor (``keep_haze``)
    bandpass_only: bool = False

    def as_list(self) -> list[list[float]]:
        """The matrix as ``SceneStatistics.harmonisation`` stores it (``io.raster.harmonised`` applies it)."""
        return [list(row) for row in self.matrix]

    def error_covariance(self) -> list[list[float]]:
        """(3, 3) error covariance of the mapped RGB, from the fit's residual RMSE per channel (diagonal): over
        the fit's random atmospheres, what one average map cannot undo."""
        return np.diag(np.square(np.asarray(self.fit_rmse, float))).tolist()

    def describe(self) -> str:
        onto = "its own" if self.camera == OWN_SURFACE else self.camera
        how = ", bandpass only: the haze kept for the TOA anchor" if self.bandpass_only else ""
        return (f"{self.input_sensor} ({self.radiometry}) mapped onto {onto} surface colours "
                f"(fit RMSE {max(self.fit_rmse):.3f}{how})")


def fit_affine(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``y ~ M [x; 1]`` for ``x``, ``y`` (3, n); returns M (3, 4) and the RMSE per channel."""
    design = np.vstack([np.asarray(x, np.float64), np.ones((1, x.shape[1]))]).T
    m, *_ = np.linalg.lstsq(design, np.asarray(y, np.float64).T, rcond=None)
    resid = y.T - design @ m
    return m.T, np.sqrt((resid ** 2).mean(axis=0))


#: bump when the fit changes (scenes, simulator physics the engine version does not capture)
FIT_VERSION = 1


def cache_path(input_sensor: str, radiometry: str, camera: str, wavelengths_nm: tuple[float, ...],
               fwhm_nm: tuple[float, ...]) -> Path:
    """The fit's file in the engine cache (``cache.cache_root``), keyed by everything it depends on:
    the sensors, the radiometry, the model's band grid, the fit's scenes and the engine version."""
    from hyperldm_engine import __version__
    from hyperldm_engine.cache import cache_root

    key = json.dumps({"fit": FIT_VERSION, "engine": __version__, "input_sensor": input_sensor,
                      "radiometry": radiometry, "camera": camera, "wavelengths_nm": list(wavelengths_nm),
                      "fwhm_nm": list(fwhm_nm), "scenes": [FIT_SCENES, FIT_SIZE, FIT_SEED0, FIT_GSD_M]},
                     sort_keys=True)
    return cache_root() / "harmonise" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def _read_cached(path: Path) -> Harmonisation | None:
    """The cached fit, or None when there is none or it is unreadable (then it is fitted again)."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        m = np.asarray(d["matrix"], float)
        if m.shape != (3, 4) or not np.all(np.isfinite(m)):
            return None
        return Harmonisation(tuple(tuple(float(v) for v in row) for row in m), str(d["input_sensor"]),
                             str(d["radiometry"]), str(d["camera"]), tuple(float(v) for v in d["fit_rmse"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@lru_cache(maxsize=8)
def fit_harmonisation(input_sensor: str, radiometry: str, camera: str, wavelengths_nm: tuple[float, ...],
                      fwhm_nm: tuple[float, ...]) -> Harmonisation:
    """The map for these sensors and band grid: from the engine cache when it is there (a QGIS run is a
    new process each time), else fitted (:func:`fit_on_scenes`, ~2.5 s) and cached; also kept per process."""
    from hyperldm_engine.cache import write_cached

    path = cache_path(input_sensor, radiometry, camera, wavelengths_nm, fwhm_nm)
    cached = _read_cached(path)
    if cached is not None:
        return cached
    fit = fit_on_scenes(input_sensor, radiometry, camera, wavelengths_nm, fwhm_nm)
    write_cached(path, json.dumps({"matrix": fit.as_list(), "input_sensor": fit.input_sensor,
                                   "radiometry": fit.radiometry, "camera": fit.camera,
                                   "fit_rmse": list(fit.fit_rmse)}, indent=1))
    return fit


def fit_on_scenes(input_sensor: str, radiometry: str, camera: str, wavelengths_nm: tuple[float, ...],
                  fwhm_nm: tuple[float, ...]) -> Harmonisation:
    """Fit the map on :data:`FIT_SCENES` simulated scenes (train split of the spectra); ``camera``
    :data:`OWN_SURFACE` fits onto the input sensor's own surface RGB."""
    from hyperldm_engine.simulate.scene import simulate_scene
    from hyperldm_engine.spectral.input_sensors import rgb_response
    from hyperldm_engine.spectral.rgb import camera_response
    from hyperldm_engine.spectral.sensor import Sensor

    sensor = Sensor(np.asarray(wavelengths_nm, float), np.asarray(fwhm_nm, float), "model")
    target = rgb_response(input_sensor, sensor) if camera == OWN_SURFACE else camera_response(sensor, camera)
    xs, ys = [], []
    for i in range(FIT_SCENES):
        sc = simulate_scene(FIT_SIZE, FIT_SIZE, seed=FIT_SEED0 + i, gsd_m=FIT_GSD_M, sensor=sensor,
                            input_sensor=input_sensor, radiometry=radiometry, landscape="mixed")
        xs.append(sc.rgb.reshape(3, -1))
        ys.append(target @ sc.hsi.reshape(sc.hsi.shape[0], -1))
    x, y = np.concatenate(xs, 1), np.concatenate(ys, 1)
    ok = np.all(np.isfinite(x), 0) & np.all(np.isfinite(y), 0)
    m, rmse = fit_affine(x[:, ok], y[:, ok])
    return Harmonisation(tuple(tuple(float(v) for v in row) for row in m), input_sensor, radiometry, camera,
                         tuple(float(v) for v in rmse))


def surface_estimate(input_sensor: str, wavelengths_nm: np.ndarray, fwhm_nm: np.ndarray) -> Harmonisation:
    """The map from the input sensor's top-of-atmosphere RGB to its own surface RGB (path radiance and
    transmittance undone on average): the RGB consistency target of TOA input. Fitted and cached as
    :func:`fit_harmonisation` (~2.5 s the first time)."""
    return fit_harmonisation(input_sensor, "toa", OWN_SURFACE, tuple(map(float, wavelengths_nm)),
                             tuple(map(float, fwhm_nm)))


def training_camera(bundle_rgb: dict | None) -> str | None:
    """The measured camera whose RGB a bundle was trained on (its ``rgb`` record), else None (e.g. a
    bundle trained on a user's rasters, whose response was estimated)."""
    from hyperldm_engine.spectral.input_sensors import INPUT_SENSORS

    camera = (bundle_rgb or {}).get("camera")
    return camera if any(s.kind == "camera" and s.camera == camera for s in INPUT_SENSORS.values()) else None


#: ``--harmonise``: auto (the radiometry from the raster's ``radiometry`` tag, else surface), the
#: input's radiometry said outright, or off
HARMONISE_MODES = ("auto", "surface", "toa", "off")


def choose_harmonisation(mode: str, input_sensor: str, source: str, tags: dict, camera: str | None,
                         wavelengths_nm: np.ndarray, fwhm_nm: np.ndarray, keep_haze: bool = False
                         ) -> Harmonisation | None:
    """The map for this input, or None: ``mode`` "off"; the input sensor not known (``source``
    "default"); the bundle's training camera not known; a radiometry an affine map cannot undo
    (gamma-encoded ``camera`` values); or the input already is the training camera on surface reflectance.
    ``keep_haze``: on top-of-atmosphere input the surface bandpass map alone, marked ``bandpass_only``
    (the cubes are centred on an anchor measured on hazy TOA RGB; module docstring)."""
    from hyperldm_engine.errors import InputError
    from hyperldm_engine.spectral.input_sensors import get_input_sensor

    if mode not in HARMONISE_MODES:
        raise InputError(f"unknown --harmonise {mode!r}; choose one of {', '.join(HARMONISE_MODES)}")
    radiometry = str(tags.get("radiometry") or "surface").lower() if mode == "auto" else mode
    if mode == "off" or camera is None or source == "default" or radiometry not in AFFINE_RADIOMETRIES:
        return None
    s = get_input_sensor(input_sensor)
    bandpass_only = keep_haze and radiometry == "toa"
    if s.kind == "camera" and s.camera == camera and (radiometry == "surface" or bandpass_only):
        return None
    grid = tuple(map(float, wavelengths_nm)), tuple(map(float, fwhm_nm))
    if bandpass_only:
        return replace(fit_harmonisation(s.name, "surface", camera, *grid), radiometry="toa", bandpass_only=True)
    return fit_harmonisation(s.name, radiometry, camera, *grid)
