"""Outputs every GIS and spectral tool reads right (issue 21): wavelength metadata, ENVI headers,
other sensors' bands and spectral libraries, each written through the CLI and read back with the
reader's own code path (rasterio tags per band and namespace, ``gdalinfo -json``, GDAL's ENVI
driver, Spectral Python, pyogrio / ``ogrinfo``).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest
import rasterio

from hyperldm_engine.io.wavelengths import read_wavelengths
from hyperldm_engine.io.writer import INT_SCALE
from hyperldm_engine.models.bundle import load_bundle
from hyperldm_engine.spectral.output_sensors import get_output_sensor, resampling
from hyperldm_engine.spectral.sensor import default_sensor

from .conftest import FAST_SYNTH, rgb_data, write_raster

FAST = [x for kv in FAST_SYNTH.items() for x in kv]
needs_gdalinfo = pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="GDAL command-line tools not installed")


def synth(cli, tmp_path, tiny_bundle, out_name: str, *extra: str):
    rgb = tmp_path / "rgb.tif"
    if not rgb.exists():
        write_raster(rgb, rgb_data())
    out = tmp_path / out_name
    result = cli(["synthesize", rgb, out, "--model", tiny_bundle, "--seed", "3", *FAST, *extra])
    return out, result


def gdalinfo(path) -> dict:
    return json.loads(subprocess.run(["gdalinfo", "-json", "-mdd", "all", str(path)], capture_output=True,
                                     text=True, check=True).stdout)


@pytest.mark.parametrize("dtype", ["float32", "uint16"])
def test_wavelength_metadata_every_domain(tmp_path, tiny_bundle, cli, dtype):
    out, result = synth(cli, tmp_path, tiny_bundle, f"{dtype}.tif", "--dtype", dtype)
    assert result.code == 0, result.stderr
    wl = default_sensor().centers_nm
    with rasterio.open(out) as ds:
        assert ds.count == 48
        for b in (1, 12, 48):
            t, imagery = ds.tags(b), ds.tags(b, ns="IMAGERY")
            assert float(t["wavelength"]) == pytest.approx(wl[b - 1], abs=1e-4)
            assert t["wavelength_units"] == "Nanometers" and float(t["fwhm"]) > 0
            assert float(imagery["CENTRAL_WAVELENGTH_UM"]) == pytest.approx(wl[b - 1] / 1000, abs=1e-6)
            assert len(imagery["CENTRAL_WAVELENGTH_UM"].split(".")[1]) >= 4
            assert float(imagery["FWHM_UM"]) == pytest.approx(float(t["fwhm"]) / 1000, abs=1e-6)
            assert ds.descriptions[b - 1] == f"b{b} ({t['wavelength']} Nanometers)"
        envi = ds.tags(ns="ENVI")
        assert envi["wavelength_units"] == "Nanometers"
        assert envi["bbl"] == "{" + ", ".join(["1"] * 48) + "}"
        for key in ("wavelength", "fwhm"):
            assert envi[key].startswith("{") and len(envi[key].split(",")) == 48
    centers, fwhm = read_wavelengths(out)
    np.testing.assert_allclose(centers, wl, atol=1e-4)
    assert fwhm is not None
    if shutil.which("gdalinfo"):
        info = gdalinfo(out)
        band = info["bands"][11]
        assert band["metadata"]["IMAGERY"]["CENTRAL_WAVELENGTH_UM"] == f"{wl[11] / 1000:.6f}"
        assert "FWHM_UM" in band["metadata"]["IMAGERY"]
        assert band["metadata"][""]["wavelength_units"] == "Nanometers"
        assert set(info["metadata"]["ENVI"]) >= {"wavelength", "wavelength_units", "fwhm", "bbl"}
        if dtype == "uint16":
            assert all(b["scale"] == pytest.approx(INT_SCALE) for b in info["bands"])


def test_descriptions_are_what_gdals_envi_driver_makes(tmp_path, tiny_bundle, cli):
    """The ENVI header written beside the cube, put over a raw copy of its pixels, opened by GDAL's
    ENVI driver: the descriptions and per-band metadata GDAL derives equal the GeoTIFF's own."""
    out, result = synth(cli, tmp_path, tiny_bundle, "hsi.tif", "--envi-header")
    assert result.code == 0, result.stderr
    hdr = out.with_suffix(".hdr")
    with rasterio.open(out) as ds:
        data, descriptions, tags = ds.read(), ds.descriptions, [ds.tags(b) for b in ds.indexes]
        imagery = [ds.tags(b, ns="IMAGERY") for b in ds.indexes]
    raw = tmp_path / "raw.img"
    data.astype("<f4").tofile(raw)
    (tmp_path / "raw.hdr").write_text(hdr.read_text().replace("file type = TIFF", "file type = ENVI Standard"))
    with rasterio.open(raw) as envi:
        assert envi.driver == "ENVI"
        assert envi.descriptions == descriptions
        for b in (1, 30):  # GDAL 3.10's ENVI driver sets these (and the IMAGERY items, to 3 decimals)
            assert {k: envi.tags(b)[k] for k in ("wavelength", "wavelength_units")} == \
                {k: tags[b - 1][k] for k in ("wavelength", "wavelength_units")}
            for key in ("CENTRAL_WAVELENGTH_UM", "FWHM_UM"):
                assert float(envi.tags(b, ns="IMAGERY")[key]) == pytest.approx(float(imagery[b - 1][key]), abs=5e-4)
        np.testing.assert_array_equal(envi.read(), data)


