"""Training data: scenes held in memory and a reproducible random patch sampler over them.

A :class:`TrainScene` is one georeferenced hyperspectral raster (any band count, with wavelengths),
its RGB on the same grid (given, or derived from the cube through a camera response), optional
labels and a validity mask. The last rows of every scene (``heldout_fraction``, at least one
patch high) are kept out of training for the report. Patches are drawn with an explicit numpy
``Generator`` (whose state goes into checkpoints), so a run is reproducible and resumable.
Each patch's RGB is seen through a random camera (``augment.py``) and normalised with the
statistics of the whole augmented scene, as ``normalise_rgb`` does at inference time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.raster import (
    PERCENTILE_LEVELS,
    WHITE_PERCENTILE,
    SceneStatistics,
    grid_mismatch,
    normalise_rgb,
)
from hyperldm_engine.train.augment import AugmentConfig, Camera, apply_camera, draw_camera

SAMPLE_SIDE = 256
DEFAULT_AUGMENT = AugmentConfig()  # the decimated statistics sample is about SAMPLE_SIDE x SAMPLE_SIDE pixels


@dataclass
class TrainScene:
    """One scene in memory: ``hsi (bands, rows, cols)`` reflectance, ``rgb (3, rows, cols)``."""

    name: str
    hsi: np.ndarray
    rgb: np.ndarray
    valid: np.ndarray
    wavelengths_nm: np.ndarray
    fwhm_nm: np.ndarray
    labels: np.ndarray | None = None        # int64, -1 = unlabelled
    class_names: list[str] = field(default_factory=list)
    gsd_m: float | None = None
    crs: Any = None
    transform: Any = None
    heldout_row0: int = 0                   # rows >= heldout_row0 are held out
    rgb_source: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.hsi.shape[1]), int(self.hsi.shape[2])

    def statistics_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """A fixed decimated sample of the whole RGB ``(3, n)`` and its validity ``(n,)``."""
        h, w = self.shape
        step = max(1, int(np.ceil(max(h, w) / SAMPLE_SIDE)))
        rgb = self.rgb[:, ::step, ::step].reshape(3, -1)
        ok = self.valid[::step, ::step].reshape(-1)
        return rgb, ok


def heldout_row0(height: int, patch_size: int, fraction: float, name: str = "scene") -> int:
    """First held-out row: the last ``fraction`` of rows, at least one patch high, leaving one for training."""
    if fraction <= 0:
        return height
    n_hold = max(int(np.ceil(fraction * height)), patch_size)
    if height - n_hold < patch_size:
        raise InputError(f"{name}: {height} rows are too few for {patch_size}-pixel training patches plus a "
                         f"held-out strip of {n_hold} rows; use a smaller --patch-size or a larger scene")
    return height - n_hold


def _window_valid_fraction(valid: np.ndarray, size: int) -> np.ndarray:
    """Fraction of valid pixels in every ``size x size`` window, indexed by its top-left corner."""
    c = np.zeros((valid.shape[0] + 1, valid.shape[1] + 1), np.int64)
    c[1:, 1:] = np.cumsum(np.cumsum(valid, axis=0, dtype=np.int64), axis=1)
    s = c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]
    return s / float(size * size)


def valid_origins(scene: TrainScene, patch_size: int, min_valid: float, region: str = "train") -> np.ndarray:
    """Flat indices (row * cols + col) of patch corners inside ``region`` with enough valid pixels."""
    h, w = scene.shape
    r0, r1 = (0, scene.heldout_row0) if region == "train" else (scene.heldout_row0, h)
    if r1 - r0 < patch_size or w < patch_size:
        return np.zeros(0, np.int64)
    frac = _window_valid_fraction(scene.valid[r0:r1], patch_size)
    rows, cols = np.nonzero(frac >= min_valid)
    return ((rows + r0).astype(np.int64) * w + cols).astype(np.int64)


@dataclass
class PatchBatch:
    """Model-ready tensors: ``hsi (B, bands, p, p)``, ``rgb (B, 3, p, p)`` normalised, ``valid (B, p, p)``."""

    hsi: torch.Tensor
    rgb: torch.Tensor
    valid: torch.Tensor
    labels: torch.Tensor | None = None


def _orient(a: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 dihedral orientations of the last two axes (k in 0..7)."""
    if k >= 4:
        a = a[..., ::-1]
    return np.rot90(a, k % 4, axes=(-2, -1))


