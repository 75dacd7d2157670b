"""Helpers with one owner: the grid comparison (one named tolerance), JSON-safe values, block windows."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from hyperldm_engine.io.jsonable import jsonable
from hyperldm_engine.io.raster import GRID_TOLERANCE_PX, RasterGrid, block_windows, grid_mismatch


def _grid(x0: float = 500000.0, res: float = 10.0, width: int = 100, crs: str | None = "EPSG:32633"):
    return RasterGrid(None if crs is None else CRS.from_string(crs), Affine(res, 0, x0, 0, -res, 4e6), width, 80)


def test_grid_tolerance_is_a_fraction_of_a_pixel():
    a = _grid()
    assert grid_mismatch(a, _grid()) is None
    # an origin that went through 12 significant digits of text: 5e-7 of a 10 m pixel, accepted
    assert grid_mismatch(a, _grid(x0=500000.000005)) is None
    assert grid_mismatch(a, _grid(x0=500000.0 + 10 * GRID_TOLERANCE_PX * 10)).startswith("transform")
    assert grid_mismatch(a, _grid(width=101)).startswith("size")
    assert grid_mismatch(a, _grid(crs=None)).startswith("CRS")
    reader_like = SimpleNamespace(crs=a.crs, transform=a.transform, width=100, height=80)
    assert grid_mismatch(reader_like, a) is None


def test_jsonable_known_answers():
    value = {1: np.float32(0.5), "a": (np.int64(3), np.bool_(True)), "n": np.nan, "i": -np.inf,
             "arr": np.arange(2)}
    assert jsonable(value) == {"1": 0.5, "a": [3, True], "n": None, "i": "-inf", "arr": [0, 1]}
    json.dumps(jsonable(value), allow_nan=False)


def test_block_windows_cover_the_raster_once():
    seen = np.zeros((70, 90), int)
    for w in block_windows(90, 70, 32):
        seen[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] += 1
    assert np.all(seen == 1) and len(list(block_windows(90, 70, 32))) == 9
