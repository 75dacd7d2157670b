"""Tiny rasters for the io tests, made with rasterio."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning


def hippo_cube() -> Path:
    """The real ENVI cube napari-hippo ships (450 bands, 378-2504 nm), or skip."""
    spec = importlib.util.find_spec("napari_hippo")  # locate only: importing it needs hylite
    if spec is not None and spec.submodule_search_locations:
        p = Path(next(iter(spec.submodule_search_locations))) / "testdata" / "image.hdr"
        if p.exists():
            return p
    pytest.skip("napari-hippo test data not installed")


def make_raster(path: Path, array: np.ndarray, crs: str | None = "EPSG:32633", transform=None,
                **profile) -> Path:
    """Write ``array`` (bands, rows, cols) as a GeoTIFF with plain rasterio (independent of our writer)."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    prof = {"driver": "GTiff", "width": a.shape[2], "height": a.shape[1], "count": a.shape[0],
            "dtype": a.dtype.name}
    if crs is not None:
        prof["crs"] = crs
        prof["transform"] = transform or Affine(2.0, 0.0, 500000.0, 0.0, -2.0, 4100000.0)
    elif transform is not None:
        prof["transform"] = transform
    prof.update(profile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **prof) as ds:
            ds.write(a)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(name="make_raster")
def make_raster_fixture():
    """``make_raster(path, array, crs=..., transform=..., **profile)``."""
    return make_raster


@pytest.fixture
def hippo_hdr() -> Path:
    return hippo_cube()
