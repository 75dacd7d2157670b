"""RGB from a hyperspectral cube: a measured camera response, or the paper's band selection."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.sensor import Sensor

PAPER_RGB_BANDS = (23, 12, 5)  # 1-based band numbers of the DFC 2018 CASI cube (R, G, B)


@lru_cache(maxsize=8)
def _camera_curves(camera: str) -> tuple[np.ndarray, np.ndarray]:
    """Camera sensitivities (red, green, blue) on 300-1100 nm at 1 nm, zero outside their range.

    colour's default alignment would extend the edge value beyond 780 nm (an invented NIR
    response); we pad with zeros instead, as an IR-cut filter would.
    """
    import colour

    if camera not in colour.MSDS_CAMERA_SENSITIVITIES:
        names = ", ".join(sorted(colour.MSDS_CAMERA_SENSITIVITIES))
        raise InputError(f"unknown camera {camera!r}; known: {names}")
    msds = colour.MSDS_CAMERA_SENSITIVITIES[camera].copy().align(
        colour.SpectralShape(300, 1100, 1),
        extrapolator_kwargs={"method": "Constant", "left": 0, "right": 0})
    wl = np.asarray(msds.wavelengths, dtype=np.float64)
    values = np.asarray(msds.values, dtype=np.float64)  # (n_wl, 3) in labels order
    order = [list(msds.labels).index(c) for c in ("red", "green", "blue")]
    return wl, np.clip(values[:, order].T, 0.0, None)


def camera_response(sensor: Sensor, camera: str = "Nikon 5100 (NPL)") -> np.ndarray:
    """Camera channel weights ``(3, n_bands)`` on ``sensor``'s bands, each row summing to 1.

    The camera curve is multiplied by each band's Gaussian response and integrated (1 nm), so a
    flat reflectance of 0.3 gives RGB 0.3: RGB stays in reflectance-like units (0-1).
    """
    wl, curves = _camera_curves(camera)
    w = curves @ sensor.response_matrix(wl).T  # (3, n_bands)
    total = w.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise InputError(f"camera {camera!r} has no response over the sensor's bands")
    return (w / total).astype(np.float32)


def rgb_from_cube(cube: np.ndarray, response: np.ndarray) -> np.ndarray:
    """``(bands, rows, cols)`` cube -> ``(3, rows, cols)`` RGB = response @ spectra per pixel."""
    cube = np.asarray(cube)
    if cube.ndim != 3 or cube.shape[0] != response.shape[1]:
        raise InputError(f"cube of shape {cube.shape} does not match a response for "
                         f"{response.shape[1]} bands")
    b, h, w = cube.shape
    out = response.astype(np.float32) @ cube.reshape(b, h * w).astype(np.float32, copy=False)
    return out.reshape(3, h, w)


def select_bands(cube: np.ndarray, bands: tuple[int, int, int] = PAPER_RGB_BANDS) -> np.ndarray:
    """RGB by picking bands; ``bands`` are 1-based band numbers (the paper's 23, 12, 5 for R, G, B).

    1-based as in the paper and in GDAL; band number k is ``cube[k - 1]`` (0-based index).
    """
    cube = np.asarray(cube)
    idx = [int(b) - 1 for b in bands]
    if min(idx) < 0 or max(idx) >= cube.shape[0]:
        raise InputError(f"band numbers {tuple(bands)} are outside 1..{cube.shape[0]} (1-based)")
    return cube[idx]
