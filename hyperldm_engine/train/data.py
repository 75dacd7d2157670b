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
from typing import Any

import numpy as np
import torch

from hyperldm_engine.errors import InputError
from hyperldm_engine.train.augment import AugmentConfig, Camera, apply_camera, draw_camera

SAMPLE_SIDE = 128  # the decimated statistics sample is about SAMPLE_SIDE x SAMPLE_SIDE pixels


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
                 augment: AugmentConfig | None = AugmentConfig()) -> None:
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
