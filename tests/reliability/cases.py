"""How to build the situation of each row of docs/bad-inputs.md, and what to check after a success.

``SETUPS[id](ws, bundle)`` creates the case's files under ``ws`` (``ws/in`` inputs, ``ws/out`` an empty
output folder; a valid ``ws/in/rgb.tif`` and ``ws/in/hsi.tif`` exist beforehand) and returns
placeholder overrides. ``CHECKS[id](ws, outputs)`` makes the extra assertions of a successful row.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from .conftest import rgb_data, write_raster

Setup = Callable[[Path, Path], dict[str, str]]
SETUPS: dict[str, Setup] = {}
CHECKS: dict[str, Callable[[Path, list[Path]], None]] = {}
#: the files (relative to the case folder) a successful row creates, when not just ``out/hsi.tif``
OUTPUTS: dict[str, list[str]] = {}
HSI_BANDS = 8
GRID = from_origin(500000, 6000000, 2, 2)


def setup(case_id: str) -> Callable[[Setup], Setup]:
    def register(fn: Setup) -> Setup:
        SETUPS[case_id] = fn
        return fn
    return register


def check(case_id: str):
    def register(fn):
        CHECKS[case_id] = fn
        return fn
    return register


def nothing(ws: Path, bundle: Path) -> dict[str, str]:
    return {}


def write_hsi(path: Path, data: np.ndarray | None = None, wavelengths: bool = True, **profile) -> Path:
    """An 8-band float32 cube on the default grid, band descriptions ``b1 450.0 nm`` ..."""
    if data is None:
        rng = np.random.default_rng(1)
        data = (0.1 + 0.4 * rng.random((HSI_BANDS, 64, 64))).astype(np.float32)
    write_raster(path, data, **profile)
    if wavelengths:
        with rasterio.open(path, "r+") as ds:
            for b, wl in enumerate(np.linspace(450, 900, data.shape[0]), start=1):
                ds.set_band_description(b, f"b{b} {wl:.1f} nm")
    return path


def copy_bundle(ws: Path, bundle: Path) -> Path:
    dst = ws / "in" / "bundle"
    shutil.copytree(bundle, dst)
    return dst


def edit_config(ws: Path, bundle: Path, edit: Callable[[dict], None]) -> dict[str, str]:
    dst = copy_bundle(ws, bundle)
    cfg = json.loads((dst / "config.json").read_text())
    edit(cfg)
    (dst / "config.json").write_text(json.dumps(cfg))
    return {"bundle": str(dst)}


def zip_bundle(ws: Path, bundle: Path, extra: dict[str, bytes]) -> dict[str, str]:
    dst = ws / "in" / "bundle.zip"
    with zipfile.ZipFile(dst, "w") as zf:
        for name in ("config.json", "weights.safetensors"):
            zf.write(bundle / name, name)
        for name, data in extra.items():
            zf.writestr(name, data)
    return {"bundle": str(dst)}


def safetensors_bytes(header: dict, payload: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


# ---- RGB inputs ---------------------------------------------------------------------------------

SETUPS["rgb-missing"] = nothing


@setup("rgb-not-raster")
def _(ws, bundle):
    (ws / "in" / "rgb.tif").write_text("this is not a GeoTIFF\n" * 20)
    return {}


@setup("rgb-empty")
def _(ws, bundle):
    (ws / "in" / "rgb.tif").write_bytes(b"")
    return {}


@setup("rgb-truncated")
def _(ws, bundle):
    p = ws / "in" / "rgb.tif"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return {}


for _n in (1, 2, 5):
    def _bands(ws, bundle, n=_n):
        write_raster(ws / "in" / "rgb.tif", rgb_data()[np.arange(n) % 3])
        return {}
    SETUPS[f"rgb-{_n}-band{'s' if _n > 1 else ''}"] = _bands


@setup("rgb-4-no-alpha")
def _(ws, bundle):
    # GDAL would call a 4-band uint8 GeoTIFF RGBA by default; a drone's R,G,B,NIR is written like this
    write_raster(ws / "in" / "rgb.tif", np.concatenate([rgb_data(), rgb_data(seed=1)[:1]]),
                 photometric="MINISBLACK")
    return {}


@setup("rgb-4-alpha")
def _(ws, bundle):
    alpha = np.full((1, 64, 64), 255, np.uint8)
    alpha[0, :, :20] = 0
    p = write_raster(ws / "in" / "rgb.tif", np.concatenate([rgb_data(), alpha]), photometric="RGB")
    with rasterio.open(p, "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return {}


@check("rgb-4-alpha")
def _(ws, outputs):
    with rasterio.open(outputs[0]) as ds:
        cube, nodata = ds.read(), ds.nodata
    assert nodata is not None
    assert np.all(cube[:, :, :20] == nodata), "pixels with alpha 0 must be nodata"
    assert np.all(np.isfinite(cube[:, :, 20:])) and np.all(cube[:, :, 20:] != nodata)


@setup("rgb-no-crs")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(), crs=None, transform=Affine(2, 0, 1000, 0, -2, 5000))
    return {}


@check("rgb-no-crs")
def _(ws, outputs):
    with rasterio.open(outputs[0]) as ds:
        assert ds.crs is None
        assert ds.transform == Affine(2, 0, 1000, 0, -2, 5000)
        assert (ds.width, ds.height) == (64, 64)


@setup("rgb-geographic")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(), crs="EPSG:4326", transform=from_origin(15.0, 60.0, 2e-5, 2e-5))
    return {}


@check("rgb-geographic")
def _(ws, outputs):
    with rasterio.open(outputs[0]) as ds:
        assert ds.crs.to_epsg() == 4326 and ds.transform == from_origin(15.0, 60.0, 2e-5, 2e-5)


@setup("rgb-rotated")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(), transform=Affine(2, 0.5, 500000, 0.5, -2, 6000000))
    return {}


@setup("rgb-all-nodata")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", np.zeros((3, 64, 64), np.uint8), nodata=0)
    return {}


@setup("rgb-nan-inf")
def _(ws, bundle):
    data = rgb_data().astype(np.float32) / 255
    data[0, 5, 5] = np.nan
    data[1, 10, 40] = np.inf
    data[2, 50, 7] = -np.inf
    write_raster(ws / "in" / "rgb.tif", data)
    return {}


@check("rgb-nan-inf")
def _(ws, outputs):
    with rasterio.open(outputs[0]) as ds:
        cube, nodata = ds.read(), ds.nodata
    bad = np.zeros((64, 64), bool)
    bad[5, 5] = bad[10, 40] = bad[50, 7] = True
    assert np.all(cube[:, bad] == nodata)
    assert np.all(np.isfinite(cube)) and np.all(cube[:, ~bad] != nodata)


@setup("rgb-uint16-dim")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(dtype=np.uint16, high=3000))
    return {}


@check("rgb-uint16-dim")
def _(ws, outputs):
    with rasterio.open(outputs[0]) as ds:
        assert ds.count == 48 and np.all(np.isfinite(ds.read(1)))


@setup("rgb-float-percent")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data().astype(np.float32) * (100 / 255))
    return {}


@setup("rgb-int16")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(dtype=np.int16, high=3000))
    return {}


SETUPS["rgb-is-folder"] = nothing


@setup("rgb-huge-vrt")
def _(ws, bundle):
    p = ws / "in" / "rgb.vrt"
    bands = "".join(f'<VRTRasterBand dataType="Byte" band="{b}"/>' for b in (1, 2, 3))
    p.write_text(f'<VRTDataset rasterXSize="200000" rasterYSize="200000">'
                 f"<SRS>EPSG:32633</SRS><GeoTransform>500000, 2, 0, 6000000, 0, -2</GeoTransform>"
                 f"{bands}</VRTDataset>")
    return {"rgb": str(p)}


@setup("rgb-huge-sparse")
def _(ws, bundle):
    p = ws / "in" / "rgb.tif"
    with rasterio.open(p, "w", driver="GTiff", width=200000, height=200000, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=GRID, tiled=True, blockxsize=4096, blockysize=4096,
                       sparse_ok=True, bigtiff="YES", compress="deflate"):
        pass  # no block is written: GDAL reads them as zeros
    assert p.stat().st_size < 2_000_000
    return {}


# ---- parameters ---------------------------------------------------------------------------------

for _id in ("bands-two", "bands-absent", "scale-zero", "tile-not-multiple", "overlap-ge-tile", "samples-zero",
            "samples-negative",
            "samples-not-a-number", "sampler-unknown", "steps-zero", "steps-negative", "eta-out-of-range",
            "workers-zero", "device-unknown", "device-cuda-missing", "extent-outside", "batch-size-zero",
            "batch-size-with-workers", "strip-width-zero", "correction-anchored-no-anchor"):
    SETUPS[_id] = nothing

# ---- model bundles ------------------------------------------------------------------------------

SETUPS["bundle-missing"] = nothing


@setup("bundle-weights-truncated")
def _(ws, bundle):
    dst = copy_bundle(ws, bundle)
    w = dst / "weights.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    return {"bundle": str(dst)}


@setup("bundle-weights-crafted")
def _(ws, bundle):
    dst = copy_bundle(ws, bundle)
    header = {"library.R": {"dtype": "F32", "shape": [48, 300], "data_offsets": [0, 1 << 40]}}
    (dst / "weights.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 64))
    return {"bundle": str(dst)}


@setup("bundle-weights-huge-header")
def _(ws, bundle):
    dst = copy_bundle(ws, bundle)
    (dst / "weights.safetensors").write_bytes(struct.pack("<Q", 1 << 62) + b"{}" + b"\0" * 64)
    return {"bundle": str(dst)}


@setup("bundle-config-not-json")
def _(ws, bundle):
    dst = copy_bundle(ws, bundle)
    (dst / "config.json").write_text("{format_version: 1,")
    return {"bundle": str(dst)}


@setup("bundle-config-missing-keys")
def _(ws, bundle):
    return edit_config(ws, bundle, lambda c: (c.pop("schedule"), c.pop("sensor")))


@setup("bundle-config-huge-width")
def _(ws, bundle):
    return edit_config(ws, bundle, lambda c: c["model"]["vqgan"].update(latent_channels=10**9))


@setup("bundle-config-huge-weights")
def _(ws, bundle):
    return edit_config(ws, bundle, lambda c: c["model"]["vqgan"].update(codebook_size=10**6, latent_channels=4096))


@setup("bundle-format-version")
def _(ws, bundle):
    return edit_config(ws, bundle, lambda c: c.update(format_version=99))


@setup("bundle-band-mismatch")
def _(ws, bundle):
    return edit_config(ws, bundle, lambda c: c["sensor"].update(centers_nm=c["sensor"]["centers_nm"][:40]))


@setup("bundle-tensor-shape")
def _(ws, bundle):
    from safetensors.torch import load, save

    dst = copy_bundle(ws, bundle)
    w = dst / "weights.safetensors"
    tensors = load(w.read_bytes())
    tensors["library.R"] = tensors["library.R"][:40].contiguous()
    w.write_bytes(save(tensors))
    return {"bundle": str(dst)}


@setup("bundle-pickle")
def _(ws, bundle):
    import pickle

    dst = copy_bundle(ws, bundle)
    (dst / "model.pt").write_bytes(pickle.dumps({"harmless": 1}))
    return {"bundle": str(dst)}


@setup("bundle-zip-pickle")
def _(ws, bundle):
    import pickle

    return zip_bundle(ws, bundle, {"extra.pkl": pickle.dumps([1, 2, 3])})


@setup("bundle-zip-slip")
def _(ws, bundle):
    return zip_bundle(ws, bundle, {"../../evil.json": b"{}"})


# ---- outputs ------------------------------------------------------------------------------------

@setup("out-exists")
def _(ws, bundle):
    (ws / "out" / "hsi.tif").write_bytes(b"precious earlier result")
    return {}


@setup("out-sample-exists")
def _(ws, bundle):
    (ws / "out" / "hsi_s1.tif").write_bytes(b"precious earlier sample")
    return {}


@setup("out-readonly-dir")
def _(ws, bundle):
    os.chmod(ws / "out", 0o555)
    return {}


SETUPS["out-is-input"] = nothing
SETUPS["out-folder-missing"] = nothing


@setup("out-is-folder")
def _(ws, bundle):
    (ws / "out" / "hsi.tif").mkdir()
    (ws / "out" / "hsi.tif" / "keep.txt").write_text("keep me")
    return {}


# ---- training -----------------------------------------------------------------------------------

@setup("train-rgb-other-grid")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(), transform=GRID * Affine.translation(3, 0))
    return {}


@setup("train-rgb-other-crs")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(), crs="EPSG:32632")
    return {}


@setup("train-labels-other-grid")
def _(ws, bundle):
    labels = (np.arange(64 * 60).reshape(1, 64, 60) % 3).astype(np.uint8)
    p = write_raster(ws / "in" / "labels.tif", labels)
    return {"labels": str(p)}


@setup("train-too-few-valid")
def _(ws, bundle):
    data = np.full((HSI_BANDS, 64, 64), np.nan, np.float32)
    data[:, 2:22, 2:22] = 0.3
    write_hsi(ws / "in" / "hsi.tif", data)
    return {}


@setup("train-no-wavelengths")
def _(ws, bundle):
    write_hsi(ws / "in" / "hsi.tif", wavelengths=False)
    return {}


@setup("train-wavelength-count")
def _(ws, bundle):
    (ws / "in" / "wl.txt").write_text("\n".join(str(w) for w in (450, 500, 550, 600, 650)) + "\n")
    return {}


@setup("train-out-exists")
def _(ws, bundle):
    (ws / "out" / "model").mkdir()
    (ws / "out" / "model" / "config.json").write_text("{}")
    return {}


# ---- issue 25: outputs that could destroy inputs ------------------------------------------------

for _id in ("div-out-holds-input", "eval-out-holds-input", "train-out-holds-input"):
    SETUPS[_id] = nothing


@setup("out-sample-is-input")
def _(ws, bundle):
    shutil.copy(ws / "in" / "rgb.tif", ws / "in" / "x_s0.tif")
    return {}


@setup("abundances-is-output")
def _(ws, bundle):
    return {}


@setup("abundances-is-output-overwrite")
def _(ws, bundle):
    (ws / "out" / "hsi.tif").write_bytes(b"precious earlier result")
    return {}


# ---- issue 25: creation options that could corrupt ---------------------------------------------

for _id in ("co-dtype", "co-nodata", "co-crs", "co-count", "co-width", "co-transform", "cog-jpeg", "co-jpeg"):
    SETUPS[_id] = nothing


# ---- issue 25: band order from the file ---------------------------------------------------------

def bgr_file(path: Path, data: np.ndarray | None = None) -> Path:
    """The RGB test image stored as B, G, R with matching colour interpretation."""
    data = rgb_data() if data is None else data
    write_raster(path, data[::-1].copy(), photometric="MINISBLACK")
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red]
    return path


@setup("rgb-bgr-colorinterp")
def _(ws, bundle):
    bgr_file(ws / "in" / "rgb.tif")
    return {}


@check("rgb-bgr-colorinterp")
def _(ws, outputs):
    with rasterio.open(outputs[0]) as ds:
        assert ds.tags()["HYPERLDM_RGB_BANDS"] == "3,2,1"
        assert "colour interpretation" in ds.tags()["HYPERLDM_RGB_BANDS_FROM"]


# ---- issue 25: empty selections and missing georeferencing -------------------------------------

SETUPS["extent-no-pixel"] = nothing


@setup("aoi-no-pixel")
def _(ws, bundle):
    p = ws / "in" / "aoi.geojson"
    # inside pixel (0, 0) of the 2 m grid but away from its centre (500001, 5999999)
    ring = [[500000.2, 5999999.2], [500000.8, 5999999.2], [500000.8, 5999999.8], [500000.2, 5999999.8],
            [500000.2, 5999999.2]]
    p.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG::32633"}}, "features": [{"type": "Feature", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    return {"aoi": str(p)}


@setup("extent-crs-on-no-crs")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(), crs=None, transform=Affine(2, 0, 0, 0, -2, 128))
    return {}


@setup("aoi-crs-on-no-crs")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(), crs=None, transform=Affine(2, 0, 0, 0, -2, 128))
    p = ws / "in" / "aoi.geojson"
    ring = [[15.0, 60.0], [15.001, 60.0], [15.001, 60.001], [15.0, 60.001], [15.0, 60.0]]
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                                                        "geometry": {"type": "Polygon",
                                                                                     "coordinates": [ring]}}]}))
    return {"aoi": str(p)}


# ---- issue 25: more outputs --------------------------------------------------------------------

for _id in ("out-trailing-slash", "out-ext-nc", "out-ext-img", "out-ext-vrt", "abundances-is-input",
            "bands-not-a-number", "extent-latitude-95", "scale-tiny", "simulate-crs-feet", "simulate-crs-unknown",
            "simulate-crs-geographic"):
    SETUPS[_id] = nothing


@setup("out-device-node")
def _(ws, bundle):
    (ws / "out" / "hsi.tif").symlink_to(os.devnull)  # a character device behind the output's name
    return {}


@setup("out-hardlink-input")
def _(ws, bundle):
    os.link(ws / "in" / "rgb.tif", ws / "out" / "hsi.tif")
    return {}


@setup("out-inside-bundle")
def _(ws, bundle):
    return {"bundle": str(copy_bundle(ws, bundle))}


@setup("div-out-is-file")
def _(ws, bundle):
    (ws / "out" / "report").write_text("a file, not a folder")
    return {}


@setup("div-out-holds-input-hardlink")
def _(ws, bundle):
    (ws / "out" / "div").mkdir()
    os.link(ws / "in" / "rgb.tif", ws / "out" / "div" / "mean.tif")  # a hard link named like an output
    return {}


# ---- issue 25: more inputs ---------------------------------------------------------------------

@setup("rgb-fifo")
def _(ws, bundle):
    p = ws.parent / "rgb_fifo.tif"  # outside the case folder: the snapshot would block reading it
    os.mkfifo(p)
    return {"rgb": str(p)}


@setup("rgb-paletted")
def _(ws, bundle):
    p = write_raster(ws / "in" / "rgb.tif", rgb_data()[:1], photometric="PALETTE")
    with rasterio.open(p, "r+") as ds:
        ds.write_colormap(1, {i: (i, 255 - i, 0, 255) for i in range(256)})
    return {}


@setup("rgb-vrt-missing-source")
def _(ws, bundle):
    p = ws / "in" / "rgb.vrt"
    bands = "".join(f'<VRTRasterBand dataType="Byte" band="{b}"><SimpleSource><SourceFilename relativeToVRT="1">'
                    f"gone.tif</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
                    for b in (1, 2, 3))
    p.write_text(f'<VRTDataset rasterXSize="64" rasterYSize="64"><SRS>EPSG:32633</SRS>'
                 f"<GeoTransform>500000, 2, 0, 6000000, 0, -2</GeoTransform>{bands}</VRTDataset>")
    return {"rgb": str(p)}


@setup("rgb-gdal-name")
def _(ws, bundle):
    return {"rgb": f"/vsizip/{ws}/in/absent.zip/rgb.tif"}


@setup("rgb-no-geotransform")
def _(ws, bundle):
    p = ws / "in" / "rgb.tif"
    with rasterio.open(p, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8") as ds:
        ds.write(rgb_data())
    return {}


@check("rgb-no-geotransform")
def _(ws, outputs):
    with rasterio.open(outputs[0]) as ds:
        assert ds.crs is None and ds.transform == Affine.identity()
    if shutil.which("gdalinfo"):  # GDAL sees no geotransform at all (none was invented)
        import subprocess

        info = json.loads(subprocess.run(["gdalinfo", "-json", str(outputs[0])], capture_output=True,
                                         text=True, check=True).stdout)
        assert "geoTransform" not in info, info.get("geoTransform")


@setup("rgb-rotation-roundoff")
def _(ws, bundle):
    write_raster(ws / "in" / "rgb.tif", rgb_data(), transform=Affine(2, 1e-15, 500000, 1e-15, -2, 6000000))
    return {}


@setup("rgb-local-cs")
def _(ws, bundle):
    from rasterio.crs import CRS

    crs = CRS.from_wkt('LOCAL_CS["local",UNIT["metre",1,AUTHORITY["EPSG","9001"]],'
                       'AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
    write_raster(ws / "in" / "rgb.tif", rgb_data(), crs=crs)
    return {}


@setup("aoi-latitude-95")
def _(ws, bundle):
    p = ws / "in" / "aoi.geojson"
    ring = [[15.0, 89.0], [16.0, 89.0], [16.0, 95.0], [15.0, 95.0], [15.0, 89.0]]
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    return {"aoi": str(p)}


@setup("model-not-a-bundle")
def _(ws, bundle):
    (ws / "in" / "notes.pt").write_bytes(b"an unrelated file")  # as in a system folder
    return {}
