"""``--extent``/``--aoi`` crop the outputs to the area snapped to the input grid, through the CLI.

The output's transform and size are the pixels whose centres lie in the extent; CRS, wavelengths and
band names are kept; every value equals the whole-scene run's in that window (tiles and the noise
field stay on the input's grid), for float32 and uint16 cubes, abundances and diversity maps, in
process and on dask workers. ``--keep-grid`` writes the whole input grid with nodata outside.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.windows import Window

from hyperldm_engine.io.wavelengths import find_wavelengths
from hyperldm_engine.pipeline import diversity as div

#: an extent that cuts pixels off-centre on every side: centres of columns 13..50 and rows 7..29 inside
COLS, ROWS = (12.6, 50.7), (7.2, 29.9)
WINDOW = Window(13, 7, 38, 23)
TILING = ["--tile-size", "32", "--overlap", "8", "--steps", "1", "--progress", "none"]


#: the one-thread fixture and the simulated ``rgb`` come from tests/pipeline/conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


def cli(*argv: str) -> None:
    from hyperldm_cli.main import _register_commands
    from hyperldm_cli.main import cli as main

    _register_commands()
    result = CliRunner().invoke(main, [str(a) for a in argv])
    assert result.exit_code == 0, result.output


def extent_of(rgb: Path, cols: tuple[float, float] = COLS, rows: tuple[float, float] = ROWS) -> str:
    """The extent from ``cols`` and ``rows`` in (fractional) pixel units of ``rgb``."""
    with rasterio.open(rgb) as ds:
        left, top, res = ds.bounds.left, ds.bounds.top, ds.res[0]
    return f"{left + cols[0] * res},{top - rows[1] * res},{left + cols[1] * res},{top - rows[0] * res}"


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), {"transform": ds.transform, "crs": ds.crs, "shape": (ds.height, ds.width),
                           "wavelengths": [ds.tags(b, ns="IMAGERY").get("CENTRAL_WAVELENGTH_UM") for b in ds.indexes],
                           "envi": ds.tags(ns="ENVI"), "descriptions": ds.descriptions,
                           "scales": ds.scales, "nodata": ds.nodata}


def in_window(full: np.ndarray, window: Window = WINDOW) -> np.ndarray:
    return full[:, window.row_off:window.row_off + window.height, window.col_off:window.col_off + window.width]


def assert_cropped(clipped: Path, full: Path, window: Window = WINDOW) -> np.ndarray:
    """``clipped`` is ``full``'s ``window``: grid, CRS, metadata and every value."""
    a, meta = read(clipped)
    b, whole = read(full)
    assert meta["shape"] == (window.height, window.width)
    assert meta["transform"] == whole["transform"] @ Affine.translation(window.col_off, window.row_off)
    assert meta["crs"] == whole["crs"] and meta["crs"] is not None
    for key in ("wavelengths", "envi", "descriptions", "scales", "nodata"):
        assert meta[key] == whole[key], key
    np.testing.assert_array_equal(a, in_window(b, window))
    return a


