"""How tiles are merged: raised-cosine weights and a streaming, normalised accumulator.

Each tile's weight is the outer product of two 1-D ramps. Along an axis a window ramps from ~0 to 1
over its overlap with the previous window and from 1 to ~0 over its overlap with the next one;
sides on the raster's outer edge are not ramped. The ramp over ``L`` overlap pixels is
``sin^2(pi/2 * (x + 0.5) / L)``, so two windows overlapping by ``L`` have weights ``sin^2 + cos^2 = 1``
there, and every weight is strictly positive. Merged values are ``sum(w * out) / sum(w)``, so an
identity tile function reproduces its input exactly (to float32 rounding) whatever the overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from rasterio.windows import Window

from hyperldm_engine.tiling.windows import TileGrid


def ramp(length: int) -> np.ndarray:
    """Rising raised-cosine ramp over ``length`` pixels: ``sin^2(pi/2 (x + 0.5) / length)``, in (0, 1)."""
    x = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1)
    return np.sin(0.5 * np.pi * x) ** 2


def axis_weights(starts: tuple[int, ...], sizes: tuple[int, ...]) -> list[np.ndarray]:
    """1-D weights (float64) of each window along one axis, ramped only where a neighbour overlaps."""
    out = []
    n = len(starts)
    for k in range(n):
        w = np.ones(sizes[k], dtype=np.float64)
        if k > 0:
            lead = min(starts[k - 1] + sizes[k - 1] - starts[k], sizes[k])
            if lead > 0:
                w[:lead] *= ramp(lead)
        if k < n - 1:
            trail = min(starts[k] + sizes[k] - starts[k + 1], sizes[k])
            if trail > 0:
                w[sizes[k] - trail:] *= ramp(trail)[::-1]
        out.append(w)
    return out


class TileWeights:
    """Per-tile 2-D weights of a grid, ``float32 (rows, cols)``, from cached 1-D ramps."""

    def __init__(self, grid: TileGrid) -> None:
        self._rows = axis_weights(grid.row_starts, grid.row_sizes)
        self._cols = axis_weights(grid.col_starts, grid.col_sizes)

    def __call__(self, i: int, j: int) -> np.ndarray:
        return np.outer(self._rows[i], self._cols[j]).astype(np.float32)


class RowBandAccumulator:
    """Weighted sums for the band of full-width pixel rows ``[top, bottom)`` still being merged.

    ``add`` tiles (any order inside the band), then ``flush(upto)`` hands the finished rows
    ``[top, upto)`` to ``sink(name, array (C, h, width) float32, window)`` and forgets them, so memory
    is one band of rows, never the scene. Pixels that are invalid or have no weight get ``nodata``.
    """

    def __init__(self, width: int, bands: Mapping[str | None, int], nodata: float) -> None:
        self.width = int(width)
        self.bands = dict(bands)
        self.nodata = float(nodata)
        self.top = 0
        self.bottom = 0
        self._num = {k: np.zeros((c, 0, self.width), np.float32) for k, c in self.bands.items()}
        self._den = np.zeros((0, self.width), np.float32)
        self._valid = np.zeros((0, self.width), bool)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._num.values()) + self._den.nbytes + self._valid.nbytes

    def _extend(self, bottom: int) -> None:
        if bottom <= self.bottom:
            return
        extra = bottom - self.bottom
        self._num = {k: np.concatenate([a, np.zeros((a.shape[0], extra, self.width), np.float32)], axis=1)
                     for k, a in self._num.items()}
        self._den = np.concatenate([self._den, np.zeros((extra, self.width), np.float32)])
        self._valid = np.concatenate([self._valid, np.zeros((extra, self.width), bool)])
        self.bottom = bottom

    def add(self, window: Window, weight: np.ndarray, outputs: Mapping[str | None, np.ndarray] | None,
            mask: np.ndarray) -> None:
        """Accumulate one tile: ``weight`` and ``mask`` are (h, w), ``outputs[name]`` is (C, h, w).

        ``outputs=None`` records only the tile's mask (a tile skipped because it has no valid pixel).
        """
        r0, c0 = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        if r0 < self.top:
            raise ValueError(f"tile at row {r0} arrives after rows up to {self.top} were written")
        self._extend(r0 + h)
        rs = slice(r0 - self.top, r0 - self.top + h)
        cs = slice(c0, c0 + w)
        self._valid[rs, cs] |= mask
        if outputs is None:
            return
        wm = np.where(mask, weight, np.float32(0))
        self._den[rs, cs] += wm
        for name, arr in outputs.items():
            self._num[name][:, rs, cs] += np.where(mask, arr, np.float32(0)) * wm

    def flush(self, upto: int, sink: Callable[[str | None, np.ndarray, Window], None]) -> None:
        """Normalise rows ``[top, upto)`` and pass them to ``sink``; no later tile may touch them."""
        upto = int(upto)
        if upto <= self.top:
            return
        self._extend(upto)
        n = upto - self.top
        den = self._den[:n]
        good = self._valid[:n] & (den > 0)
        safe = np.where(good, den, np.float32(1))
        window = Window(0, self.top, self.width, n)
        for name, num in self._num.items():
            block = np.where(good, num[:, :n] / safe, np.float32(self.nodata)).astype(np.float32)
            sink(name, block, window)
        self._num = {k: a[:, n:].copy() for k, a in self._num.items()}
        self._den = self._den[n:].copy()
        self._valid = self._valid[n:].copy()
        self.top = upto