@pytest.mark.parametrize("layout", ["files", "bands"])
def test_envi_header_opens_in_spectral_python(tmp_path, tiny_bundle, cli, layout):
    envi = pytest.importorskip("spectral.io.envi")
    out, result = synth(cli, tmp_path, tiny_bundle, "hsi.tif", "--envi-header", "--samples", "2",
                        "--sample-layout", layout, "--dtype", "uint16")
    assert result.code == 0, result.stderr
    cubes = [out] if layout == "bands" else [tmp_path / "hsi_s0.tif", tmp_path / "hsi_s1.tif"]
    for cube in cubes:
        img = envi.open(str(cube.with_suffix(".hdr")), str(cube))
        with rasterio.open(cube) as ds:
            assert img.shape == (ds.height, ds.width, ds.count)
        n = 48 * (2 if layout == "bands" else 1)
        assert len(img.bands.centers) == n and img.bands.band_unit == "Nanometers"
        np.testing.assert_allclose(img.bands.centers[:48], default_sensor().centers_nm, atol=1e-4)
        assert len(img.bands.bandwidths) == n
        assert float(img.metadata["reflectance scale factor"]) == pytest.approx(1 / INT_SCALE)
        assert [int(b) for b in img.metadata["default bands"]] == [20, 12, 5]  # 640, 550, 460 nm
        assert img.metadata["bbl"] == ["1"] * n or list(img.metadata["bbl"]) == [1] * n
    assert sorted(p.name for p in tmp_path.glob("*.hdr")) == sorted(c.with_suffix(".hdr").name for c in cubes)


def test_sentinel2_output_bands_names_and_values(tmp_path, tiny_bundle, cli):
    """10 of Sentinel-2's 13 bands (B10-B12 lie beyond the model's 1000 nm), named, with their
    wavelengths; values equal the model-band cube resampled afterwards (resampling per tile is exact)."""
    ref, result = synth(cli, tmp_path, tiny_bundle, "model.tif")
    assert result.code == 0, result.stderr
    out, result = synth(cli, tmp_path, tiny_bundle, "s2.tif", "--output-sensor", "sentinel2-msi")
    assert result.code == 0, result.stderr
    names = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9")
    res = resampling(get_output_sensor("sentinel2-msi"), default_sensor().centers_nm, default_sensor().fwhm_nm)
    with rasterio.open(out) as ds, rasterio.open(ref) as model:
        assert ds.count == 10
        assert [d.split(" (")[0] for d in ds.descriptions] == list(names)
        assert ds.tags()["HYPERLDM_OUTPUT_SENSOR"] == "sentinel2-msi"
        got, cube = ds.read(masked=True), model.read(masked=True)
        expected = np.einsum("ob,bhw->ohw", res.matrix, cube.filled(0).astype(np.float64))
        valid = ~np.ma.getmaskarray(got)
        assert valid.any() and np.array_equal(valid[0], ~np.ma.getmaskarray(cube)[0])
        np.testing.assert_allclose(got.filled(0)[valid], expected[valid], atol=2e-6)
    centers, _ = read_wavelengths(out)
    np.testing.assert_allclose(centers, res.sensor.centers_nm, atol=1e-4)
    assert centers[3] == pytest.approx(664.6, abs=0.2)  # B4's centroid


def test_landsat_and_hyperspectral_sensors_through_the_cli(tmp_path, tiny_bundle, cli):
    for name, count in (("landsat8-oli", 5), ("enmap", None), ("aviris-ng", None)):
        out, result = synth(cli, tmp_path, tiny_bundle, f"{name}.tif", "--output-sensor", name)
        assert result.code == 0, result.stderr
        with rasterio.open(out) as ds:
            wl = read_wavelengths(out)[0]
            assert ds.count == (count or ds.count) and ds.count == len(wl)
            assert wl.min() > 403 and wl.max() < 997  # only the bands inside the model's coverage


def test_user_csv_sensor_band_table_and_responses(tmp_path, tiny_bundle, cli):
    table = tmp_path / "mycam.csv"
    table.write_text("name,wavelength_nm,fwhm\nblue,480,40\ngreen,550,40\nred,660,30\nrededge,720,20\n"
                     "swir,1600,100\n")
    out, result = synth(cli, tmp_path, tiny_bundle, "cam.tif", "--output-sensor", table)
    assert result.code == 0, result.stderr
    with rasterio.open(out) as ds:
        assert ds.count == 4 and ds.descriptions[0] == "blue (480.0 Nanometers)"
    grid = np.arange(500, 601, 5)
    responses = tmp_path / "resp.csv"
    responses.write_text("wavelength,G1,G2\n" + "\n".join(
        f"{w},{np.exp(-0.5 * ((w - 550) / 10) ** 2):.5f},{1.0 if 560 <= w <= 590 else 0.0}" for w in grid) + "\n")
    out, result = synth(cli, tmp_path, tiny_bundle, "resp.tif", "--output-sensor", responses)
    assert result.code == 0, result.stderr
    with rasterio.open(out) as ds:
        assert ds.count == 2 and [d.split(" (")[0] for d in ds.descriptions] == ["G1", "G2"]


