"""Where tiles are: an overlapping grid of rasterio windows aligned to the latent factor.

The rule (one axis of ``size`` pixels, the same for rows and columns):

- ``tile`` and ``overlap`` are multiples of ``align`` (the autoencoder's down-sampling factor f)
  and ``0 <= overlap < tile``; the stride is ``tile - overlap``.
- A raster no larger than a tile gets one window covering it (possibly smaller than the tile and
  not a multiple of ``align``: the tile function pads it, see :func:`pad_to_multiple`).
- Otherwise windows start at ``0, stride, 2*stride, ...`` while they start before
  ``last = floor((size - tile) / align) * align``, and a final window starts at ``last`` and runs
  to the raster's edge, so it is ``tile`` to ``tile + align - 1`` pixels long.

Every window therefore starts on a multiple of ``align``: the latent cell of pixel ``p`` is
``p // align`` in every tile that contains it, so overlapping tiles share one latent grid (and one
scene-level noise field). Windows never overhang the raster, cover it exactly, and none is empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.windows import Window

from hyperldm_engine.errors import HyperLDMError


def axis_starts(size: int, tile: int, overlap: int, align: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window starts and lengths (pixels) along one axis of ``size`` pixels, by the module's rule."""
    if size <= tile:
        return (0,), (size,)
    stride = tile - overlap
    last = ((size - tile) // align) * align
    starts = [*range(0, last, stride), last]
    sizes = [tile] * (len(starts) - 1) + [size - last]
    return tuple(starts), tuple(sizes)


@dataclass(frozen=True)
class TileGrid:
    """An overlapping, latent-aligned tiling of a ``width`` x ``height`` raster (pixels).

    Tile ``(i, j)`` is row ``i`` and column ``j`` of the grid; its window is
    ``Window(col_starts[j], row_starts[i], col_sizes[j], row_sizes[i])``.
    """

    width: int
    height: int
    tile: int
    overlap: int
    align: int
    row_starts: tuple[int, ...]
    row_sizes: tuple[int, ...]
    col_starts: tuple[int, ...]
    col_sizes: tuple[int, ...]

    @property
    def n_rows(self) -> int:
        return len(self.row_starts)

    @property
    def n_cols(self) -> int:
        return len(self.col_starts)

    def __len__(self) -> int:
        return self.n_rows * self.n_cols

    def window(self, i: int, j: int) -> Window:
        return Window(self.col_starts[j], self.row_starts[i], self.col_sizes[j], self.row_sizes[i])

    @property
    def rows(self) -> list[list[Window]]:
        """The windows as rows of the grid (top to bottom, each left to right)."""
        return [[self.window(i, j) for j in range(self.n_cols)] for i in range(self.n_rows)]

    def __iter__(self) -> Iterator[tuple[int, int, Window]]:
        """``(i, j, window)`` in row-major order: the order in which tiles are merged."""
        for i in range(self.n_rows):
            for j in range(self.n_cols):
                yield i, j, self.window(i, j)

    def latent_origin(self, i: int, j: int) -> tuple[int, int]:
        """The tile's top-left cell on the scene's latent grid: ``(row0 // align, col0 // align)``."""
        return self.row_starts[i] // self.align, self.col_starts[j] // self.align

    def row_end(self, i: int) -> int:
        """One past the last pixel row of tile row ``i``."""
        return self.row_starts[i] + self.row_sizes[i]


def tile_grid(width: int, height: int, tile: int, overlap: int, align: int = 4) -> TileGrid:
    """The overlapping tile grid of a raster; see the module docstring for the rule.

    Raises HyperLDMError when the sizes cannot give latent-aligned, overlapping tiles.
    """
    for name, value in (("width", width), ("height", height), ("tile", tile), ("align", align)):
        if int(value) != value or value < 1:
            raise HyperLDMError(f"tiling: {name} must be a positive integer, got {value}")
    if int(overlap) != overlap or overlap < 0:
        raise HyperLDMError(f"tiling: overlap must be a non-negative integer, got {overlap}")
    if tile % align or overlap % align:
        raise HyperLDMError(
            f"tiling: tile ({tile}) and overlap ({overlap}) must be multiples of the latent factor {align}")
    if overlap >= tile:
        raise HyperLDMError(f"tiling: overlap ({overlap}) must be smaller than the tile ({tile})")
    rs, rz = axis_starts(int(height), int(tile), int(overlap), int(align))
    cs, cz = axis_starts(int(width), int(tile), int(overlap), int(align))
    return TileGrid(int(width), int(height), int(tile), int(overlap), int(align), rs, rz, cs, cz)


def window_affine(window: Window, transform: Affine) -> Affine:
    """Georeference of a window: the raster's ``transform`` moved to the window's top-left pixel.

    Same result as ``rasterio.windows.transform`` (without its deprecated ``*`` operator).
    """
    return transform @ Affine.translation(window.col_off, window.row_off)


def window_footprint(window: Window, transform: Affine) -> tuple[float, float, float, float]:
    """``(xmin, ymin, xmax, ymax)`` in map units of the window's four corners."""
    a, b, c, d, e, f = transform[:6]
    xs, ys = [], []
    for col in (window.col_off, window.col_off + window.width):
        for row in (window.row_off, window.row_off + window.height):
            xs.append(a * col + b * row + c)
            ys.append(d * col + e * row + f)
    return min(xs), min(ys), max(xs), max(ys)


def pad_to_multiple(array: np.ndarray, align: int,
                    mode: str = "reflect") -> tuple[np.ndarray, tuple[int, int]]:
    """Pad the last two axes at the bottom and right to multiples of ``align``.

    Returns the padded array and the original ``(rows, cols)`` for :func:`crop_to`. Padding only at
    the far sides keeps pixel ``p`` in latent cell ``p // align``. ``mode`` is any ``numpy.pad``
    mode ('reflect' mirrors without repeating the edge pixel; 'edge' repeats it).
    """
    rows, cols = array.shape[-2:]
    pad_r = (-rows) % align
    pad_c = (-cols) % align
    if pad_r == 0 and pad_c == 0:
        return array, (rows, cols)
    if mode == "reflect" and (rows == 1 or cols == 1):
        mode = "edge"  # reflecting a single pixel is undefined
    widths = [(0, 0)] * (array.ndim - 2) + [(0, pad_r), (0, pad_c)]
    return np.pad(array, widths, mode=mode), (rows, cols)


def crop_to(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Undo :func:`pad_to_multiple`: keep the first ``shape = (rows, cols)`` of the last two axes."""
    return array[..., : shape[0], : shape[1]]


@dataclass(frozen=True)
class Strip:
    """A vertical strip of the scene, ``[col0, col1)``, and the tile columns that start inside it.

    Tiles are merged strip by strip (each strip top to bottom), so the accumulators span one
    strip, not the scene's width. A strip's tiles may overhang its right edge into the next strip
    (never further); those parts are carried over (see :mod:`hyperldm_engine.tiling.carry`).
    """

    col0: int
    col1: int
    tile_cols: tuple[int, ...]

    @property
    def width(self) -> int:
        return self.col1 - self.col0


def plan_strips(grid: TileGrid, strip_width: int | None, block_width: int = 1, origin: int = 0) -> list[Strip]:
    """Split ``grid`` into vertical strips about ``strip_width`` pixels wide (None: one strip).

    Strip edges are ``origin`` plus multiples of ``step = strip_width`` rounded up to a multiple of
    ``block_width`` (so each strip writes whole output blocks of an output whose first column is
    ``origin``) and to at least the widest tile (so a tile overhangs at most into the next strip);
    tile column ``j`` belongs to strip ``(col_starts[j] - origin) // step``. Every strip gets a tile
    column because the stride is at most a tile; the first strip starts at 0 and the last runs to
    the raster's edge.
    """
    if strip_width is None or grid.width <= strip_width:
        return [Strip(0, grid.width, tuple(range(grid.n_cols)))]
    if strip_width < 1 or block_width < 1:
        raise HyperLDMError(f"tiling: strip width ({strip_width}) and block width ({block_width}) must be positive")
    step = max(int(strip_width), max(grid.col_sizes))
    step = -(-step // block_width) * block_width
    groups: dict[int, list[int]] = {}
    for j, start in enumerate(grid.col_starts):
        groups.setdefault((start - origin) // step, []).append(j)
    keys = sorted(groups)
    strips = []
    for n, key in enumerate(keys):
        col0 = 0 if n == 0 else origin + key * step
        col1 = origin + keys[n + 1] * step if n + 1 < len(keys) else grid.width
        strips.append(Strip(col0, col1, tuple(groups[key])))
    return strips


def balanced_tile(size: int, tile: int, overlap: int, align: int) -> int:
    """The smallest aligned tile (<= ``tile``) that covers ``size`` pixels with as few windows as ``tile``.

    The rule above snaps the last window inside the raster, so a size just past a multiple of the
    stride pays for a nearly redundant window: 1024 px with 512 px tiles and 64 px overlap needs
    three windows, 2.25x the pixels. Three windows of 384 px cover it too, at 1.27x.
    """
    n = len(axis_starts(size, tile, overlap, align)[0])
    if n == 1:
        return tile
    candidate = -(-(size + (n - 1) * overlap) // n)
    candidate = -(-candidate // align) * align
    for t in range(max(candidate, overlap + align), tile + 1, align):
        if len(axis_starts(size, t, overlap, align)[0]) <= n:
            return t
    return tile


def scene_grid(width: int, height: int, tile: int, overlap: int, align: int = 4) -> TileGrid:
    """The grid the pipelines use: ``tile`` validated, then shrunk by :func:`balanced_tile` so that
    neither axis needs more windows than with ``tile`` (the larger of the two axes' tiles is kept)."""
    tile_grid(width, height, tile, overlap, align)  # validates the user's sizes
    best = max(balanced_tile(width, tile, overlap, align), balanced_tile(height, tile, overlap, align))
    return tile_grid(width, height, best, overlap, align)
