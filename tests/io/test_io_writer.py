"""HsiWriter / write_raster: layout, metadata, windows, scaling, COG, atomicity, disk faults."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from hyperldm_engine.errors import InputError, OutputError, ResourceError
from hyperldm_engine.io import writer as writer_mod
from hyperldm_engine.io.writer import (
    HsiWriter,
    band_description,
    format_envi_list,
    parse_creation_options,
    translate_write_error,
    write_raster,
)

PROFILE = {"crs": "EPSG:32633", "transform": Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4100000.0)}
WL = np.array([400.0, 412.5, 580.4, 700.0, 998.25])
FWHM = np.array([10.0, 10.0, 11.5, 12.0, 15.0])


def _open(path: Path) -> rasterio.DatasetReader:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def test_formatting() -> None:
    assert band_description(12, 580.4) == "b12 (580.4 Nanometers)"  # GDAL's ENVI driver: "name (wl units)"
    assert band_description(9, 864.70812, "B8A") == "B8A (864.7081 Nanometers)"
    assert format_envi_list([400, 412.5, np.float32(580.4)]) == "{400.0, 412.5, 580.4}"
    assert parse_creation_options(["zlevel=9", "NUM_THREADS = 2"]) == {"ZLEVEL": "9", "NUM_THREADS": "2"}
    with pytest.raises(InputError, match="creation option 'ZLEVEL' is not of the form KEY=VALUE"):
        parse_creation_options(["ZLEVEL"])


def test_windowed_float_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    out = tmp_path / "hsi.tif"
    cube = rng.random((5, 40, 70)).astype(np.float32)
    cube[:, 0, 0] = np.nan
    with HsiWriter(out, PROFILE, width=70, height=40, wavelengths_nm=WL, fwhm_nm=FWHM,
                   nodata=-9999.0) as w:
        assert not out.exists()  # only the temporary exists while writing
        w.write(cube[:, :25], Window(0, 0, 70, 25))
        w.write(cube[:2, 25:], Window(0, 25, 70, 15))
        w.write(cube[2:, 25:, 30:], Window(30, 25, 40, 15), band_offset=2)
        w.write(cube[2:, 25:, :30], Window(0, 25, 30, 15), band_offset=2)
    assert os.listdir(tmp_path) == ["hsi.tif"]
    with _open(out) as ds:
        got = ds.read()
        assert ds.count == 5 and ds.dtypes[0] == "float32"
        assert ds.nodata == -9999.0
        assert ds.crs.to_epsg() == 32633
        assert ds.transform == PROFILE["transform"]
        assert ds.block_shapes[0] == (512, 512)
        ims = ds.tags(ns="IMAGE_STRUCTURE")
        assert ims["COMPRESSION"] == "ZSTD" and ims["PREDICTOR"] == "3" and ims["INTERLEAVE"] == "BAND"
        assert ds.descriptions == ("b1 (400.0 Nanometers)", "b2 (412.5 Nanometers)", "b3 (580.4 Nanometers)",
                                   "b4 (700.0 Nanometers)", "b5 (998.25 Nanometers)")
        for tags in (ds.tags(), ds.tags(ns="ENVI")):
            assert tags["wavelength"] == "{400.0, 412.5, 580.4, 700.0, 998.25}"
            assert tags["wavelength_units"] == "Nanometers"
            assert tags["fwhm"] == "{10.0, 10.0, 11.5, 12.0, 15.0}"
        assert ds.tags(3) == {"wavelength": "580.4", "fwhm": "11.5", "wavelength_units": "Nanometers"}
        assert ds.tags(3, ns="IMAGERY") == {"CENTRAL_WAVELENGTH_UM": "0.580400", "FWHM_UM": "0.011500"}
        assert ds.tags(ns="ENVI")["bbl"] == "{1, 1, 1, 1, 1}"
    assert got[0, 0, 0] == -9999.0
    np.testing.assert_array_equal(got[:, 1:], cube[:, 1:])
    np.testing.assert_array_equal(got[:, 0, 1:], cube[:, 0, 1:])


def test_uint16_scale_factor_and_hsi_reader(tmp_path: Path) -> None:
    from hyperldm_engine.io.raster import open_hsi

    out = tmp_path / "hsi16.tif"
    cube = np.linspace(0, 1.2, 5 * 6 * 7).reshape(5, 6, 7).astype(np.float32)
    cube[:, 2, 3] = np.nan
    cube[0, 0, 0] = 7.0  # clipped to the largest value that is not nodata
    with HsiWriter(out, None, 7, 6, wavelengths_nm=WL, dtype="uint16", nodata=65535) as w:
        w.write(cube)
    with _open(out) as ds:
        raw = ds.read()
        assert ds.crs is None
        assert ds.scales == (1e-4,) * 5 and ds.offsets == (0.0,) * 5  # reflectance = stored x 1e-4
        assert "scale_factor" not in ds.tags()
        assert ds.tags(ns="ENVI")["reflectance_scale_factor"] == "10000.0"
        assert ds.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
    assert raw[0, 0, 0] == 65534
    assert (raw[:, 2, 3] == 65535).all()
    expect = np.where(np.isfinite(cube[1]), np.rint(np.nan_to_num(cube[1]) * 10000), 65535)
    np.testing.assert_array_equal(raw[1], expect.astype(np.uint16))
    r = open_hsi(out)
    assert r.scale == pytest.approx(10000.0)
    np.testing.assert_allclose(r.wavelengths_nm, WL)
    vals, valid = r.read()
    assert not valid[2, 3] and valid.sum() == 41
    np.testing.assert_allclose(vals[1:][:, valid], cube[1:][:, valid], atol=0.5e-4)


def test_creation_options_and_band_names(tmp_path: Path) -> None:
    out = write_raster(tmp_path / "labels.tif", np.arange(12, dtype=np.uint8).reshape(3, 4),
                       PROFILE, band_names=["class"], creation_options=["COMPRESS=DEFLATE", "ZLEVEL=1"])
    with _open(out) as ds:
        assert ds.dtypes[0] == "uint8" and ds.descriptions == ("class",)
        assert ds.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        np.testing.assert_array_equal(ds.read(1), np.arange(12).reshape(3, 4))
        assert "scale_factor" not in ds.tags()


def test_deflate_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(writer_mod._COMPRESSION_CACHE, "ZSTD", False)
    assert writer_mod.default_compression() == "DEFLATE"
    out = write_raster(tmp_path / "d.tif", np.ones((2, 3, 3), np.float32))
    with _open(out) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"


def test_cog(tmp_path: Path, rng: np.random.Generator) -> None:
    out = tmp_path / "cog.tif"
    cube = rng.random((5, 600, 520)).astype(np.float32)
    with HsiWriter(out, PROFILE, 520, 600, wavelengths_nm=WL, fwhm_nm=FWHM, cog=True) as w:
        for r0 in range(0, 600, 200):
            w.write(cube[:, r0:r0 + 200], Window(0, r0, 520, 200))
    assert os.listdir(tmp_path) == ["cog.tif"]
    with _open(out) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.overviews(1) == [2]
        assert ds.block_shapes[0] == (512, 512)
        assert ds.tags(ns="ENVI")["wavelength"] == format_envi_list(WL)
        assert ds.descriptions[2] == "b3 (580.4 Nanometers)"
        assert ds.tags(3, ns="IMAGERY")["CENTRAL_WAVELENGTH_UM"] == "0.580400"  # kept by the COG copy
        assert ds.crs.to_epsg() == 32633
        np.testing.assert_array_equal(ds.read(), cube)


def test_exception_inside_writer_leaves_nothing(tmp_path: Path) -> None:
    for cog in (False, True):
        with pytest.raises(KeyboardInterrupt), \
                HsiWriter(tmp_path / "x.tif", PROFILE, 8, 8, count=2, cog=cog) as w:
            w.write(np.zeros((2, 8, 8), np.float32))
            raise KeyboardInterrupt
        assert os.listdir(tmp_path) == []


def test_existing_output_refused(tmp_path: Path) -> None:
    out = tmp_path / "x.tif"
    out.write_bytes(b"keep")
    with pytest.raises(OutputError, match=r"x\.tif: the output already exists"):
        write_raster(out, np.zeros((1, 2, 2), np.float32))
    assert out.read_bytes() == b"keep"
    write_raster(out, np.zeros((1, 2, 2), np.float32), overwrite=True)
    with _open(out) as ds:
        assert ds.count == 1


def test_bad_writes_are_programming_errors(tmp_path: Path) -> None:
    with HsiWriter(tmp_path / "x.tif", None, 8, 8, count=2) as w:
        with pytest.raises(ValueError, match="does not match window"):
            w.write(np.zeros((2, 4, 4)), Window(0, 0, 8, 8))
        with pytest.raises(ValueError, match=r"outside 1\.\.2"):
            w.write(np.zeros((2, 8, 8)), band_offset=1)
        with pytest.raises(ValueError, match="outside the 8x8 raster"):
            w.write(np.zeros((2, 4, 4)), Window(6, 0, 4, 4))
        w.write(np.zeros((2, 8, 8)))


def test_disk_space_checked_upfront(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(writer_mod.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ResourceError, match=r"big\.tif: not enough disk space: 0\.0 MB free"):
        HsiWriter(tmp_path / "big.tif", None, 1000, 1000, count=10).__enter__()
    assert os.listdir(tmp_path) == []


def test_translate_write_error(tmp_path: Path) -> None:
    final = tmp_path / "o.tif"
    e = translate_write_error(final, None, OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(e, ResourceError) and str(e) == f"{final}: the disk is full; no output was written"
    e = translate_write_error(final, None, OSError(errno.EFBIG, "File too large"))
    assert isinstance(e, ResourceError) and "file-size limit" in str(e)
    e = translate_write_error(final, None, OSError(errno.EIO, "I/O error"))
    assert isinstance(e, OutputError) and "writing failed" in str(e)
    k = KeyboardInterrupt()
    assert translate_write_error(final, None, k) is k


def _run_limited(tmp_path: Path, limit: int, shape: tuple[int, int, int]) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import os, resource, numpy as np
        from hyperldm_engine.errors import HyperLDMError
        from hyperldm_engine.io.writer import write_raster
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        a = np.random.default_rng(0).random({shape}).astype("float32")
        try:
            write_raster(os.path.join({str(tmp_path)!r}, "big.tif"), a)
            print("OK")
        except HyperLDMError as e:
            print(type(e).__name__, e.exit_code, e)
    """)
    return subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_file_size_limit_mid_write(tmp_path: Path) -> None:
    # limit above the upfront estimate (25% of 1.44 MB) but below the incompressible output
    res = _run_limited(tmp_path, 500_000, (4, 300, 300))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ResourceError 5 "), res.stdout + res.stderr
    assert "file-size limit" in res.stdout and "no output was written" in res.stdout
    assert os.listdir(tmp_path) == []