Normaliser = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``normaliser(patch_rgb (3,p,p), scene_sample (3,n), sample_valid (n,)) -> model input (3,p,p)``."""


class PatchSampler:
    """Random training patches from one or more scenes, reproducible through ``rng``.

    Scenes are chosen uniformly (each scene, whatever its size or GSD, weighs the same), then a
    patch corner uniformly among those whose window holds at least ``min_valid`` valid pixels and
    lies wholly in the training rows. ``orient`` adds a random flip/rot90; ``augment`` a random camera.
    """

    def __init__(self, scenes: Sequence[TrainScene], patch_size: int, rng: np.random.Generator,
                 normaliser: Normaliser, min_valid: float = 0.9, orient: bool = True,
                 augment: AugmentConfig | None = DEFAULT_AUGMENT) -> None:
        if not scenes:
            raise InputError("no training scenes were given")
        self.scenes = list(scenes)
        self.patch_size = int(patch_size)
        self.rng = rng
        self.normaliser = normaliser
        self.orient = orient
        self.augment = augment
        self.origins = [valid_origins(s, self.patch_size, min_valid) for s in self.scenes]
        for s, o in zip(self.scenes, self.origins, strict=True):
            if o.size == 0:
                raise InputError(f"{s.name}: too few valid pixels for {patch_size}-pixel patches in the training "
                                 f"rows (each patch needs {min_valid:.0%} valid pixels); use a smaller "
                                 f"--patch-size or a scene with less nodata")
        self._samples = [s.statistics_sample() for s in self.scenes]

    def model_rgb(self, scene_index: int, rgb: np.ndarray, camera: Camera | None) -> np.ndarray:
        """Apply ``camera`` to a patch and normalise it with the augmented scene's statistics."""
        sample, ok = self._samples[scene_index]
        if camera is not None and not camera.is_identity:
            rgb = apply_camera(rgb, camera, self.rng)
            sample = apply_camera(sample, camera, self.rng)
        return self.normaliser(rgb, sample, ok)

    def sample(self, batch_size: int) -> PatchBatch:
        """Draw ``batch_size`` patches (always the same number of draws from ``rng`` per patch kind)."""
        p = self.patch_size
        hsi, rgb, valid, labels = [], [], [], []
        for _ in range(int(batch_size)):
            si = int(self.rng.integers(len(self.scenes)))
            scene = self.scenes[si]
            flat = int(self.origins[si][self.rng.integers(self.origins[si].size)])
            r, c = divmod(flat, scene.shape[1])
            k = int(self.rng.integers(8)) if self.orient else 0
            cam = draw_camera(self.rng, self._samples[si][0][:, self._samples[si][1]], self.augment) \
                if self.augment is not None else None
            win = (slice(r, r + p), slice(c, c + p))
            m = scene.valid[win]
            x_rgb = self.model_rgb(si, scene.rgb[(slice(None), *win)], cam)
            hsi.append(_orient(np.where(m, scene.hsi[(slice(None), *win)], 0.0), k))
            rgb.append(_orient(np.where(m, x_rgb, 0.0), k))
            valid.append(_orient(m, k))
            if scene.labels is not None:
                labels.append(_orient(scene.labels[win], k))
        t = lambda xs, dt: torch.from_numpy(np.ascontiguousarray(np.stack(xs))).to(dt)  # noqa: E731
        return PatchBatch(hsi=t(hsi, torch.float32), rgb=t(rgb, torch.float32), valid=t(valid, torch.bool),
                          labels=t(labels, torch.int64) if len(labels) == len(hsi) else None)


def heldout_patches(scene: TrainScene, patch_size: int, normaliser: Normaliser, min_valid: float = 0.9,
                    max_patches: int = 16) -> PatchBatch | None:
    """Non-overlapping patches of the held-out rows (clean camera), spread evenly; None if there are none."""
    h, w = scene.shape
    p = patch_size
    r0 = scene.heldout_row0
    corners = [(r, c) for r in range(r0, h - p + 1, p) for c in range(0, w - p + 1, p)]
    corners = [(r, c) for r, c in corners if scene.valid[r:r + p, c:c + p].mean() >= min_valid]
    if not corners:
        return None
    if len(corners) > max_patches:
        pick = np.linspace(0, len(corners) - 1, max_patches).round().astype(int)
        corners = [corners[i] for i in pick]
    sample, ok = scene.statistics_sample()
    hsi, rgb, valid = [], [], []
    for r, c in corners:
        m = scene.valid[r:r + p, c:c + p]
        hsi.append(np.where(m, scene.hsi[:, r:r + p, c:c + p], 0.0))
        rgb.append(np.where(m, normaliser(scene.rgb[:, r:r + p, c:c + p], sample, ok), 0.0))
        valid.append(m)
    return PatchBatch(hsi=torch.from_numpy(np.stack(hsi)).float(), rgb=torch.from_numpy(np.stack(rgb)).float(),
                      valid=torch.from_numpy(np.stack(valid)))