@pytest.fixture(scope="module")
def full_runs(rgb: Path, tiny_bundle: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full")
    # asking for --abundances changes the cube's last bit (the decoder's other path), so both runs exist
    cli("synthesize", rgb, out / "hsi_ab.tif", "--model", tiny_bundle, "--abundances", out / "ab.tif", *TILING)
    cli("synthesize", rgb, out / "hsi.tif", "--model", tiny_bundle, *TILING)
    cli("synthesize", rgb, out / "u16.tif", "--model", tiny_bundle, "--dtype", "uint16", *TILING)
    return out


def test_extent_crops_float32_uint16_and_abundances(rgb: Path, tiny_bundle: str, full_runs: Path,
                                                    tmp_path: Path) -> None:
    extent = extent_of(rgb)
    cli("synthesize", rgb, tmp_path / "hsi.tif", "--model", tiny_bundle, "--abundances", tmp_path / "ab.tif",
        "--extent", extent, *TILING)
    cube = assert_cropped(tmp_path / "hsi.tif", full_runs / "hsi_ab.tif")
    assert cube.shape[0] == 48 and np.isfinite(cube).all() and (cube != -9999).all()  # all inside: no nodata
    wavelengths_nm, _ = find_wavelengths(tmp_path / "hsi.tif")
    assert len(wavelengths_nm) == 48 and 400 <= wavelengths_nm[0] < wavelengths_nm[-1] <= 1000
    assert_cropped(tmp_path / "ab.tif", full_runs / "ab.tif")
    cli("synthesize", rgb, tmp_path / "u16.tif", "--model", tiny_bundle, "--dtype", "uint16", "--extent", extent,
        *TILING)
    ints = assert_cropped(tmp_path / "u16.tif", full_runs / "u16.tif")
    assert ints.dtype == np.uint16 and (ints > 0).all()


def test_extent_in_another_crs_and_keep_grid(rgb: Path, tiny_bundle: str, full_runs: Path, tmp_path: Path) -> None:
    from pyproj import Transformer

    with rasterio.open(rgb) as ds:
        crs, left, top, res = ds.crs, ds.bounds.left, ds.bounds.top, ds.res[0]
    # QGIS's form in EPSG:4326 around the centres of columns 20..29 and rows 10..19 (reprojected: a
    # box slightly bent, so a pixel or so more or less at each edge; the grid is checked, not the size)
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    (x0, x1), (y0, y1) = to_ll.transform([left + 20 * res, left + 30 * res], [top - 20 * res, top - 10 * res])
    cli("synthesize", rgb, tmp_path / "ll.tif", "--model", tiny_bundle, "--extent",
        f"{x0!r},{x1!r},{y0!r},{y1!r} [EPSG:4326]", *TILING)
    _, meta = read(tmp_path / "ll.tif")
    col, row = ~read(full_runs / "hsi.tif")[1]["transform"] @ (meta["transform"].c, meta["transform"].f)
    assert col == pytest.approx(round(col), abs=1e-6) and row == pytest.approx(round(row), abs=1e-6)
    window = Window(round(col), round(row), meta["shape"][1], meta["shape"][0])
    assert abs(window.col_off - 20) <= 1 and abs(window.row_off - 10) <= 1 and abs(window.width - 10) <= 2
    assert_cropped(tmp_path / "ll.tif", full_runs / "hsi.tif", window)

    cli("synthesize", rgb, tmp_path / "kept.tif", "--model", tiny_bundle, "--extent", extent_of(rgb),
        "--keep-grid", *TILING)
    kept, meta = read(tmp_path / "kept.tif")
    full, whole = read(full_runs / "hsi.tif")
    assert meta["shape"] == whole["shape"] and meta["transform"] == whole["transform"]
    np.testing.assert_array_equal(in_window(kept), in_window(full))
    outside = np.ones(kept.shape[1:], bool)
    outside[WINDOW.row_off:WINDOW.row_off + WINDOW.height, WINDOW.col_off:WINDOW.col_off + WINDOW.width] = False
    assert (kept[:, outside] == -9999).all()


def test_aoi_crops_to_the_polygons_bounding_box(rgb: Path, tiny_bundle: str, full_runs: Path,
                                                tmp_path: Path) -> None:
    with rasterio.open(rgb) as ds:
        left, top, res, epsg = ds.bounds.left, ds.bounds.top, ds.res[0], ds.crs.to_epsg()
    # a triangle over the centres of columns 30..60, rows 5..35: its bounding box is the output
    pts = [(30.2, 4.9), (60.8, 4.9), (30.2, 35.8)]
    ring = [[left + c * res, top - r * res] for c, r in [*pts, pts[0]]]
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection",
                               "crs": {"type": "name", "properties": {"name": f"EPSG:{epsg}"}},
                               "features": [{"type": "Feature", "properties": {},
                                             "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    cli("synthesize", rgb, tmp_path / "aoi.tif", "--model", tiny_bundle, "--aoi", aoi, *TILING)
    cube, meta = read(tmp_path / "aoi.tif")
    window = Window(30, 5, 30, 30)  # columns 30..59 (60.5 > 60.8 - the slant), rows 5..34
    full, _ = read(full_runs / "hsi.tif")
    inside = cube[0] != -9999
    assert meta["shape"] == (window.height, window.width)
    assert inside[0, 0] and not inside[-1, -1]  # the triangle's corner and the cut-off corner
    assert inside[:, 0].all() and inside[0, :].all()  # every row and column of the box holds a pixel
    np.testing.assert_array_equal(cube[:, inside], in_window(full, window)[:, inside])


@pytest.mark.slow
def test_dask_workers_write_the_same_crop(rgb: Path, tiny_bundle: str, full_runs: Path, tmp_path: Path) -> None:
    """A 2-process dask cluster and narrow strips: the same cropped file."""
    cli("synthesize", rgb, tmp_path / "dask.tif", "--model", tiny_bundle, "--extent", extent_of(rgb),
        "--workers", "2", "--strip-width", "16", *TILING)
    assert_cropped(tmp_path / "dask.tif", full_runs / "hsi.tif")


def test_diversity_maps_are_cropped(rgb: Path, tiny_bundle: str, tmp_path: Path) -> None:
    common = ["--model", tiny_bundle, "--samples", "2", *TILING]
    cli("diversity", rgb, tmp_path / "full", *common)
    cli("diversity", rgb, tmp_path / "clip", "--extent", extent_of(rgb), *common)
    for name in (div.MEAN, div.SPREAD, div.SDM_MAP):  # per-pixel maps: the full run's window
        assert_cropped(tmp_path / "clip" / name, tmp_path / "full" / name)
    sd, meta = read(tmp_path / "clip" / div.SD_MAP)  # SD's class marginals are the area's own
    assert meta["shape"] == (WINDOW.height, WINDOW.width) and np.isfinite(sd).all() and (sd != -9999).all()
    report = json.loads((tmp_path / "clip" / div.REPORT_JSON).read_text())
    assert report["n_pixels"] == WINDOW.width * WINDOW.height
    assert (report["width"], report["height"]) == (WINDOW.width, WINDOW.height)
    assert report["area"]["window"] == [13, 7, 38, 23]
    # picked pixels are on the written maps' grid: the whole grid's picks less the window's origin
    cli("diversity", rgb, tmp_path / "kept", "--extent", extent_of(rgb), "--keep-grid", *common)
    kept = json.loads((tmp_path / "kept" / div.REPORT_JSON).read_text())
    assert kept["area"]["window"] is None and kept["width"] == 72
    assert report["picked_pixels"] == {name: {"row": p["row"] - 7, "col": p["col"] - 13}
                                       for name, p in kept["picked_pixels"].items()}
    assert (report["sd"], report["sdm"]) == (kept["sd"], kept["sdm"])


def test_only_the_tiles_that_touch_the_extent_are_read_and_computed(rgb: Path, tiny_bundle: str, tmp_path: Path,
                                                                    monkeypatch) -> None:
    from hyperldm_engine.io import raster
    from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
    from hyperldm_engine.pipeline.synthesize import SamplingOptions, bundle_summary
    from hyperldm_engine.tiling.windows import scene_grid

    reads: list[tuple] = []
    original = raster._RasterReader.read

    def spy(self, window=None):
        reads.append(None if window is None else tuple(window.flatten()))
        return original(self, window)

    monkeypatch.setattr(raster._RasterReader, "read", spy)
    # pixel centres of columns 41..49 and rows 2..7: inside 2 of the 6 tiles; the extent reaches 0.3 px into
    # the second tile row (it starts at row 8), which holds no selected pixel centre: never read
    window = Window(41, 2, 9, 6)
    job = SceneJob(str(rgb), str(tmp_path / "hsi.tif"), tiny_bundle, sampling=SamplingOptions(steps=1), tile=32,
                   overlap=8, extent=extent_of(rgb, (40.6, 49.7), (1.6, 8.3)))
    _, stats = synthesize_scene(job, progress_mode="none")
    grid = scene_grid(72, 40, 32, 8, align=bundle_summary(tiny_bundle)["factor"])
    r0, c0, r1, c1 = window.row_off, window.col_off, window.row_off + window.height, window.col_off + window.width
    touching = {tuple(w.flatten()) for _, _, w in grid if w.row_off < r1 and w.row_off + w.height > r0
                and w.col_off < c1 and w.col_off + w.width > c0}
    assert 0 < stats.computed == len(touching) < len(grid) and stats.computed + stats.skipped == len(grid)
    tiles_read = {w for w in reads if w in {tuple(v.flatten()) for _, _, v in grid}}
    assert tiles_read == touching
