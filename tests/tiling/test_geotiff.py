"""End to end through real GeoTIFFs: open_rgb -> run_tiles -> HsiWriter."""

import numpy as np
import pytest
import rasterio
from affine import Affine

from hyperldm_engine.io.raster import open_rgb
from hyperldm_engine.io.writer import HsiWriter
from hyperldm_engine.tiling.runner import OutputSet, TilePlan, run_tiles
from hyperldm_engine.tiling.windows import tile_grid

from .fakes import LinearTile, linear_reference

WAVELENGTHS = [450.0, 550.0, 650.0, 700.0, 800.0]


def _write_rgb(path, h=150, w=110):
    rgb = np.random.default_rng(3).uniform(0.05, 0.8, (3, h, w)).astype(np.float32)
    rgb[:, 10:20, 30:60] = -1.0  # nodata patch
    profile = dict(driver="GTiff", width=w, height=h, count=3, dtype="float32", nodata=-1.0,
                   crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4100000))
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(rgb)
    return rgb


def test_identity_through_geotiffs(tmp_path):
    rgb = _write_rgb(tmp_path / "rgb.tif")
    reader = open_rgb(tmp_path / "rgb.tif")
    grid = tile_grid(reader.width, reader.height, 64, 16, align=4)
    out = tmp_path / "hsi.tif"
    with HsiWriter(out, reader.profile, count=5, wavelengths_nm=WAVELENGTHS, nodata=-9999.0) as writer:
        stats = run_tiles(reader, LinearTile(), TilePlan(grid), OutputSet.of(writer, 5, -9999.0))
    assert stats.computed == len(grid)
    with rasterio.open(out) as ds:
        data = ds.read()
        assert ds.crs.to_epsg() == 32633 and ds.transform == reader.transform
    valid = rgb[0] != -1.0
    np.testing.assert_allclose(data[:, valid], linear_reference(rgb)[:, valid], rtol=1e-6, atol=1e-7)
    assert np.all(data[:, ~valid] == -9999.0)


def test_interrupt_leaves_no_output(tmp_path):
    _write_rgb(tmp_path / "rgb.tif")
    reader = open_rgb(tmp_path / "rgb.tif")
    grid = tile_grid(reader.width, reader.height, 32, 8, align=4)

    def stop_at_row_two(req):
        if req.row == 2:
            raise KeyboardInterrupt
        return LinearTile()(req)

    out = tmp_path / "hsi.tif"
    with pytest.raises(KeyboardInterrupt), HsiWriter(out, reader.profile, count=5, nodata=-9999.0) as writer:
        run_tiles(reader, stop_at_row_two, TilePlan(grid), OutputSet.of(writer, 5, -9999.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb.tif"]
