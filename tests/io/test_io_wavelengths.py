"""Band wavelengths from every place rasters keep them, and from users' text files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.wavelengths import (
    find_wavelengths,
    parse_envi_list,
    read_envi_header,
    read_wavelength_file,
    read_wavelengths,
)
from hyperldm_engine.io.writer import write_raster


def test_hippo_envi_cube(hippo_hdr: Path) -> None:
    for p in (hippo_hdr, hippo_hdr.with_suffix(".dat")):
        c, f = read_wavelengths(p)
        assert len(c) == 450 and len(f) == 450
        assert c[0] == pytest.approx(378.190002) and c[-1] == pytest.approx(2503.72998)
        assert np.all(np.diff(c) > 0)
        assert f[0] == pytest.approx(3.36) and f[-1] == pytest.approx(5.42)
    hdr = read_envi_header(hippo_hdr)
    assert hdr["bands"] == "450" and hdr["wavelength units"] == "Nanometers"


def test_our_writer_round_trip(tmp_path: Path) -> None:
    wl = np.array([401.5, 500.0, 612.25])
    p = write_raster(tmp_path / "c.tif", np.zeros((3, 2, 2), np.float32), wavelengths_nm=wl,
                     fwhm_nm=[5.0, 6.0, 7.0])
    c, f = read_wavelengths(p)
    np.testing.assert_allclose(c, wl)
    np.testing.assert_allclose(f, [5, 6, 7])


def test_descriptions_only(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "d.tif", np.zeros((3, 2, 2), np.float32))
    with rasterio.open(p, "r+") as ds:
        for i, d in enumerate(["b1 450.5 nm", "Band 2 (0.55 um)", "650 Nanometers"], start=1):
            ds.set_band_description(i, d)
    c, f = read_wavelengths(p)
    np.testing.assert_allclose(c, [450.5, 550.0, 650.0])
    assert f is None


def test_imagery_domain_only(tmp_path: Path, make_raster) -> None:
    """GDAL >= 3.10's standard: band-level IMAGERY CENTRAL_WAVELENGTH_UM / FWHM_UM, micrometres."""
    p = make_raster(tmp_path / "i.tif", np.zeros((3, 2, 2), np.float32))
    with rasterio.open(p, "r+") as ds:
        for b, (c, w) in enumerate([(0.4432, 0.027), (0.4925, 0.098), (0.8647, 0.033)], start=1):
            ds.update_tags(b, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=str(c), FWHM_UM=str(w))
    c, f = read_wavelengths(p)
    np.testing.assert_allclose(c, [443.2, 492.5, 864.7])
    np.testing.assert_allclose(f, [27, 98, 33])


def test_engine_output_read_by_every_path(tmp_path: Path) -> None:
    """Each source the writer fills is enough on its own: band tags, IMAGERY, ENVI lists, descriptions."""
    from hyperldm_engine.io.writer import write_raster

    wl, fw = [410.0, 545.7447, 990.0], [12.3404, 12.3404, 12.3404]
    out = write_raster(tmp_path / "w.tif", np.zeros((3, 2, 2), np.float32), wavelengths_nm=wl, fwhm_nm=fw)
    np.testing.assert_allclose(read_wavelengths(out)[0], wl)
    with rasterio.open(out, "r+") as ds:  # strip the per-band default domain: IMAGERY remains
        for b in ds.indexes:
            ds.update_tags(b, wavelength="", fwhm="", wavelength_units="")
    with rasterio.open(out) as ds:
        assert ds.descriptions[1] == "b2 (545.7447 Nanometers)"
    c, f = read_wavelengths(out)
    np.testing.assert_allclose(c, wl, atol=1e-3)  # IMAGERY holds micrometres to 6 decimals
    np.testing.assert_allclose(f, fw, atol=1e-3)


def test_envi_domain_micrometres(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "e.tif", np.zeros((3, 2, 2), np.float32))
    with rasterio.open(p, "r+") as ds:
        ds.update_tags(ns="ENVI", wavelength="{0.45, 0.55, 0.65}", wavelength_units="Micrometers",
                       fwhm="{0.01, 0.01, 0.02}")
    c, f = read_wavelengths(p)
    np.testing.assert_allclose(c, [450, 550, 650])
    np.testing.assert_allclose(f, [10, 10, 20])


def test_unitless_small_values_are_micrometres(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "u.tif", np.zeros((2, 2, 2), np.float32))
    with rasterio.open(p, "r+") as ds:
        ds.update_tags(wavelength="{0.5, 0.6}")
    np.testing.assert_allclose(read_wavelengths(p)[0], [500, 600])


def test_sidecar_header(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "s.tif", np.zeros((2, 2, 2), np.float32))
    hdr = "ENVI\nbands = 2\nwavelength units = nm\nwavelength = {\n 500.0,\n 600.0}\n"
    (tmp_path / "s.hdr").write_text(hdr)
    np.testing.assert_allclose(read_wavelengths(p)[0], [500, 600])


def test_count_mismatch_ignored_and_none(tmp_path: Path, make_raster) -> None:
    p = make_raster(tmp_path / "n.tif", np.zeros((3, 2, 2), np.float32))
    with rasterio.open(p, "r+") as ds:
        ds.update_tags(wavelength="{500, 600}")  # 2 values for 3 bands: not these bands' wavelengths
    assert find_wavelengths(p) is None
    with pytest.raises(InputError, match=r"n\.tif: no band wavelengths found"):
        read_wavelengths(p)
    with pytest.raises(InputError, match="file not found"):
        read_wavelengths(tmp_path / "missing.tif")
    (tmp_path / "bad.hdr").write_text("not envi\n")
    with pytest.raises(InputError, match="not an ENVI header"):
        read_wavelengths(tmp_path / "bad.hdr")


def test_parse_envi_list() -> None:
    np.testing.assert_allclose(parse_envi_list("{400.0, 412.5,\n 425}"), [400, 412.5, 425])


@pytest.mark.parametrize(
    ("text", "centers", "fwhm"),
    [
        ("450\n550\n650\n", [450, 550, 650], None),
        ("wavelength,fwhm\n450,10\n550,12\n650,14\n", [450, 550, 650], [10, 12, 14]),
        ("# my sensor\nwavelength_um\tfwhm_um\n0.45\t0.01\n0.55\t0.01\n", [450, 550], [10, 10]),
        ("450, 550, 650, 750\n", [450, 550, 650, 750], None),
        ("0.45\n0.55\n", [450, 550], None),
        ("Wavelength (nm); FWHM (nm)\n450;10\n550;10\n", [450, 550], [10, 10]),
    ],
)
def test_wavelength_file(tmp_path: Path, text: str, centers, fwhm) -> None:
    p = tmp_path / "wl.csv"
    p.write_text(text)
    c, f = read_wavelength_file(p)
    np.testing.assert_allclose(c, centers)
    if fwhm is None:
        assert f is None
    else:
        np.testing.assert_allclose(f, fwhm)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the wavelengths file is empty"),
        ("450\nabc nm\n", "line 2 of the wavelengths is not numeric"),
        ("550\n450\n", "band centres must increase strictly"),
        ("450,1,2\n550,1,2\n", "expected one column"),
        ("450\n-5\n", "must increase strictly"),
    ],
)
def test_wavelength_file_errors(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "wl.txt"
    p.write_text(text)
    with pytest.raises(InputError, match=message):
        read_wavelength_file(p)
    with pytest.raises(InputError, match="wavelengths file not found"):
        read_wavelength_file(tmp_path / "none.txt")
