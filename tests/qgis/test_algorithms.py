"""The three algorithms in-process (processing.run) with the real engine, plus cancel and errors."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest
from hyperldm.contract import CONTRACT_VERSION
from qgis_helpers import RecordingFeedback, require_engine_command, write_fake_engine

#: "Band 12: b12 545.7 nm" (description) or "Band 12: b12 (545.7 Nanometers)" (GDAL's wavelength metadata)
WAVELENGTH_NAME = re.compile(r"^Band (\d+): (s(\d+) )?b(\d+) \(?(\d+\.\d+) (nm|Nanometers)\)?$")


def _run(alg_id, params, feedback=None):
    import processing

    return processing.run(alg_id, params, feedback=feedback)


def _layer(path):
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(path), "t", "gdal")
    assert layer.isValid(), path
    return layer


def _grid(layer):
    e = layer.extent()
    return (layer.crs().authid(), layer.width(), layer.height(),
            round(e.xMinimum(), 6), round(e.yMaximum(), 6),
            layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY())


def _valid_count(layer, band=1):
    block = layer.dataProvider().block(band, layer.extent(), layer.width(), layer.height())
    values = [block.value(r, c) for r in range(layer.height()) for c in range(layer.width())
              if not block.isNoData(r, c)]
    return values


def test_synthesize_one_sample_keeps_the_grid_and_names_bands_by_wavelength(qgis_app, scene, bundle, tmp_path):
    require_engine_command("synthesize")
    out = tmp_path / "hsi.tif"
    fb = RecordingFeedback()
    res = _run("hyperldm:synthesize", {"INPUT": str(scene / "rgb.tif"), "MODEL": str(bundle / "config.json"),
                                       "SAMPLES": 1, "SEED": 5, "STEPS": 2, "OUTPUT": str(out)}, fb)
    assert res["OUTPUT"] == str(out) and out.is_file()
    assert fb.progress and fb.progress[-1] == pytest.approx(100.0)
    layer, rgb = _layer(out), _layer(scene / "rgb.tif")
    assert _grid(layer) == _grid(rgb)  # same CRS, size, origin and pixel size as the input
    assert layer.bandCount() == 48
    names = [WAVELENGTH_NAME.match(layer.bandName(b)) for b in range(1, 49)]
    assert all(names), [layer.bandName(b) for b in range(1, 4)]
    wavelengths = [float(m.group(5)) for m in names]
    assert [int(m.group(4)) for m in names] == list(range(1, 49))
    assert 390 < wavelengths[0] < wavelengths[-1] < 1010 and wavelengths == sorted(wavelengths)
    values = _valid_count(layer, 12)
    assert len(values) == layer.width() * layer.height() and all(math.isfinite(v) for v in values)
    from hyperldm.algorithms.base import band_wavelengths, true_colour_bands

    red, green, blue = true_colour_bands(band_wavelengths(layer))
    assert abs(wavelengths[red - 1] - 640) < 15 and abs(wavelengths[blue - 1] - 460) < 15 and blue < green < red
    from hyperldm.algorithms.base import HyperspectralLayerStyler

    HyperspectralLayerStyler("HSI").postProcessLayer(layer, None, None)  # what runs when QGIS loads it
    renderer = layer.renderer()
    assert layer.name() == "HSI" and renderer.type() == "multibandcolor"
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (red, green, blue)
    # opened by hand (a new project, the browser): QGIS applies the .qml written beside the output
    assert out.with_suffix(".qml").is_file()
    hand = _layer(out)
    style = hand.renderer()
    assert style.type() == "multibandcolor"
    assert (style.redBand(), style.greenBand(), style.blueBand()) == (red, green, blue)
    stretch = style.redContrastEnhancement()
    assert 0 <= stretch.minimumValue() < stretch.maximumValue() <= 1.5  # a 2-98 % cut of reflectance
    assert style.minMaxOrigin().limits() == style.minMaxOrigin().Limits.CumulativeCut
    del layer, rgb, renderer, hand, style


def test_synthesize_samples_stack_as_bands_extent_in_another_crs_and_abundances(qgis_app, scene, bundle,
                                                                                   tmp_path):
    require_engine_command("synthesize")
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject, QgsRectangle

    rgb = _layer(scene / "rgb.tif")
    e = rgb.extent()
    inner = QgsRectangle(e.xMinimum() + 16, e.yMinimum() + 32, e.xMinimum() + 48, e.yMinimum() + 96)
    to_wgs84 = QgsCoordinateTransform(rgb.crs(), QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    geo = to_wgs84.transformBoundingBox(inner)
    extent = f"{geo.xMinimum()!r},{geo.xMaximum()!r},{geo.yMinimum()!r},{geo.yMaximum()!r} [EPSG:4326]"
    out, abundances = tmp_path / "hsi2.tif", tmp_path / "abundances.tif"
    fb = RecordingFeedback()
    res = _run("hyperldm:synthesize", {
        "INPUT": str(scene / "rgb.tif"), "MODEL": str(bundle), "SAMPLES": 2, "SEED": 1, "STEPS": 2,
        "EXTENT": extent, "TILE_SIZE": 32, "OVERLAP": 8, "BATCH_SIZE": 2, "DEVICE": 1,
        "CREATION_OPTIONS": "COMPRESS=DEFLATE|PREDICTOR=3", "ABUNDANCE_PRIOR": 1, "ABUNDANCES": str(abundances),
        "OUTPUT": str(out)}, fb)
    assert res == {"OUTPUT": str(out), "ABUNDANCES": str(abundances)}
    assert any("--abundance-prior off" in c for c in fb.commands)  # the advanced parameter reached the engine
    # the extent reached the engine in the input's CRS
    passed = next(i for i in fb.infos if i.startswith("Extent in the input CRS"))
    numbers = [float(v) for v in passed.split(": ")[1].split(" [")[0].split(",")]
    assert "[EPSG:32633]; output clipped to" in passed
    assert numbers[0] <= inner.xMinimum() + 0.5 and numbers[1] >= inner.xMaximum() - 0.5
    assert numbers[0] > e.xMinimum() + 8 and numbers[3] < e.yMaximum() - 8
    layer = _layer(out)
    # clipped to the extent snapped to the input grid (not the whole input, mostly nodata)
    ext, px = layer.extent(), rgb.rasterUnitsPerPixelX()
    assert layer.crs() == rgb.crs() and layer.rasterUnitsPerPixelX() == px
    assert layer.width() < rgb.width() and layer.height() < rgb.height()
    assert ext.xMinimum() <= inner.xMinimum() + px and ext.xMaximum() >= inner.xMaximum() - px
    assert ext.xMinimum() >= inner.xMinimum() - 2 * px and ext.yMaximum() <= inner.yMaximum() + 2 * px
    assert float((ext.xMinimum() - e.xMinimum()) / px).is_integer()  # on the input grid
    assert layer.bandCount() == 96
    assert layer.bandName(1).endswith("s0 b1 410.0 nm") or WAVELENGTH_NAME.match(layer.bandName(1))
    assert WAVELENGTH_NAME.match(layer.bandName(49)).group(4) == "1"  # sample 2 starts again at b1
    valid = len(_valid_count(layer, 1))
    assert valid > 0.8 * layer.width() * layer.height()  # nearly all of the clipped grid is computed
    ab = _layer(abundances)
    assert _grid(ab) == _grid(layer) and ab.bandCount() >= 2
    # the engine wrote that grid itself: the whole-grid run's values in the window (no copy step; batches
    # of two tiles pair up differently in the two runs, so equal up to the rounding of batched convolutions)
    col, row = round((ext.xMinimum() - e.xMinimum()) / px), round((e.yMaximum() - ext.yMaximum()) / px)
    width, height = layer.width(), layer.height()
    full = tmp_path / "full.tif"
    _run("hyperldm:synthesize", {
        "INPUT": str(scene / "rgb.tif"), "MODEL": str(bundle), "SAMPLES": 2, "SEED": 1, "STEPS": 2,
        "TILE_SIZE": 32, "OVERLAP": 8, "BATCH_SIZE": 2, "DEVICE": 1, "OUTPUT": str(full)})
    del layer, rgb, ab
    from osgeo import gdal

    clipped, whole = gdal.Open(str(out)), gdal.Open(str(full))
    import numpy as np

    np.testing.assert_allclose(clipped.ReadAsArray(), whole.ReadAsArray(col, row, width, height), atol=1e-4)
    assert clipped.GetMetadataItem("HYPERLDM_SEED") == "1"  # the engine's own tags
    clipped = whole = None


def test_bad_input_fails_with_the_engine_one_line_message(qgis_app, scene, bundle, tmp_path):
    require_engine_command("synthesize")
    from qgis.core import QgsProcessingException

    out = tmp_path / "never.tif"
    with pytest.raises(QgsProcessingException) as info:  # a valid raster, but one band, not RGB
        _run("hyperldm:synthesize", {"INPUT": str(scene / "labels.tif"), "MODEL": str(bundle),
                                     "STEPS": 1, "OUTPUT": str(out)})
    message = str(info.value)  # said by the plugin at once, without starting the engine
    assert "1 band" in message and "\n" not in message and "Traceback" not in message
    assert not out.exists()
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(QgsProcessingException, match="INPUT"):
        _run("hyperldm:synthesize", {"INPUT": str(text), "OUTPUT": str(out)})
    with pytest.raises(QgsProcessingException, match="Model bundle not found"):
        _run("hyperldm:synthesize", {"INPUT": str(scene / "rgb.tif"), "MODEL": str(tmp_path / "nope"),
                                     "OUTPUT": str(out)})
    with pytest.raises(QgsProcessingException, match="not KEY=VALUE"):
        _run("hyperldm:synthesize", {"INPUT": str(scene / "rgb.tif"), "CREATION_OPTIONS": "ZSTD",
                                     "OUTPUT": str(out)})


def test_diversity_delivers_three_rasters_two_numbers_and_a_report(qgis_app, scene, bundle, tmp_path):
    require_engine_command("diversity")
    outs = {k: tmp_path / f"{k.lower()}.tif" for k in ("MEAN", "SPREAD", "SD_MAP", "SDM_MAP")}
    fb = RecordingFeedback()
    res = _run("hyperldm:diversity", {"INPUT": str(scene / "rgb.tif"), "MODEL": str(bundle), "SAMPLES": 2,
                                      "SEED": 0, "STEPS": 2, "RGB_CORRECTION": 1,
                                      **{k: str(v) for k, v in outs.items()}}, fb)
    rgb = _layer(scene / "rgb.tif")
    for key, path in outs.items():
        assert res[key] == str(path) and path.is_file(), key
        layer = _layer(path)
        assert _grid(layer) == _grid(rgb), key
        del layer
    assert math.isfinite(res["SD"]) and res["SD"] >= 1.0 - 1e-6      # SD = mean of exp(KL) >= 1
    assert math.isfinite(res["SDM"]) and res["SDM"] >= 1.0 - 1e-6    # exp(mean KL) >= 1
    assert res["REPORT"].endswith(".html") and "<html" in Path(res["REPORT"]).read_text().lower()
    # the report lasts: beside the outputs by default, with the figures it links and its JSON
    report_dir = tmp_path / "spread_report"
    assert res["REPORT"] == str(report_dir / "report.html") and res["REPORT_FOLDER"] == str(report_dir)
    assert {"report.json", "report.md", "maps.png"} <= {p.name for p in report_dir.iterdir()}
    assert _layer(outs["SPREAD"]).bandCount() == 2 and _layer(outs["MEAN"]).bandCount() == 48
    assert (tmp_path / "mean.qml").is_file()
    assert any(f"SD = {res['SD']:.4f}" in i for i in fb.infos)
    # the advanced consistency parameters reached the engine, and its report records them
    assert any("--rgb-correction minimum" in c and "--rgb-consistency auto" in c for c in fb.commands)
    recorded = json.loads((report_dir / "report.json").read_text())
    assert recorded["rgb_correction"] in ("minimum", "none")
    del rgb


def test_train_runs_the_engine_and_a_cancel_keeps_checkpoints_for_resume(qgis_app, scene, tmp_path):
    require_engine_command("train")
    out = tmp_path / "my_model"
    fb = RecordingFeedback(cancel_after=1)  # stop at the first progress event
    start = time.monotonic()
    res = _run("hyperldm:train", {"HSI": str(scene / "hsi.tif"), "LABELS": str(scene / "labels.tif"),
                                  "ITERATIONS": 1, "DEVICE": 1, "OUTPUT": str(out)}, fb)
    assert res == {} and fb.isCanceled() and time.monotonic() - start < 120
    assert not out.exists()
    checkpoints = tmp_path / "my_model.checkpoints"
    assert checkpoints.is_dir() and any(checkpoints.iterdir())  # the engine checkpointed on SIGTERM
    assert any("run again to resume" in i for i in fb.infos)
    assert any(i.startswith("Engine: ") and "checkpoint" in i for i in fb.infos)


@pytest.mark.slow
def test_train_to_the_end_writes_a_bundle(qgis_app, scene, tmp_path):
    require_engine_command("train")
    out = tmp_path / "my_model"
    res = _run("hyperldm:train", {"HSI": str(scene / "hsi.tif"), "RGB": str(scene / "rgb.tif"),
                                  "LABELS": str(scene / "labels.tif"), "ITERATIONS": 1, "OUTPUT": str(out)})
    assert res["OUTPUT"] == str(out) and (out / "config.json").is_file()
    assert (out / "weights.safetensors").is_file()


SLOW_ENGINE = """
    import json, os, sys, time
    out = sys.argv[3]                       # synthesize INPUT OUTPUT ...
    open(out, "w").write("partial")         # as a careless engine would
    for i in range(1, 600):
        print(json.dumps({"event": "progress", "fraction": i / 600, "message": f"tile {i}"}), flush=True)
        time.sleep(0.1)
    """


@pytest.mark.timeout(60)
def test_cancel_mid_run_stops_the_engine_and_leaves_no_output(qgis_app, tmp_path, monkeypatch):
    from qgis.core import QgsSettings

    QgsSettings().remove("Processing/Configuration/HYPERLDM_ENGINE_PATH")
    monkeypatch.setenv("HYPERLDM_ENGINE", str(write_fake_engine(tmp_path / "slow-engine", SLOW_ENGINE)))
    rgb = tmp_path / "rgb.tif"
    _gdal_create(rgb)
    out = tmp_path / "hsi.tif"
    fb = RecordingFeedback(cancel_after=3)
    start = time.monotonic()
    res = _run("hyperldm:synthesize", {"INPUT": str(rgb), "OUTPUT": str(out)}, fb)
    elapsed = time.monotonic() - start
    assert res == {} and fb.isCanceled()
    assert elapsed < 10, elapsed  # the full fake run would take a minute
    assert not out.exists()


def test_missing_engine_explains_how_to_fix(qgis_app, tmp_path, monkeypatch):
    from hyperldm import engine
    from qgis.core import QgsProcessingException, QgsSettings

    QgsSettings().remove("Processing/Configuration/HYPERLDM_ENGINE_PATH")
    monkeypatch.delenv("HYPERLDM_ENGINE", raising=False)
    monkeypatch.setattr(engine, "default_candidates", lambda: [])
    monkeypatch.setenv("PATH", str(tmp_path))
    rgb = tmp_path / "rgb.tif"
    _gdal_create(rgb)
    for alg_id, params in (("hyperldm:synthesize", {"INPUT": str(rgb), "OUTPUT": str(tmp_path / "o.tif")}),
                           ("hyperldm:diversity", {"INPUT": str(rgb), "SAMPLES": 2, "SPREAD": "TEMPORARY_OUTPUT",
                                                   "SD_MAP": "TEMPORARY_OUTPUT", "SDM_MAP": "TEMPORARY_OUTPUT"}),
                           ("hyperldm:train", {"HSI": str(rgb), "OUTPUT": str(tmp_path / "m")})):
        with pytest.raises(QgsProcessingException) as info:
            _run(alg_id, params)
        message = str(info.value)
        assert "HyperLDM engine not found" in message and "HYPERLDM_ENGINE_PATH" in message, alg_id
        assert "Set up or update the engine" in message and "~/.local/share/hyperldm/venv" in message
    # the provider setting wins, and a wrong one is reported as such
    QgsSettings().setValue("Processing/Configuration/HYPERLDM_ENGINE_PATH", str(tmp_path / "missing-engine"))
    try:
        with pytest.raises(QgsProcessingException, match="provider setting HYPERLDM_ENGINE_PATH points to"):
            _run("hyperldm:synthesize", {"INPUT": str(rgb), "OUTPUT": str(tmp_path / "o.tif")})
    finally:
        QgsSettings().remove("Processing/Configuration/HYPERLDM_ENGINE_PATH")


def _gdal_create(path):
    import subprocess

    subprocess.run(["/usr/bin/gdal_create", "-q", "-of", "GTiff", "-outsize", "16", "8", "-bands", "3", "-ot", "Byte",
                    "-a_srs", "EPSG:32633", "-a_ullr", "500000", "4100000", "500160", "4099920", "-burn", "7",
                    str(path)], check=True)


COPYING_ENGINE = """
    import json, shutil, sys
    shutil.copyfile({source!r}, sys.argv[3])   # synthesize INPUT OUTPUT ...: "writes" a GeoTIFF
    print(json.dumps({{"event": "done", "contract": {version}, "command": "synthesize",
                      "outputs": {{"hsi": [sys.argv[3]]}}}}), flush=True)
    """


def test_non_geotiff_destination_is_converted_from_the_engine_geotiff(qgis_app, tmp_path, monkeypatch):
    from qgis.core import QgsSettings

    QgsSettings().remove("Processing/Configuration/HYPERLDM_ENGINE_PATH")
    rgb = tmp_path / "rgb.tif"
    _gdal_create(rgb)
    engine_exe = write_fake_engine(tmp_path / "copying-engine",
                                   COPYING_ENGINE.format(source=str(rgb), version=CONTRACT_VERSION))
    monkeypatch.setenv("HYPERLDM_ENGINE", str(engine_exe))
    out = tmp_path / "hsi.img"
    res = _run("hyperldm:synthesize", {"INPUT": str(rgb), "OUTPUT": str(out)})
    assert res["OUTPUT"] == str(out)
    layer, source = _layer(out), _layer(rgb)
    assert layer.dataProvider().name() == "gdal" and _grid(layer) == _grid(source)
    assert layer.bandCount() == 3 and _valid_count(layer, 2)[0] == 7
    assert not list(tmp_path.glob("*.tif.hyperldm-tmp*"))
    del layer, source


FOUR_BAND_ENGINE = """
    import json, sys
    print(json.dumps({{"event": "info", "message": "ARGS " + json.dumps(sys.argv[1:])}}), flush=True)
    print(json.dumps({{"event": "error", "message": "stop here"}}), flush=True)
    sys.exit(2)
    """


def test_four_band_input_picks_rgb_from_band_descriptions_or_fails_at_once(qgis_app, tmp_path, monkeypatch):
    """4 bands (RGB + NIR): the red, green, blue bands come from the descriptions; without them the plugin
    says so in one message before starting the engine; INPUT_BANDS and INPUT_SCALE reach the engine."""
    import subprocess

    from qgis.core import QgsProcessingException, QgsSettings

    QgsSettings().remove("Processing/Configuration/HYPERLDM_ENGINE_PATH")
    engine_exe = write_fake_engine(tmp_path / "args-engine", FOUR_BAND_ENGINE.format())
    monkeypatch.setenv("HYPERLDM_ENGINE", str(engine_exe))
    plain, named = tmp_path / "nir_stack.tif", tmp_path / "named_stack.tif"
    for path in (plain, named):
        subprocess.run(["/usr/bin/gdal_create", "-q", "-of", "GTiff", "-outsize", "16", "8", "-bands", "4", "-ot",
                        "UInt16", "-a_srs", "EPSG:32633", "-a_ullr", "500000", "4100000", "500160", "4099920",
                        "-burn", "700", str(path)], check=True)
    for band, name in enumerate(("Blue", "Green", "Red", "NIR"), start=1):
        from osgeo import gdal

        ds = gdal.Open(str(named), gdal.GA_Update)
        ds.GetRasterBand(band).SetDescription(name)
        ds = None
    fb = RecordingFeedback()
    start = time.monotonic()
    with pytest.raises(QgsProcessingException, match=r"4 bands.*Input bands"):
        _run("hyperldm:synthesize", {"INPUT": str(plain), "OUTPUT": str(tmp_path / "o.tif")}, fb)
    assert not any(i.startswith("ARGS") for i in fb.infos) and time.monotonic() - start < 5  # engine not started
    with pytest.raises(QgsProcessingException, match="between 1 and 4"):
        _run("hyperldm:synthesize", {"INPUT": str(plain), "INPUT_BANDS": "3,2,5", "OUTPUT": str(tmp_path / "o.tif")})
    with pytest.raises(QgsProcessingException, match="stop here"):
        _run("hyperldm:synthesize", {"INPUT": str(named), "INPUT_SCALE": 10000, "OUTPUT": str(tmp_path / "o.tif")}, fb)
    args = [i for i in fb.infos if i.startswith("ARGS ")]
    import json

    argv = json.loads(args[-1][5:])
    assert argv[argv.index("--bands") + 1] == "3,2,1" and float(argv[argv.index("--scale") + 1]) == 10000


def test_train_refuses_a_temporary_output_folder(qgis_app, tmp_path):
    from qgis.core import QgsProcessingException

    rgb = tmp_path / "hsi.tif"
    _gdal_create(rgb)
    with pytest.raises(QgsProcessingException, match="temporary folder is deleted"):
        _run("hyperldm:train", {"HSI": str(rgb), "OUTPUT": "TEMPORARY_OUTPUT"})
