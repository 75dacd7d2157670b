"""Issue 24's acceptance, end to end as a user without a terminal gets it (slow: pip installs the real
engine, about 1.8 GB with PyTorch).

A fresh QGIS profile in a temporary HOME, the plugin ZIP built with ``--wheel`` extracted into the
profile's plugin folder (what "Install from ZIP" does) and enabled, no ``hyperldm-engine`` on PATH and
no HYPERLDM_ENGINE: ``qgis_process run hyperldm:setup_engine`` creates ``~/.local/share/hyperldm/venv``
and pip-installs the shipped wheel with its pinned dependencies; then ``qgis_process run
hyperldm:synthesize`` on a 4-band (blue, green, red, NIR; uint16) raster with INPUT_BANDS, INPUT_SCALE
and an EXTENT. Checked with GDAL and QGIS: the output covers the extent snapped to the input grid,
its bands carry wavelengths, and the .qml beside it is the true-colour style QGIS applies when the file
is opened by hand.

pip takes what it cannot find on this machine from PyPI (a fresh HOME has no pip cache); extra pip
arguments, e.g. ``--no-index --find-links /wheelhouse`` for an offline install, come from
HYPERLDM_E2E_PIP_ARGS. Run: ``bash scripts/test_qgis.sh -m slow -k end_to_end -s`` (prints timings).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from qgis_helpers import QGIS_PROCESS, ROOT

pytestmark = pytest.mark.slow

#: input grid: 10 m pixels, UTM 33N, 96 x 80 pixels
ORIGIN_X, ORIGIN_Y, PIXEL, WIDTH, HEIGHT = 500000.0, 4100000.0, 10.0, 96, 80
#: the requested extent, not on the grid (xmin, xmax, ymin, ymax)
EXTENT = (ORIGIN_X + 123.4, ORIGIN_X + 517.9, ORIGIN_Y - 611.2, ORIGIN_Y - 208.6)


def _build_wheel(out: Path) -> Path:
    """The engine's wheel, built as the release does (``pip wheel --no-deps .``)."""
    dev = ROOT / ".venv" / "bin" / "python"
    python, extra = (str(dev), ["--no-build-isolation"]) if dev.is_file() else (sys.executable, [])
    proc = subprocess.run([python, "-m", "pip", "wheel", "--no-deps", *extra, "-q", str(ROOT), "-w", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("hyperldm_engine-*.whl")
    return wheel


def _four_band_raster(path: Path) -> None:
    """Blue, green, red, NIR as uint16 reflectance x 10000 (a Sentinel-2 B2/B3/B4/B8 stack), no colour
    interpretation, so the plugin cannot guess the RGB bands and INPUT_BANDS is needed."""
    import numpy as np
    from osgeo import gdal, osr

    rng = np.random.default_rng(24)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] / 16.0
    field = 0.5 + 0.25 * np.sin(xx) * np.cos(yy) + 0.1 * rng.standard_normal((HEIGHT, WIDTH))
    bands = [0.04 + 0.04 * field, 0.06 + 0.06 * field, 0.05 + 0.10 * field, 0.20 + 0.25 * field]
    ds = gdal.GetDriverByName("GTiff").Create(str(path), WIDTH, HEIGHT, 4, gdal.GDT_UInt16)
    ds.SetGeoTransform((ORIGIN_X, PIXEL, 0.0, ORIGIN_Y, 0.0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    for index, (data, name) in enumerate(zip(bands, ("B2", "B3", "B4", "B8"), strict=True), start=1):
        band = ds.GetRasterBand(index)
        band.WriteArray(np.clip(data * 10000, 1, 10000).astype("uint16"))
        band.SetDescription(name)
        band.SetColorInterpretation(gdal.GCI_Undefined)
    ds = None


def _expected_window() -> tuple[int, int, int, int]:
    """(col, row, width, height) of the input pixels whose centres lie in EXTENT, computed here
    independently of the plugin."""
    xmin, xmax, ymin, ymax = EXTENT
    cols = [c for c in range(WIDTH) if xmin <= ORIGIN_X + (c + 0.5) * PIXEL <= xmax]
    rows = [r for r in range(HEIGHT) if ymin <= ORIGIN_Y - (r + 0.5) * PIXEL <= ymax]
    return cols[0], rows[0], len(cols), len(rows)


def _user_environment(home: Path) -> dict:
    """The environment of a user who has never installed the engine: HOME is fresh (QGIS profile and
    pip cache in it), nothing points to an engine, no directory on PATH holds one."""
    drop = {"HYPERLDM_ENGINE", "QGIS_CUSTOM_CONFIG_PATH", "QGIS_PLUGINPATH", "PYTHONPATH", "PYTHONHOME",
            "GDAL_DATA", "PROJ_LIB", "PROJ_DATA", "VIRTUAL_ENV", "PIP_CACHE_DIR", "XDG_CONFIG_HOME",
            "XDG_DATA_HOME", "XDG_CACHE_HOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    path = [d for d in env.get("PATH", "").split(os.pathsep)
            if d and not os.access(os.path.join(d, "hyperldm-engine"), os.X_OK)]
    runtime = home / ".runtime"
    runtime.mkdir(mode=0o700)
    env.update(HOME=str(home), PATH=os.pathsep.join(path), QT_QPA_PLATFORM="offscreen",
               XDG_RUNTIME_DIR=str(runtime))
    return env


def _install_zip(zip_path: Path, home: Path) -> Path:
    """What QGIS's Plugin Manager 'Install from ZIP' does: extract into the profile, enable."""
    profile = home / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(plugins)
    ini = profile / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\nhyperldm=true\n")
    return plugins / "hyperldm"


def _qgis_process(env: dict, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, env=env, timeout=timeout)
    return proc, time.monotonic() - start


def _tail(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout[-4000:] + "\n--- stderr ---\n" + proc.stderr[-4000:]


@pytest.mark.timeout(2400)
def test_zip_setup_then_qgis_process_synthesize_on_a_four_band_raster(qgis_app, tmp_path):
    import numpy
    from osgeo import gdal
    from qgis.core import QgsRasterLayer

    home = tmp_path / "home"
    home.mkdir()
    env = _user_environment(home)
    assert shutil.which("hyperldm-engine", path=env["PATH"]) is None

    wheel = _build_wheel(tmp_path / "dist")
    zip_path = tmp_path / "hyperldm.zip"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_plugin_zip.py"), "--out", str(zip_path),
                    "--wheel", str(wheel)], check=True, capture_output=True, timeout=120)
    installed = _install_zip(zip_path, home)
    assert (installed / "wheels" / wheel.name).is_file()

    rgbn = tmp_path / "s2_b2_b3_b4_b8.tif"
    _four_band_raster(rgbn)
    out = tmp_path / "out" / "hsi.tif"
    out.parent.mkdir()  # the engine refuses a missing output folder
    xmin, xmax, ymin, ymax = EXTENT
    synthesize = ["--json", "run", "hyperldm:synthesize", "--", f"INPUT={rgbn}", "INPUT_BANDS=3,2,1",
                  "INPUT_SCALE=10000", "STEPS=2", "SEED=24", f"EXTENT={xmin},{xmax},{ymin},{ymax} [EPSG:32633]",
                  f"OUTPUT={out}"]

    # before the set-up: the plugin finds no engine and names the algorithm that installs one
    proc, _ = _qgis_process(env, *synthesize, timeout=300)
    assert proc.returncode == 1, _tail(proc)
    assert "HyperLDM engine not found" in proc.stdout + proc.stderr
    assert "Set up or update the engine" in proc.stdout + proc.stderr

    # the set-up: empty SOURCE = the wheel shipped in the ZIP, venv where the plugin looks
    setup = ["--json", "run", "hyperldm:setup_engine", "--"]
    if os.environ.get("HYPERLDM_E2E_PIP_ARGS"):
        setup.append(f"PIP_ARGS={os.environ['HYPERLDM_E2E_PIP_ARGS']}")
    proc, setup_s = _qgis_process(env, *setup, timeout=1800)
    assert proc.returncode == 0, _tail(proc)
    result = json.loads(proc.stdout)
    engine = home / ".local" / "share" / "hyperldm" / "venv" / "bin" / "hyperldm-engine"
    assert result["results"]["ENGINE"] == str(engine) and os.access(engine, os.X_OK)
    assert "version" in result["results"]["VERSION"]
    log = "\n".join(result["log"].get("info", []))
    assert wheel.name in log and "Successfully installed" in log  # pip's own lines reached the log
    pinned = subprocess.run([str(engine.parent / "python"), "-c", "import torch; print(torch.__version__)"],
                            capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert pinned.stdout.startswith("2.13.0"), pinned.stdout + pinned.stderr  # the pin in pyproject.toml

    # the run: the plugin finds the engine it just installed, with nothing configured
    proc, synth_s = _qgis_process(env, *synthesize, timeout=1200)
    assert proc.returncode == 0, _tail(proc)
    assert json.loads(proc.stdout)["results"]["OUTPUT"] == str(out)
    print(f"\nend-to-end timings: setup_engine {setup_s:.1f} s, synthesize {synth_s:.1f} s "
          f"(venv {sum(f.stat().st_size for f in engine.parents[1].rglob('*') if f.is_file()) / 2**30:.2f} GiB)")

    # clipped to the extent snapped to the input grid (read with GDAL)
    col, row, width, height = _expected_window()
    ds = gdal.Open(str(out))
    assert (ds.RasterXSize, ds.RasterYSize) == (width, height)
    gt = ds.GetGeoTransform()
    assert gt == pytest.approx((ORIGIN_X + col * PIXEL, PIXEL, 0.0, ORIGIN_Y - row * PIXEL, 0.0, -PIXEL))
    source = gdal.Open(str(rgbn))
    assert ds.GetSpatialRef().IsSame(source.GetSpatialRef())
    assert ds.RasterCount == 48
    # wavelengths in the metadata, rising from the visible into the NIR
    wavelengths = []
    for index in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(index)
        assert band.GetMetadataItem("wavelength_units") == "Nanometers"
        wavelengths.append(float(band.GetMetadataItem("wavelength")))
    assert 390 < wavelengths[0] < 450 and 950 < wavelengths[-1] < 1010 and wavelengths == sorted(wavelengths)
    listed = [float(w) for w in ds.GetMetadataItem("wavelength").strip("{}").split(",")]  # dataset level too
    assert listed == pytest.approx(wavelengths) and ds.GetMetadataItem("wavelength_units") == "Nanometers"
    envi = [float(w) for w in ds.GetMetadataItem("wavelength", "ENVI").strip("{}").split(",")]
    assert envi == pytest.approx(wavelengths)  # and in the ENVI domain, where ENVI-minded readers look
    data = ds.GetRasterBand(20).ReadAsArray()
    nodata = ds.GetRasterBand(20).GetNoDataValue()
    valid = data[data != nodata] if nodata is not None else data.ravel()
    assert valid.size == width * height and bool(numpy.isfinite(valid).all())  # every pixel computed
    assert float(valid.min()) >= 0.0 and float(valid.max()) <= 1.5  # reflectance
    cube = ds.ReadAsArray()
    ds = source = None
    expected = [min(range(48), key=lambda i: abs(wavelengths[i] - target)) + 1 for target in (640, 550, 460)]

    # the .qml beside it: true colour, 2-98 % cumulative cut
    qml = ET.parse(out.with_suffix(".qml")).getroot()
    renderer = qml.find(".//rasterrenderer")
    assert renderer.get("type") == "multibandcolor"
    assert [int(renderer.get(k)) for k in ("redBand", "greenBand", "blueBand")] == expected
    origin = renderer.find("minMaxOrigin")
    assert origin.findtext("limits") == "CumulativeCut"
    assert float(origin.findtext("cumulativeCutLower")) == pytest.approx(0.02)
    assert float(origin.findtext("cumulativeCutUpper")) == pytest.approx(0.98)

    # opened by hand (a new project, the browser): QGIS applies that style
    layer = QgsRasterLayer(str(out), "by hand", "gdal")
    try:
        assert layer.isValid()
        style = layer.renderer()
        assert style.type() == "multibandcolor"
        assert [style.redBand(), style.greenBand(), style.blueBand()] == expected
        assert style.minMaxOrigin().limits() == style.minMaxOrigin().Limits.CumulativeCut
        stretches = (style.redContrastEnhancement(), style.greenContrastEnhancement(),
                     style.blueContrastEnhancement())
        for band, stretch in zip(expected, stretches, strict=True):
            # the 2nd and 98th percentiles of the band (a cut, not min-max, which renders dark and flat)
            values = cube[band - 1].ravel()
            low, high = numpy.percentile(values, [2, 98])
            tolerance = 0.01 * float(values.max() - values.min())
            assert stretch.minimumValue() == pytest.approx(low, abs=tolerance)
            assert stretch.maximumValue() == pytest.approx(high, abs=tolerance)
            assert stretch.maximumValue() < float(values.max()) - tolerance
    finally:
        del layer
