"""Areas of interest: extent parsing (both forms), vectors, reprojection, restricted runs."""

import json

import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import Polygon, box

from hyperldm_engine.errors import InputError
from hyperldm_engine.tiling.aoi import AoiMask, extent_geometry, load_aoi, parse_extent, windows_for_aoi
from hyperldm_engine.tiling.runner import OutputSet, TilePlan, run_tiles
from hyperldm_engine.tiling.windows import tile_grid

from .fakes import ArrayReader, ArrayWriter, LinearTile, linear_reference

TRANSFORM = Affine(10.0, 0, 500000.0, 0, -10.0, 4000000.0)  # UTM 33N, 10 m pixels


def test_parse_qgis_form():
    e = parse_extent("500100.5,500800,3999200,3999900.25 [EPSG:32633]")
    assert (e.xmin, e.xmax, e.ymin, e.ymax) == (500100.5, 500800.0, 3999200.0, 3999900.25)
    assert e.crs == CRS.from_epsg(32633)


def test_parse_engine_form_with_and_without_crs():
    e = parse_extent("500100,3999200,500800,3999900,EPSG:32633")
    assert (e.xmin, e.ymin, e.xmax, e.ymax) == (500100, 3999200, 500800, 3999900)
    assert e.crs == CRS.from_epsg(32633)
    bare = parse_extent(" 1e2, -5, 2.5e2, 7 ")
    assert (bare.xmin, bare.ymin, bare.xmax, bare.ymax, bare.crs) == (100, -5, 250, 7, None)
    q = parse_extent("100,250,-5,7", order="qgis")
    assert (q.xmin, q.ymin, q.xmax, q.ymax) == (100, -5, 250, 7)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "20,0,10,5,EPSG:4326", "0,10,0,10 [NOPE:1]",
                                  "0,10,5,5 [EPSG:4326]", ""])
def test_parse_rejects(text):
    with pytest.raises(InputError):
        parse_extent(text)


def test_geographic_extent_is_reprojected():
    lon_lat = Transformer.from_crs(32633, 4326, always_xy=True)
    lon0, lat0 = lon_lat.transform(500200, 3999500)
    lon1, lat1 = lon_lat.transform(500600, 3999800)
    g = extent_geometry(parse_extent(f"{lon0},{lon1},{lat0},{lat1} [EPSG:4326]"), "EPSG:32633")
    np.testing.assert_allclose(g.bounds, (500200, 3999500, 500600, 3999800), atol=1.0)


def test_load_aoi_from_geojson_in_another_crs(tmp_path):
    to_ll = Transformer.from_crs(32633, 4326, always_xy=True)
    ring = [to_ll.transform(x, y) for x, y in [(500100, 3999100), (500500, 3999100), (500100, 3999600)]]
    polygon = {"type": "Polygon", "coordinates": [ring + ring[:1]]}
    feature = {"type": "Feature", "properties": {}, "geometry": polygon}
    fc = {"type": "FeatureCollection", "features": [feature]}
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps(fc))
    g = load_aoi(str(path), "EPSG:32633")
    expected = Polygon([(500100, 3999100), (500500, 3999100), (500100, 3999600)])
    assert g.symmetric_difference(expected).area < 1e-3 * expected.area


def test_load_aoi_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_aoi(str(tmp_path / "missing.gpkg"), "EPSG:32633")
    pts = tmp_path / "points.geojson"
    pts.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 2]}}]}))
    with pytest.raises(InputError, match="no polygon"):
        load_aoi(str(pts), "EPSG:32633")


def test_run_restricted_to_aoi():
    h, w = 80, 100
    rgb = np.random.default_rng(5).uniform(0, 1, (3, h, w)).astype(np.float32)
    # AOI: pixel columns 10..40, rows 5..30 (map coordinates from the transform)
    aoi = box(500000 + 10 * 10, 4000000 - 30 * 10, 500000 + 40 * 10, 4000000 - 5 * 10)
    grid = tile_grid(w, h, 32, 8, align=4)
    touched = windows_for_aoi(grid, aoi, TRANSFORM)
    assert touched == [(0, 0), (0, 1), (1, 0), (1, 1)]
    calls = []

    def fn(req):
        calls.append((req.row, req.col))
        return LinearTile()(req)

    reader, writer = ArrayReader(rgb, transform=TRANSFORM), ArrayWriter(5, h, w)
    mask_fn = AoiMask(aoi, TRANSFORM)
    stats = run_tiles(reader, fn, TilePlan(grid, tiles=touched, mask_fn=mask_fn), OutputSet.of(writer, 5, -1.0))
    inside = np.zeros((h, w), bool)
    inside[5:30, 10:40] = True
    np.testing.assert_array_equal(mask_fn(grid.window(0, 0)), inside[:32, :32])
    assert sorted(calls) == touched and stats.skipped == len(grid) - len(touched)
    assert all(win.col_off < 40 and win.row_off < 30 for win in reader.reads), "untouched tiles never read"
    np.testing.assert_allclose(writer.data[:, inside], linear_reference(rgb)[:, inside], rtol=1e-6, atol=1e-7)
    assert np.all(writer.data[:, ~inside] == -1.0)
    # mask_fn alone (no tile list) skips the same tiles
    calls.clear()
    run_tiles(ArrayReader(rgb, transform=TRANSFORM), fn, TilePlan(grid, mask_fn=mask_fn),
              OutputSet.of(ArrayWriter(5, h, w), 5, -1.0))
    assert sorted(calls) == touched
    assert shapely.is_valid(aoi)


def test_progress_counts_only_listed_tiles():
    class Count:
        done = 0

        def advance(self, n=1.0, message=None, **postfix):
            self.done += n

    grid = tile_grid(100, 80, 32, 8, align=4)
    progress = Count()
    rgb = np.zeros((3, 80, 100), np.float32)
    run_tiles(ArrayReader(rgb), LinearTile(), TilePlan(grid, tiles=[(0, 0), (1, 2)]),
              OutputSet.of(ArrayWriter(5, 80, 100), 5, -1.0), progress=progress)
    assert progress.done == 2