def labelled_pixels(scenes: Sequence[TrainScene], region: str, max_pixels: int | None = None,
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spectra ``(n, bands)`` and class indices ``(n,)`` of valid labelled pixels in ``region``."""
    xs, ys = [], []
    for s in scenes:
        if s.labels is None:
            continue
        rows = slice(0, s.heldout_row0) if region == "train" else slice(s.heldout_row0, None)
        lab = s.labels[rows]
        ok = s.valid[rows] & (lab >= 0)
        xs.append(s.hsi[:, rows][:, ok].T)
        ys.append(lab[ok])
    if not xs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    x, y = np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)
    if max_pixels is not None and y.size > max_pixels:
        pick = np.sort((rng or np.random.default_rng(0)).choice(y.size, max_pixels, replace=False))
        x, y = x[pick], y[pick]
    return x, y


# ---- scene-level normalisation (as io.raster.normalise_rgb at inference) ---------------------------

def sample_statistics(sample: np.ndarray, ok: np.ndarray) -> SceneStatistics:
    """:class:`SceneStatistics` of a decimated sample ``(3, n)``, by the rule of ``scene_statistics``."""
    vals = sample[:, ok].astype(np.float64)
    if vals.shape[1] == 0:
        raise InputError("the scene has no valid RGB pixel")
    white = float(np.percentile(vals.max(axis=0), WHITE_PERCENTILE))
    pct = np.percentile(vals, PERCENTILE_LEVELS, axis=1).T
    return SceneStatistics(white=max(white, 1e-6), levels=PERCENTILE_LEVELS, percentiles=pct.tolist(),
                           mean=vals.mean(axis=1).tolist(), valid_fraction=float(ok.mean()),
                           sampled_pixels=int(ok.size), decimation=1, scale=1.0, dtype="float32")


def scene_normaliser(rgb: np.ndarray, sample: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """The default :data:`Normaliser`: ``normalise_rgb`` with the statistics of the (augmented) sample."""
    return normalise_rgb(rgb, sample_statistics(sample, ok))


# ---- scenes from files -----------------------------------------------------------------------------

def _read_labels(path: Path, grid: Any, hsi_path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels as contiguous class indices (-1 = unlabelled), the raw class values and their names."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            if grid_mismatch(grid, ds):
                raise InputError(f"{path}: the labels raster is not on the grid of {hsi_path} (CRS, transform "
                                 "and size must match)")
            raw = ds.read(1)
            mask = ds.read_masks(1) > 0
            tags = ds.tags()
    except RasterioIOError as exc:
        raise InputError(f"{path}: cannot read the labels raster ({exc})") from exc
    if not np.issubdtype(raw.dtype, np.integer):
        if not np.all(np.isfinite(raw[mask])) or np.any(raw[mask] != np.round(raw[mask])):
            raise InputError(f"{path}: labels must be integer class values")
        raw = np.where(mask, raw, 0).astype(np.int64)
    values = np.unique(raw[mask])
    if values.size == 0:
        raise InputError(f"{path}: the labels raster has no labelled pixel")
    lut = np.searchsorted(values, raw)
    labels = np.where(mask, lut, -1).astype(np.int64)
    names = _class_names(tags, values)
    return labels, values, names


def _class_names(tags: dict[str, str], values: np.ndarray) -> list[str]:
    """Names from a ``class_names`` tag (JSON list indexed by value, or {value: name}), else ``class <v>``."""
    import json

    found: dict[int, str] = {}
    for key in ("class_names", "CLASS_NAMES", "classes"):
        if key in tags:
            try:
                data = json.loads(tags[key])
            except ValueError:
                data = [s.strip() for s in tags[key].split(",")]
            if isinstance(data, dict):
                found = {int(k): str(v) for k, v in data.items()}
            elif isinstance(data, list):
                found = dict(enumerate(str(v) for v in data))
            break
    return [found.get(int(v), f"class {int(v)}") for v in values]


def load_scene(hsi_path: str | Path, rgb_path: str | Path | None = None, labels_path: str | Path | None = None,
               wavelengths_path: str | Path | None = None, camera: str = "Nikon 5100 (NPL)",
               rgb_scale: float | None = None, hsi_scale: float | None = None) -> TrainScene:
    """Read one training scene into memory (all bands, whole raster).

    The RGB, when given, must share the HSI's grid (CRS, transform, size); when absent it is derived
    from the cube through the camera response (``spectral.rgb``). FWHM defaults to the band spacing.
    """
    from hyperldm_engine.io.raster import RasterGrid, open_hsi, open_rgb
    from hyperldm_engine.spectral.rgb import camera_response, rgb_from_cube
    from hyperldm_engine.spectral.sensor import Sensor

    hsi_path = Path(hsi_path)
    with open_hsi(hsi_path, wavelengths_path, scale=hsi_scale) as hr:
        grid = RasterGrid.of(hr)
        cube, valid = hr.read()
        wl = np.asarray(hr.wavelengths_nm, float)
        fwhm = None if hr.fwhm_nm is None else np.asarray(hr.fwhm_nm, float)
        gsd = float(abs(hr.res[0])) if hr.crs is not None and not hr.is_geographic else None
    if fwhm is None:
        fwhm = np.gradient(wl) if wl.size > 1 else np.full(1, 10.0)
    valid &= np.all(np.isfinite(cube), axis=0)
    cube = np.where(valid, cube, 0.0).astype(np.float32)
    if rgb_path is not None:
        rgb_path = Path(rgb_path)
        with open_rgb(rgb_path, scale=rgb_scale) as rr:
            if grid_mismatch(grid, rr):
                raise InputError(f"{rgb_path}: the RGB raster is not on the grid of {hsi_path} (CRS, transform "
                                 f"and size must match: {rr.width}x{rr.height} vs {grid.width}x{grid.height})")
            rgb, rgb_valid = rr.read()
        valid &= rgb_valid
        rgb_source = {"kind": "file", "path": str(rgb_path)}
    else:
        response = camera_response(Sensor(wl, fwhm, "scene"), camera)
        rgb = rgb_from_cube(cube, response)
        rgb_source = {"kind": "camera_response", "camera": camera}
    labels, names = None, []
    if labels_path is not None:
        labels, _, names = _read_labels(Path(labels_path), grid, hsi_path)
    scene = TrainScene(name=str(hsi_path), hsi=cube, rgb=np.where(valid, rgb, 0.0).astype(np.float32),
                       valid=valid, wavelengths_nm=wl, fwhm_nm=np.asarray(fwhm, float), labels=labels,
                       class_names=names, gsd_m=gsd, crs=grid.crs, transform=grid.transform, rgb_source=rgb_source)
    return scene


def scene_from_simulation(scene: Any, name: str | None = None) -> TrainScene:
    """A :class:`TrainScene` from an in-memory ``simulate.Scene`` (no files; for the default model)."""
    return TrainScene(
        name=name or f"simulated seed {scene.seed} gsd {scene.gsd_m:g} m", hsi=scene.hsi.astype(np.float32),
        rgb=scene.rgb.astype(np.float32), valid=np.all(np.isfinite(scene.hsi), axis=0),
        wavelengths_nm=np.asarray(scene.sensor.centers_nm, float), fwhm_nm=np.asarray(scene.sensor.fwhm_nm, float),
        labels=scene.labels.astype(np.int64), class_names=list(scene.class_names), gsd_m=float(scene.gsd_m),
        crs=scene.crs, transform=scene.transform,
        rgb_source=_simulated_rgb_source(scene))


def _simulated_rgb_source(scene: Any) -> dict[str, Any]:
    """How a simulated scene's RGB was made: the camera response, or the input sensor and radiometry."""
    params = scene.params
    if params.get("input_sensor") and (params.get("input_sensor") != "nikon-5100"
                                       or params.get("radiometry", "surface") != "surface"):
        return {"kind": "input_sensor", "input_sensor": str(params["input_sensor"]),
                "radiometry": str(params.get("radiometry", "surface"))}
    return {"kind": "camera_response", "camera": str(params.get("camera", "Nikon 5100 (NPL)"))}
