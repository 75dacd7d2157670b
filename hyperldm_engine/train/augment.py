"""Radiometric augmentation of the RGB condition (never of the hyperspectral target).

Real RGB orthophotos come with arbitrary scales, colour casts, tone curves, haze, sensor noise and
8-bit storage. Training on one clean camera simulation would make the model brittle to all of
them, so each training patch sees its scene through a randomly drawn "camera": white balance,
haze (a bluish additive offset), gamma, contrast around the scene mean, gain, noise and optional
8-bit quantisation. The draw is scene-level: the same parameters transform a fixed decimated sample
of the whole scene, and the scene statistics of the model input (``normalise_rgb``) come from that
transformed sample, never from the patch, exactly as at inference time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random camera (reflectance-like units: the clean scene mean is about 0.1-0.3)."""

    p_identity: float = 0.2              # probability of the clean camera simulation
    gain: tuple[float, float] = (0.25, 4.0)          # log-uniform overall scale
    contrast: tuple[float, float] = (0.7, 1.4)
    gamma: tuple[float, float] = (0.6, 1.5)          # log-uniform
    white_balance: tuple[float, float] = (0.75, 1.33)  # per channel, log-uniform, mean-preserving
    haze: tuple[float, float] = (0.0, 0.5)            # fraction of the scene mean added (blue > red)
    noise: tuple[float, float] = (0.0, 0.03)          # std as fraction of the scene mean
    p_quantise: float = 0.5
    saturation_point: tuple[float, float] = (0.9, 1.6)  # of the 99.5th percentile -> 255


@dataclass(frozen=True)
class Camera:
    """One drawn radiometric transform; ``pivot`` is the clean scene mean it is defined around."""

    pivot: float
    gain: float = 1.0
    contrast: float = 1.0
    gamma: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    haze: tuple[float, float, float] = (0.0, 0.0, 0.0)
    noise: float = 0.0
    full_scale: float | None = None    # value stored as 255 when quantising to 8 bits; None = float

    @property
    def is_identity(self) -> bool:
        return self == Camera(pivot=self.pivot)


def _tone(rgb: np.ndarray, cam: Camera) -> np.ndarray:
    """Every deterministic step before noise and quantisation; non-negative output."""
    p = max(cam.pivot, 1e-6)
    wb = np.asarray(cam.white_balance, np.float32).reshape(3, *([1] * (rgb.ndim - 1)))
    hz = np.asarray(cam.haze, np.float32).reshape(3, *([1] * (rgb.ndim - 1)))
    x = np.maximum(rgb.astype(np.float32, copy=False), 0.0) * wb + hz * p
    x = p * np.power(x / p, cam.gamma)
    x = np.maximum(p + cam.contrast * (x - p), 0.0)
    return (x * cam.gain).astype(np.float32)


def apply_camera(rgb: np.ndarray, cam: Camera, rng: np.random.Generator) -> np.ndarray:
    """Transform an RGB array ``(3, ...)`` (reflectance-like) by ``cam``; noise drawn from ``rng``.

    Output is finite and >= 0; with ``full_scale`` it holds integers 0-255 (8-bit storage).
    """
    if cam.is_identity:
        return rgb.astype(np.float32, copy=True)
    x = _tone(rgb, cam)
    if cam.noise > 0:
        x = x + rng.standard_normal(x.shape, dtype=np.float32) * np.float32(cam.noise * cam.pivot * cam.gain)
        x = np.maximum(x, 0.0)
    if cam.full_scale is not None:
        x = np.clip(np.rint(x * np.float32(255.0 / cam.full_scale)), 0.0, 255.0)
    return x.astype(np.float32)


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float], size: int | None = None):
    lo, hi = lo_hi
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def draw_camera(rng: np.random.Generator, scene_sample: np.ndarray, config: AugmentConfig = AugmentConfig()
                ) -> Camera:
    """Draw one random camera for a scene, given a decimated clean sample ``(3, n)`` of it."""
    valid = scene_sample[:, np.all(np.isfinite(scene_sample), axis=0)]
    pivot = float(np.mean(valid)) if valid.size else 0.1
    pivot = max(pivot, 1e-4)
    # Always consume the same number of draws, so the stream does not depend on the branch taken.
    u = rng.uniform()
    gain = float(_log_uniform(rng, config.gain))
    contrast = float(rng.uniform(*config.contrast))
    gamma = float(_log_uniform(rng, config.gamma))
    wb = _log_uniform(rng, config.white_balance, 3)
    wb = wb / np.exp(np.mean(np.log(wb)))
    haze_level = float(rng.uniform(*config.haze))
    haze_tint = np.array([0.6, 0.8, 1.0]) * rng.uniform(0.8, 1.2, 3)
    noise = float(rng.uniform(*config.noise))
    quantise = rng.uniform() < config.p_quantise
    saturation = float(rng.uniform(*config.saturation_point))
    if u < config.p_identity:
        return Camera(pivot=pivot)
    cam = Camera(pivot=pivot, gain=gain, contrast=contrast, gamma=gamma,
                 white_balance=tuple(float(v) for v in wb),
                 haze=tuple(float(v) for v in haze_level * haze_tint), noise=noise)
    if quantise:
        toned = _tone(valid, cam)
        top = float(np.percentile(toned, 99.5)) if toned.size else 1.0
        cam = replace(cam, full_scale=max(top * saturation, 1e-6))
    return cam
