"""Small numpy-backed readers, writers and tile functions with the engine's duck-typed interfaces."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.windows import Window

UTM_10M = Affine(10.0, 0, 500000.0, 0, -10.0, 4000000.0)


def _slices(window: Window) -> tuple[slice, slice]:
    r0, c0 = int(window.row_off), int(window.col_off)
    return slice(r0, r0 + int(window.height)), slice(c0, c0 + int(window.width))


class ArrayReader:
    """An in-memory RGB 'raster' with an optional validity mask; records the windows read."""

    def __init__(self, rgb: np.ndarray, mask: np.ndarray | None = None,
                 transform: Affine = UTM_10M, crs: str = "EPSG:32633"):
        self.rgb = np.asarray(rgb, np.float32)
        self.height, self.width = self.rgb.shape[1:]
        self.mask = np.ones((self.height, self.width), bool) if mask is None else np.asarray(mask, bool)
        self.transform = transform
        self.crs = crs
        self.reads: list[Window] = []

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        self.reads.append(window)
        rs, cs = _slices(window)
        return self.rgb[:, rs, cs].copy(), self.mask[rs, cs].copy()


class ArrayWriter:
    """Collects written windows into an array (NaN where never written)."""

    def __init__(self, count: int, height: int, width: int) -> None:
        self.data = np.full((count, height, width), np.nan, np.float32)
        self.windows: list[Window] = []

    def write(self, array: np.ndarray, window: Window, band_offset: int = 0) -> None:
        rs, cs = _slices(window)
        assert array.shape[1:] == (rs.stop - rs.start, cs.stop - cs.start)
        self.windows.append(window)
        self.data[band_offset:band_offset + array.shape[0], rs, cs] = array


class SyntheticReader:
    """A large smooth scene computed on the fly from pixel coordinates (nothing stored)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.transform = Affine.identity()

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        rs, cs = _slices(window)
        y = np.arange(rs.start, rs.stop, dtype=np.float32)[:, None]
        x = np.arange(cs.start, cs.stop, dtype=np.float32)[None, :]
        base = 0.5 + 0.25 * np.sin(0.013 * x) * np.cos(0.007 * y)
        rgb = np.stack([base, base * 0.5, base + 0.1]).astype(np.float32)
        return rgb, np.ones(base.shape, bool)


class DigestWriter:
    """Stores nothing: checks that each strip's row blocks arrive in order and hashes their bytes."""

    def __init__(self, count: int, height: int, width: int) -> None:
        self.count, self.height, self.width = count, height, width
        self.next_rows: dict[tuple[int, int], int] = {}   # (col_off, width) -> next row
        self.digest = hashlib.sha256()
        self.max_block_rows = 0

    def write(self, array: np.ndarray, window: Window, band_offset: int = 0) -> None:
        key = (int(window.col_off), int(window.width))
        assert int(window.row_off) == self.next_rows.get(key, 0)
        self.next_rows[key] = int(window.row_off) + int(window.height)
        self.max_block_rows = max(self.max_block_rows, int(window.height))
        self.digest.update(np.ascontiguousarray(array).tobytes())

    @property
    def next_row(self) -> int:
        """The first row not yet written in every strip (the strips must tile the width)."""
        spans = sorted(self.next_rows)
        assert spans and spans[0][0] == 0 and sum(w for _, w in spans) == self.width
        return min(self.next_rows.values())


MIX = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]],
               np.float32)


@dataclass(frozen=True)
class LinearTile:
    """A per-pixel linear 'model' (5 bands from RGB): any tiling must reproduce it exactly."""

    def __call__(self, request) -> np.ndarray:
        return np.einsum("cb,bhw->chw", MIX, request.rgb).astype(np.float32)


def linear_reference(rgb: np.ndarray) -> np.ndarray:
    return np.einsum("cb,bhw->chw", MIX, rgb).astype(np.float32)


@dataclass(frozen=True)
class TwoOutputTile:
    """Returns named outputs: 'hsi' (5 bands) and 'abundances' (2 bands)."""

    def __call__(self, request) -> dict[str, np.ndarray]:
        hsi = np.einsum("cb,bhw->chw", MIX, request.rgb).astype(np.float32)
        return {"hsi": hsi, "abundances": request.rgb[:2] * 2.0}


@dataclass(frozen=True)
class TileOffsetTile:
    """Adds a per-tile constant (row*10 + col): makes seams between tiles visible."""

    def __call__(self, request) -> np.ndarray:
        return request.rgb + np.float32(request.row * 10 + request.col)


@dataclass(frozen=True)
class FailOnceTile:
    """Raises on the first call of tile (0, 0) (marker file), then behaves as LinearTile."""

    marker: str

    def __call__(self, request) -> np.ndarray:
        if (request.row, request.col) == (0, 0) and not Path(self.marker).exists():
            Path(self.marker).write_text("failed once")
            raise RuntimeError("transient failure")
        return LinearTile()(request)


@dataclass(frozen=True)
class DieOnceTile:
    """Kills its worker process on the first call of tile (0, 1), then behaves as LinearTile."""

    marker: str

    def __call__(self, request) -> np.ndarray:
        if (request.row, request.col) == (0, 1) and not Path(self.marker).exists():
            Path(self.marker).write_text("died once")
            os._exit(1)
        return LinearTile()(request)
