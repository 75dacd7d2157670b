"""uint16 outputs hold reflectance = stored value x scale, and every reader unscales them (issue 21).

Each test goes through the CLI for every ``--dtype`` and both sample layouts and reads the files
back with the readers' own unscaling (rasterio ``scales`` / ``offsets``, and GDAL's
``GetScale`` / ``GetOffset`` where the GDAL bindings are installed).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import rasterio

from hyperldm_engine.io.writer import INT_SCALE

from .conftest import FAST_SYNTH, rgb_data, write_raster

FAST = [x for kv in FAST_SYNTH.items() for x in kv]


def unscaled(path) -> tuple[np.ndarray, np.ndarray]:
    """(reflectance (bands, h, w) float64, valid (bands, h, w)) the way rasterio/QGIS show it."""
    with rasterio.open(path) as ds:
        data = ds.read(masked=True)
        scales = np.asarray(ds.scales, float)[:, None, None]
        offsets = np.asarray(ds.offsets, float)[:, None, None]
    valid = ~np.ma.getmaskarray(data)
    return data.filled(0).astype(np.float64) * scales + offsets, valid


def gdal_unscaled(path) -> np.ndarray | None:
    try:
        from osgeo import gdal
    except ImportError:
        return None
    ds = gdal.Open(str(path))
    out = []
    for i in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(i)
        out.append(band.ReadAsArray().astype(np.float64) * (band.GetScale() or 1.0) + (band.GetOffset() or 0.0))
    return np.stack(out)


@pytest.mark.parametrize(("layout", "cog"), [("files", False), ("bands", False), ("bands", True)])
def test_uint16_and_float32_agree_after_unscaling(tmp_path, tiny_bundle, cli, layout, cog):
    rgb = write_raster(tmp_path / "rgb.tif", rgb_data())
    outs = {}
    for dtype in ("float32", "uint16"):
        out = tmp_path / f"{dtype}.tif"
        result = cli(["synthesize", rgb, out, "--model", tiny_bundle, "--samples", "2", "--seed", "3",
                      "--sample-layout", layout, "--dtype", dtype, *(["--cog"] if cog else []), *FAST])
        assert result.code == 0, result.stderr
        if layout == "files":
            outs[dtype] = [out.with_name(f"{dtype}_s{k}.tif") for k in range(2)]
        else:
            outs[dtype] = [out]
    for f32, u16 in zip(outs["float32"], outs["uint16"], strict=True):
        ref, ref_valid = unscaled(f32)
        got, got_valid = unscaled(u16)
        assert np.array_equal(ref_valid, got_valid)
        assert ref_valid.any()
        assert float(ref[ref_valid].max()) > 0.01, "the float cube itself must hold reflectance"
        assert np.abs(got[got_valid] - ref[ref_valid]).max() <= INT_SCALE + 1e-6
        with rasterio.open(u16) as ds:
            assert ds.dtypes[0] == "uint16"
            assert all(s == pytest.approx(INT_SCALE) for s in ds.scales)
            assert all(o == 0 for o in ds.offsets)
        with rasterio.open(f32) as ds:
            assert all(s == 1 for s in ds.scales)
        via_gdal = gdal_unscaled(u16)
        if via_gdal is not None:
            assert np.abs(via_gdal[got_valid] - ref[ref_valid]).max() <= INT_SCALE + 1e-6
        if shutil.which("gdalinfo"):  # the command-line tools' view (what QGIS reads too)
            info = json.loads(subprocess.run(["gdalinfo", "-json", str(u16)], capture_output=True,
                                             text=True, check=True).stdout)
            assert all(b["scale"] == pytest.approx(INT_SCALE) and b.get("offset", 0) == 0
                       for b in info["bands"])


def test_int_scale_is_the_reflectance_of_one_stored_unit():
    """The one named constant: reflectance = stored value x INT_SCALE (1e-4, i.e. reflectance x 10000)."""
    assert INT_SCALE == 1e-4