def test_file_size_limit_upfront(tmp_path: Path) -> None:
    res = _run_limited(tmp_path, 100_000, (4, 300, 300))
    assert res.stdout.startswith("ResourceError 5 "), res.stdout + res.stderr
    assert "ulimit -f" in res.stdout and "too small" in res.stdout
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("cog", [False, True])
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (["COMPRESS=FOO"], InputError, "bad creation option: 'FOO' is an unexpected value for COMPRESS"),
        (["FOO=1"], InputError, "driver (GTiff|COG) does not support creation option FOO"),
        (["BLOCKXSIZE=100"], OutputError, r"(cannot create the output|writing failed): .*(16|TileWidth)"),
    ],
)
def test_bad_creation_options(tmp_path: Path, cog: bool, options, error, message) -> None:
    with pytest.raises(error, match=message) as info:
        write_raster(tmp_path / "o.tif", np.zeros((1, 4, 4), np.float32), creation_options=options, cog=cog)
    assert "hyperldm-tmp" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_cog_translates_gtiff_option_names(tmp_path: Path) -> None:
    out = write_raster(tmp_path / "c.tif", np.zeros((2, 4, 4), np.float32), cog=True,
                       creation_options=["COMPRESS=DEFLATE", "ZLEVEL=1"])
    with _open(out) as ds:
        ims = ds.tags(ns="IMAGE_STRUCTURE")
        assert ims["LAYOUT"] == "COG" and ims["COMPRESSION"] == "DEFLATE"


def test_gdal_error_on_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rasterio.errors import RasterioIOError

    usage = namedtuple("usage", "total used free")
    gdal_err = RasterioIOError("TIFFAppendToStrip:Write error at scanline 0")
    e = translate_write_error(tmp_path / "o.tif", None, gdal_err)
    assert isinstance(e, OutputError) and "TIFFAppendToStrip" in str(e)
    monkeypatch.setattr(writer_mod.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))
    e = translate_write_error(tmp_path / "o.tif", None, gdal_err)
    assert isinstance(e, ResourceError) and str(e).endswith("o.tif: the disk is full; no output was written")
