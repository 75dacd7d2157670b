"""Smooth random fields on a metric grid, for zones, shores, cover and texture."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], pixel_m: float,
                 scale_m: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field ``shape`` (rows, cols) with correlation ~``scale_m``.

    White noise on a coarse grid of cell ``scale_m / 4`` metres is Gaussian-filtered (sigma two
    cells) and bilinearly interpolated onto pixels of ``pixel_m`` metres, so the field's look
    depends on metres, not pixels. Texture finer than two pixels would average out inside a
    pixel, so it is returned as zeros.
    """
    rows, cols = shape
    if scale_m < 2.0 * pixel_m:
        return np.zeros(shape, np.float32)
    cell = scale_m / 4.0
    ny = int(np.ceil(rows * pixel_m / cell)) + 8
    nx = int(np.ceil(cols * pixel_m / cell)) + 8
    coarse = gaussian_filter(rng.standard_normal((ny, nx)), sigma=2.0, mode="wrap")
    coarse = ((coarse - coarse.mean()) / (coarse.std() + 1e-12)).astype(np.float32)
    return bilinear(coarse, (np.arange(rows) + 0.5) * pixel_m / cell + 4.0,
                    (np.arange(cols) + 0.5) * pixel_m / cell + 4.0)


def bilinear(grid: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Sample ``grid`` at the outer product of fractional row ``yy`` and column ``xx`` positions."""
    y0 = np.clip(np.floor(yy).astype(np.int64), 0, grid.shape[0] - 2)
    x0 = np.clip(np.floor(xx).astype(np.int64), 0, grid.shape[1] - 2)
    fy = (yy - y0).astype(np.float32)[:, None]
    fx = (xx - x0).astype(np.float32)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def sample_at(field: np.ndarray, pixel_m: float, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """Nearest-pixel values of a field at metric points (x right, y down), clipped to the grid."""
    r = np.clip((np.asarray(y_m) / pixel_m).astype(np.int64), 0, field.shape[0] - 1)
    c = np.clip((np.asarray(x_m) / pixel_m).astype(np.int64), 0, field.shape[1] - 1)
    return field[r, c]
