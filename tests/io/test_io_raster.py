"""open_rgb / open_hsi: scaling, masks, refusals with their messages, scene statistics."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.raster import normalise_rgb, open_hsi, open_rgb, scene_statistics


def test_uint8_scaling_and_properties(tmp_path: Path, make_raster, rng) -> None:
    a = rng.integers(0, 256, (3, 20, 30), dtype=np.uint8)
    r = open_rgb(make_raster(tmp_path / "u8.tif", a))
    rgb, valid = r.read(Window(5, 2, 10, 8))
    assert rgb.dtype == np.float32 and rgb.shape == (3, 8, 10) and valid.all()
    np.testing.assert_allclose(rgb, a[:, 2:10, 5:15] / 255.0, rtol=1e-6)
    assert (r.width, r.height, r.res, r.dtype, r.nodata) == (30, 20, (2.0, 2.0), "uint8", None)
    assert r.has_crs and not r.is_geographic and r.crs.to_epsg() == 32633
    assert r.transform.c == 500000.0 and r.profile["count"] == 3


def test_uint16_default_and_explicit_scale(tmp_path: Path, make_raster) -> None:
    a = np.full((3, 4, 4), 5000, np.uint16)
    p = make_raster(tmp_path / "u16.tif", a)
    np.testing.assert_allclose(open_rgb(p).read()[0], 5000 / 65535, rtol=1e-6)
    np.testing.assert_allclose(open_rgb(p, scale=10000).read()[0], 0.5, rtol=1e-6)
    with pytest.raises(InputError, match="scale must be a positive number"):
        open_rgb(p, scale=0)


def test_float_as_is_nan_inf_invalid(tmp_path: Path, make_raster) -> None:
    a = np.full((3, 4, 5), 0.25, np.float32)
    a[0, 1, 1] = np.nan
    a[2, 3, 4] = np.inf
    rgb, valid = open_rgb(make_raster(tmp_path / "f.tif", a)).read()
    assert valid.sum() == 18 and not valid[1, 1] and not valid[3, 4]
    assert rgb[:, 1, 1].tolist() == [0.0, 0.0, 0.0]
    assert np.isfinite(rgb).all()
    np.testing.assert_allclose(rgb[:, valid], 0.25)


def test_nodata_means_all_bands(tmp_path: Path, make_raster) -> None:
    a = np.full((3, 3, 3), 100, np.uint8)
    a[:, 0, 0] = 0          # all bands nodata -> invalid
    a[0, 1, 1] = 0          # pure cyan-ish pixel with a zero red: still valid
    r = open_rgb(make_raster(tmp_path / "nd.tif", a, nodata=0))
    assert r.nodata == 0
    rgb, valid = r.read()
    assert valid.sum() == 8 and not valid[0, 0] and valid[1, 1]
    assert rgb[0, 1, 1] == 0.0 and rgb[1, 1, 1] == pytest.approx(100 / 255)
    # user override of nodata
    _, valid = open_rgb(make_raster(tmp_path / "nd2.tif", a), nodata=100).read()
    assert valid.sum() == 2


def test_internal_mask(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "m.tif", np.full((3, 4, 4), 7, np.uint8))
    with rasterio.open(p, "r+") as ds:
        m = np.full((4, 4), 255, np.uint8)
        m[:, :2] = 0
        ds.write_mask(m)
    _, valid = open_rgb(p).read()
    assert valid.sum() == 8 and not valid[:, :2].any()


def test_alpha_band(tmp_path: Path, make_raster) -> None:
    a = np.full((4, 5, 6), 200, np.uint8)
    a[3] = 255
    a[3, :2] = 0
    p = make_raster(tmp_path / "rgba.tif", a, photometric="RGB", alpha="YES")
    with rasterio.open(p) as ds:
        assert ds.colorinterp[3] == ColorInterp.alpha
    r = open_rgb(p)
    rgb, valid = r.read()
    assert r.bands == (1, 2, 3) and rgb.shape == (3, 5, 6)
    assert valid.sum() == 18 and not valid[:2].any()


def test_four_bands_without_alpha(tmp_path: Path, make_raster) -> None:
    a = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    p = make_raster(tmp_path / "four.tif", a, photometric="MINISBLACK")
    with pytest.raises(InputError, match=r"four\.tif: has 4 bands and band 4 is not an alpha band; "
                                         r"pick the RGB bands"):
        open_rgb(p)
    rgb, _ = open_rgb(p, bands="4,2,1").read()
    np.testing.assert_allclose(rgb * 255, a[[3, 1, 0]], atol=1e-4)


@pytest.mark.parametrize("count", [1, 2, 5])
def test_wrong_band_count(tmp_path: Path, make_raster, count: int) -> None:
    p = make_raster(tmp_path / "b.tif", np.zeros((count, 2, 2), np.uint8))
    plural = "s" if count != 1 else ""
    with pytest.raises(InputError, match=rf"b\.tif: has {count} band{plural}; an RGB image needs 3 bands"):
        open_rgb(p)


def test_band_picking_errors(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "b5.tif", np.zeros((5, 2, 2), np.uint8))
    assert open_rgb(p, bands=[5, 3, 1]).bands == (5, 3, 1)
    with pytest.raises(InputError, match=r"band 6 does not exist; the raster has bands 1\.\.5"):
        open_rgb(p, bands=[6, 3, 1])
    with pytest.raises(InputError, match="2 bands picked"):
        open_rgb(p, bands="1,2")
    with pytest.raises(InputError, match="repeat a band"):
        open_rgb(p, bands="1,1,2")
    with pytest.raises(InputError, match="must be 1-based band numbers"):
        open_rgb(p, bands="r,g,b")


def test_missing_empty_folder_not_raster(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.tif: file not found"):
        open_rgb(tmp_path / "nope.tif")
    with pytest.raises(InputError, match="is a folder, not a raster file"):
        open_rgb(tmp_path)
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.tif: the file is empty"):
        open_rgb(tmp_path / "empty.tif")
    (tmp_path / "notes.tif").write_text("hello, I am not an image\n")
    with pytest.raises(InputError, match=r"notes\.tif: not a raster that GDAL can read"):
        open_rgb(tmp_path / "notes.tif")


def test_truncated(tmp_path: Path, make_raster, rng) -> None:
    # the header survives, the end of the image data is lost: refused at open, not mid-run
    p = make_raster(tmp_path / "t.tif", rng.integers(0, 256, (3, 200, 200), dtype=np.uint8))
    data = p.read_bytes()
    for frac in (0.5, 0.9):
        p.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(InputError, match=r"t\.tif: the raster is truncated or corrupt"):
            open_rgb(p)


def test_rotated_refused(tmp_path: Path, make_raster) -> None:
    rot = Affine(2.0, 0.5, 500000.0, 0.5, -2.0, 4100000.0)
    p = make_raster(tmp_path / "rot.tif", np.zeros((3, 4, 4), np.uint8), transform=rot)
    with pytest.raises(InputError, match=r"rot\.tif: the geotransform is rotated or sheared; warp it"):
        open_rgb(p)


def test_no_crs(tmp_path: Path, make_raster) -> None:
    r = open_rgb(make_raster(tmp_path / "plain.tif", np.ones((3, 4, 4), np.uint8), crs=None))
    assert not r.has_crs and r.crs is None and not r.is_geographic


def test_unsupported_dtype(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "i16.tif", np.ones((3, 2, 2), np.int16))
    with pytest.raises(InputError, match=r"int16 data has no default scale; give one"):
        open_rgb(p)
    assert open_rgb(p, scale=10000).read()[0].max() == pytest.approx(1e-4)


def test_window_must_be_inside(tmp_path: Path, make_raster) -> None:
    r = open_rgb(make_raster(tmp_path / "w.tif", np.ones((3, 4, 4), np.uint8)))
    with pytest.raises(ValueError, match="not inside"):
        r.read(Window(2, 2, 4, 4))


def test_scene_statistics_known_answer(tmp_path: Path, make_raster) -> None:
    # per-pixel max channel uniform over 1..100 (/255): the 99th percentile is known
    v = np.arange(1, 101, dtype=np.uint8).reshape(10, 10)
    a = np.stack([v, v // 2, np.zeros_like(v)])
    r = open_rgb(make_raster(tmp_path / "s.tif", a))
    s = scene_statistics(r)
    assert s.white == pytest.approx(np.percentile(np.arange(1, 101), 99) / 255)
    assert s.valid_fraction == 1.0 and s.decimation == 1 and s.sampled_pixels == 100
    assert s.percentiles[0][2] == pytest.approx(50.5 / 255)
    rgb, _ = r.read()
    n = normalise_rgb(rgb, s)
    assert n.dtype == np.float32 and n.max() == pytest.approx(100 / 99.01, rel=1e-3)
    assert normalise_rgb(np.full((3, 1, 1), 10.0), s).max() == 1.5
    assert normalise_rgb(np.full((3, 1, 1), -1.0), s).min() == 0.0


def test_scene_statistics_decimated(tmp_path: Path, make_raster, rng) -> None:
    a = rng.integers(0, 256, (3, 300, 400), dtype=np.uint8)
    r = open_rgb(make_raster(tmp_path / "big.tif", a))
    s = scene_statistics(r, max_pixels=5000)
    assert s.decimation == 5 and s.sampled_pixels == 60 * 80
    full = np.percentile(a.max(axis=0) / 255.0, 99)
    assert s.white == pytest.approx(full, abs=0.01)


def test_all_nodata_and_black(tmp_path: Path, make_raster) -> None:
    r = open_rgb(make_raster(tmp_path / "nd.tif", np.zeros((3, 4, 4), np.uint8), nodata=0))
    with pytest.raises(InputError, match=r"nd\.tif: the raster contains no valid pixels"):
        scene_statistics(r)
    r = open_rgb(make_raster(tmp_path / "black.tif", np.zeros((3, 4, 4), np.uint8)))
    with pytest.raises(InputError, match="all valid pixels are black"):
        scene_statistics(r)


def test_scale_warnings(tmp_path: Path, make_raster) -> None:
    a = np.full((3, 8, 8), 3000, np.uint16)  # reflectance x 10000 read with the default /65535
    s = scene_statistics(open_rgb(make_raster(tmp_path / "u16.tif", a)))
    assert len(s.warnings) == 1 and "far below 65535" in s.warnings[0] and "--scale 10000" in s.warnings[0]
    assert scene_statistics(open_rgb(tmp_path / "u16.tif", scale=10000)).warnings == []
    f = np.full((3, 8, 8), 180.0, np.float32)  # float DNs, not reflectance
    s = scene_statistics(open_rgb(make_raster(tmp_path / "f.tif", f)))
    assert "well above reflectance 1" in s.warnings[0]


def test_pickle_reopens(tmp_path: Path, make_raster, rng) -> None:
    a = rng.integers(0, 256, (3, 6, 6), dtype=np.uint8)
    r = open_rgb(make_raster(tmp_path / "p.tif", a), bands="3,2,1")
    r2 = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(r2.read()[0], r.read()[0])
    r2.close()
    r.close()


def test_open_hsi_hippo(hippo_hdr: Path) -> None:
    r = open_hsi(hippo_hdr.with_suffix(".dat"))
    assert r.count == 450 and (r.width, r.height) == (23, 38)
    assert r.scale == 65535.0  # ENVI "reflectance scale factor"
    assert r.wavelengths_nm[0] == pytest.approx(378.19) and r.wavelengths_nm[-1] == pytest.approx(2503.73)
    assert r.fwhm_nm is not None and r.fwhm_nm[0] == pytest.approx(3.36)
    cube, valid = r.read(Window(0, 0, 23, 10))
    assert cube.shape == (450, 10, 23) and valid.all()
    assert cube.min() >= 0.0 and cube.max() < 1.0


def test_open_hsi_wavelengths(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "cube.tif", np.ones((4, 3, 3), np.float32))
    with pytest.raises(InputError, match=r"cube\.tif: no band wavelengths found"):
        open_hsi(p)
    wl = tmp_path / "wl.txt"
    wl.write_text("450\n550\n650\n750\n")
    r = open_hsi(p, wavelengths_file=wl)
    np.testing.assert_allclose(r.wavelengths_nm, [450, 550, 650, 750])
    wl.write_text("450\n550\n650\n")
    with pytest.raises(InputError, match="has 4 bands but 3 wavelengths"):
        open_hsi(p, wavelengths_file=wl)
