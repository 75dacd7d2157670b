"""GDAL_CACHEMAX in GDAL's units, converted to the bytes rasterio passes to GDALSetCacheMax64."""

from types import SimpleNamespace

import pytest
import rasterio

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.gdal_env import gdal_cache_bytes
from hyperldm_engine.pipeline import run


@pytest.mark.parametrize("value,expected", [
    (None, 64 * 2**20), ("", 64 * 2**20), ("512", 512 * 2**20), (64, 64 * 2**20),
    ("99999", 99999 * 2**20), ("100000", 100000), ("2000000000", 2_000_000_000), ("10%", 2 * 10**8)])
def test_cache_values_as_gdal_reads_them(value, expected):
    assert gdal_cache_bytes(value, total_memory=2 * 10**9) == expected


@pytest.mark.parametrize("value", ["lots", "0", "-5", "12MB"])
def test_bad_cache_values_are_refused(value):
    with pytest.raises(InputError, match="GDAL_CACHEMAX"):
        gdal_cache_bytes(value)


def test_scenes_open_with_a_cache_in_bytes(monkeypatch):
    """The regression: rasterio.Env(GDAL_CACHEMAX=256) was a 256-byte cache. Every scene command
    (synthesize, diversity) opens its input through ``run.open_scene``."""
    seen = {}

    class OpenedError(Exception):
        pass

    def spy(path, bands=None, scale=None):
        seen["cache"] = rasterio.env.getenv()["GDAL_CACHEMAX"]
        raise OpenedError

    monkeypatch.setattr(run, "open_rgb", spy)
    job = SimpleNamespace(input="rgb.tif", bands=None, scale=None)
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    with pytest.raises(OpenedError), run.open_scene(job, {"factor": 4}, "none"):
        pass
    assert seen["cache"] == 64 * 2**20
    monkeypatch.setenv("GDAL_CACHEMAX", "128")
    with pytest.raises(OpenedError), run.open_scene(job, {"factor": 4}, "none"):
        pass
    assert seen["cache"] == 128 * 2**20
