"""Seam statistic: is the merged scene rougher across tile borders than inside tiles?

For every pair of 4-neighbour pixels, the mean (over bands) absolute difference is taken. Pairs
that straddle a window edge of the grid (the first or last pixel of a tile facing a neighbouring
tile) are "across"; all other pairs are "interior". A seamless result has ``ratio`` near 1; a
visible seam gives a ratio well above 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperldm_engine.tiling.windows import TileGrid


@dataclass(frozen=True)
class SeamStats:
    """Mean absolute neighbour differences (cube units) across tile borders and inside tiles."""

    across: float
    interior: float
    n_across: int
    n_interior: int

    @property
    def ratio(self) -> float:
        """across / interior: ~1 when seamless; NaN when either has no pixel pair."""
        if not (np.isfinite(self.across) and np.isfinite(self.interior)):
            return float("nan")
        if self.interior == 0:
            return 1.0 if self.across == 0 else float("inf")
        return self.across / self.interior


def border_pairs(starts: tuple[int, ...], sizes: tuple[int, ...], size: int) -> np.ndarray:
    """Bool (size - 1,): pair ``(p, p + 1)`` straddles a window edge facing another window."""
    out = np.zeros(max(size - 1, 0), bool)
    for k, (s, n) in enumerate(zip(starts, sizes, strict=True)):
        if k > 0 and s > 0:
            out[s - 1] = True
        if k < len(starts) - 1 and s + n < size:
            out[s + n - 1] = True
    return out


def seam_statistic(cube: np.ndarray, grid: TileGrid, mask: np.ndarray | None = None) -> SeamStats:
    """Seam statistic of a merged ``(bands, rows, cols)`` cube tiled by ``grid``.

    ``mask`` (rows, cols) bool, True = valid; pairs touching an invalid or non-finite pixel are
    ignored.
    """
    cube = np.asarray(cube, dtype=np.float64)
    if cube.ndim == 2:
        cube = cube[None]
    if cube.shape[1:] != (grid.height, grid.width):
        raise ValueError(f"cube is {cube.shape[1:]} but the grid is {(grid.height, grid.width)}")
    valid = np.isfinite(cube).all(axis=0)
    if mask is not None:
        valid &= np.asarray(mask, bool)
    sums = {True: 0.0, False: 0.0}
    counts = {True: 0, False: 0}
    # horizontal pairs (along columns) and vertical pairs (along rows)
    dh = np.abs(np.diff(cube, axis=2)).mean(axis=0)
    vh = valid[:, 1:] & valid[:, :-1]
    bh = np.broadcast_to(border_pairs(grid.col_starts, grid.col_sizes, grid.width)[None, :], dh.shape)
    dv = np.abs(np.diff(cube, axis=1)).mean(axis=0)
    vv = valid[1:, :] & valid[:-1, :]
    bv = np.broadcast_to(border_pairs(grid.row_starts, grid.row_sizes, grid.height)[:, None], dv.shape)
    for d, v, b in ((dh, vh, bh), (dv, vv, bv)):
        for flag in (True, False):
            sel = v & (b == flag)
            sums[flag] += float(d[sel].sum())
            counts[flag] += int(sel.sum())
    across = sums[True] / counts[True] if counts[True] else float("nan")
    interior = sums[False] / counts[False] if counts[False] else float("nan")
    return SeamStats(across, interior, counts[True], counts[False])
