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
from hyperldm_engine.timings import timed


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


def weighted_parts(outputs: Mapping[str | None, np.ndarray], weight: np.ndarray,
                   mask: np.ndarray) -> tuple[dict[str | None, np.ndarray], np.ndarray]:
    """``(where(mask, out, 0) * w, w)`` with ``w = where(mask, weight, 0)``: what a tile adds.

    The one definition used for tiles merged in place and for parts carried to the next strip, so
    both add the same float32 values. Fully valid tiles (the usual case) skip the masking, which
    gives the same values without two temporaries per output.
    """
    if mask.all():
        return {name: arr * weight for name, arr in outputs.items()}, weight
    wm = np.where(mask, weight, np.float32(0))
    return {name: np.where(mask, arr, np.float32(0)) * wm for name, arr in outputs.items()}, wm


class RowBandAccumulator:
    """Weighted sums for the band of pixel rows ``[top, bottom)`` of columns ``[col0, col0 + width)``.

    ``add`` tiles (any order inside the band), then ``flush(upto)`` hands the finished rows
    ``[top, upto)`` to ``sink(name, array (C, h, width) float32, window)`` and forgets them, so memory
    is one band of rows of one strip, never the scene. Pixels that are invalid or have no weight get
    ``nodata``. Windows are in scene pixels and must lie inside the accumulator's columns.

    The band lives in buffers allocated once (``capacity_rows``; grown only if a taller band is needed): rows past
    ``bottom`` are kept zero, and a flush moves the remaining rows to the front. Reallocating per
    tile row would page-fault hundreds of MB per row band on the client of a dask run.
    """

    def __init__(self, width: int, bands: Mapping[str | None, int], nodata: float, col0: int = 0,
                 capacity_rows: int = 0) -> None:
        self.width = int(width)
        self.col0 = int(col0)
        self.bands = dict(bands)
        self.nodata = float(nodata)
        self.top = 0
        self.bottom = 0
        self._allocate(int(capacity_rows))

    def _allocate(self, rows: int) -> None:
        self._num = {k: np.zeros((c, rows, self.width), np.float32) for k, c in self.bands.items()}
        self._den = np.zeros((rows, self.width), np.float32)
        self._valid = np.zeros((rows, self.width), bool)

    @property
    def capacity(self) -> int:
        return self._den.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._num.values()) + self._den.nbytes + self._valid.nbytes

    def _extend(self, bottom: int) -> None:
        if bottom <= self.bottom:
            return
        need = bottom - self.top
        if need > self.capacity:
            used = self.bottom - self.top
            old_num, old_den, old_valid = self._num, self._den, self._valid
            self._allocate(need)
            for k, a in old_num.items():
                self._num[k][:, :used] = a[:, :used]
            self._den[:used] = old_den[:used]
            self._valid[:used] = old_valid[:used]
        self.bottom = bottom

    def _slices(self, window: Window) -> tuple[slice, slice]:
        r0, c0 = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        if r0 < self.top:
            raise ValueError(f"tile at row {r0} arrives after rows up to {self.top} were written")
        if c0 < self.col0 or c0 + w > self.col0 + self.width:
            raise ValueError(f"tile columns {c0}-{c0 + w} outside the accumulator's "
                             f"{self.col0}-{self.col0 + self.width}")
        self._extend(r0 + h)
        return slice(r0 - self.top, r0 - self.top + h), slice(c0 - self.col0, c0 - self.col0 + w)

    @timed("blend")
    def add(self, window: Window, weight: np.ndarray, outputs: Mapping[str | None, np.ndarray] | None,
            mask: np.ndarray) -> None:
        """Accumulate one tile: ``weight`` and ``mask`` are (h, w), ``outputs[name]`` is (C, h, w).

        ``outputs=None`` records only the tile's mask (a tile skipped because it has no valid pixel).
        """
        if outputs is None:
            rs, cs = self._slices(window)
            self._valid[rs, cs] |= mask
            return
        sums, wm = weighted_parts(outputs, weight, mask)
        self.add_weighted(window, sums, wm, mask)

    @timed("blend")
    def add_weighted(self, window: Window, sums: Mapping[str | None, np.ndarray], den: np.ndarray,
                     valid: np.ndarray) -> None:
        """Accumulate precomputed ``weighted_parts`` (e.g. a piece carried over from another strip)."""
        rs, cs = self._slices(window)
        self._valid[rs, cs] |= valid
        self._den[rs, cs] += den
        for name, arr in sums.items():
            self._num[name][:, rs, cs] += arr

    @timed("blend")
    def flush(self, upto: int, sink: Callable[[str | None, np.ndarray, Window], None]) -> None:
        """Normalise rows ``[top, upto)`` and pass them to ``sink``; no later tile may touch them."""
        upto = int(upto)
        if upto <= self.top:
            return
        self._extend(upto)
        n = upto - self.top
        bad = ~(self._valid[:n] & (self._den[:n] > 0))
        safe = np.where(bad, np.float32(1), self._den[:n])
        window = Window(self.col0, self.top, self.width, n)
        any_bad = bool(bad.any())
        for name, num in self._num.items():
            block = np.divide(num[:, :n], safe)
            if any_bad:
                block[:, bad] = np.float32(self.nodata)
            sink(name, block, window)
        used = self.bottom - self.top
        rest = used - n
        for a in self._num.values():
            a[:, :rest] = a[:, n:used]
            a[:, rest:used] = 0
        self._den[:rest] = self._den[n:used]
        self._den[rest:used] = 0
        self._valid[:rest] = self._valid[n:used]
        self._valid[rest:used] = False
        self.top = upto