@pytest.mark.parametrize(("text", "message"), [
    ("wavelength,fwhm\n500,abc\n", "not numeric"),
    ("a,b\n1,2\n", "wavelength column"),
    ("wavelength,fwhm\n1600,20\n", "none of its 1 bands"),
])
def test_bad_sensor_csv_is_one_line_naming_the_file(tmp_path, tiny_bundle, cli, text, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    out, result = synth(cli, tmp_path, tiny_bundle, "x.tif", "--output-sensor", bad)
    assert result.code == 2
    assert len(result.error_lines) == 1 and message in result.error_lines[0]
    assert "bad" in result.error_lines[0] and not out.exists()


def test_unknown_sensor_name(tmp_path, tiny_bundle, cli):
    _, result = synth(cli, tmp_path, tiny_bundle, "x.tif", "--output-sensor", "spot7")
    assert result.code == 2 and "unknown output sensor 'spot7'" in result.error_lines[0]


@pytest.mark.parametrize("sensor", [None, "sentinel2-msi"])
def test_library_out_geopackage_and_csv(tmp_path, tiny_bundle, cli, sensor):
    pyogrio = pytest.importorskip("pyogrio")
    lib = tmp_path / "lib.gpkg"
    out, result = synth(cli, tmp_path, tiny_bundle, "hsi.tif", "--library-out", lib,
                        *(["--output-sensor", sensor] if sensor else []))
    assert result.code == 0, result.stderr
    bundle = load_bundle(tiny_bundle)
    R = bundle.library.numpy().T.astype(np.float64)  # (n_library, 48)
    wl = read_wavelengths(out)[0]
    if sensor:
        R = R @ resampling(get_output_sensor(sensor), default_sensor().centers_nm,
                           default_sensor().fwhm_nm).matrix.T
    meta, _, _, fields = pyogrio.raw.read(lib)
    assert meta["geometry_type"] is None and len(fields[0]) == R.shape[0]
    columns = dict(zip(meta["fields"], fields, strict=True))
    assert list(columns["name"]) == list(bundle.library_names)
    assert list(columns["class"]) == list(bundle.library_classes)
    for i, text in enumerate(columns["profiles"]):
        profile = json.loads(text)
        assert set(profile) == {"x", "y", "xUnit", "yUnit"}
        assert profile["xUnit"] == "nm" and profile["yUnit"] == "reflectance"
        np.testing.assert_allclose(profile["x"], wl, atol=1e-4)
        np.testing.assert_allclose(profile["y"], R[i], atol=1e-6)
    if shutil.which("ogrinfo"):
        info = subprocess.run(["ogrinfo", "-so", "-al", str(lib)], capture_output=True, text=True).stdout
        assert "profiles: String(JSON)" in info  # GDAL knows the field holds JSON
    with open(lib.with_suffix(".csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["name", "class", "id", "source"]
    np.testing.assert_allclose([float(v) for v in rows[0][4:]], wl, atol=1e-4)
    np.testing.assert_allclose(np.array([[float(v) for v in r[4:]] for r in rows[1:]]), R, atol=1e-6)


def test_library_out_paths_checked_before_any_work(tmp_path, tiny_bundle, cli):
    out, result = synth(cli, tmp_path, tiny_bundle, "hsi.tif", "--library-out", tmp_path / "lib.txt")
    assert result.code == 2 and "must be a GeoPackage" in result.error_lines[0] and not out.exists()
    (tmp_path / "lib.csv").write_text("keep me\n")
    out, result = synth(cli, tmp_path, tiny_bundle, "hsi.tif", "--library-out", tmp_path / "lib.gpkg",
                        "--envi-header")
    assert result.code == 4 and "lib.csv" in result.error_lines[0] and "--overwrite" in result.error_lines[0]
    assert not out.exists() and not (tmp_path / "hsi.hdr").exists() and not (tmp_path / "lib.gpkg").exists()
    assert (tmp_path / "lib.csv").read_text() == "keep me\n"
    out, result = synth(cli, tmp_path, tiny_bundle, "hsi.tif", "--library-out", tmp_path / "lib.gpkg",
                        "--envi-header", "--overwrite")
    assert result.code == 0 and out.exists() and (tmp_path / "hsi.hdr").exists()
    assert (tmp_path / "lib.csv").read_text().startswith("name,class")
    assert not list(tmp_path.glob(".*hyperldm-tmp*"))
