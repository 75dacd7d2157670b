"""Input sensors: constant spectra integrate to the constant, band centres, auto resolution."""

import numpy as np
import pytest

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral import input_sensors as ins
from hyperldm_engine.spectral.sensor import Sensor, default_sensor


@pytest.mark.parametrize("name", ins.names())
@pytest.mark.parametrize("sensor", [default_sensor(), Sensor(np.arange(400.0, 1001.0, 5.0), 5.0, "fine-5nm")],
                         ids=["default48", "fine5nm"])
def test_constant_spectrum_integrates_to_the_constant(name, sensor):
    if name == "paper-bands" and sensor.n_bands < 23:
        pytest.skip("band selection needs 23 bands")
    r = ins.rgb_response(name, sensor)
    assert r.shape == (3, sensor.n_bands) and r.dtype == np.float32 and (r >= 0).all()
    np.testing.assert_allclose(r @ np.full(sensor.n_bands, 0.37), 0.37, rtol=1e-5)


@pytest.mark.parametrize(("name", "centres"), [
    ("sentinel2-msi", (664.6, 559.8, 492.4, 832.8)),  # ESA S2A MSI central wavelengths
    ("landsat8-oli", (654.6, 561.4, 482.0, 864.7)),   # USGS OLI
    ("landsat7-etm", (662.0, 560.0, 483.0, 835.0)),   # design.md section 7 (handbook)
])
def test_satellite_band_centres(name, centres):
    s = Sensor(np.arange(400.0, 1001.0, 2.0), 2.0, "fine")
    for band, c in zip(("red", "green", "blue", "nir"), centres, strict=True):
        w = ins.band_response(name, band, s)
        assert abs(float(w @ s.centers_nm) - c) < 2.0, (band, float(w @ s.centers_nm))
        np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-5)


def test_cameras_have_no_nir_and_paper_bands_select():
    s = default_sensor()
    nir = s.centers_nm > 800
    for name in ("generic-camera", "nikon-5100", "sigma-sdmerill"):
        assert ins.rgb_response(name, s)[:, nir].sum() < 1e-3
        with pytest.raises(InputError, match="no 'nir' band"):
            ins.band_response(name, "nir", s)
    r = ins.rgb_response("paper-bands", s)
    assert [int(np.argmax(row)) + 1 for row in r] == [23, 12, 5]


def test_auto_resolution_from_tags():
    assert ins.auto_input_sensor({"SPACECRAFT_ID": "LANDSAT_8"}) == "landsat8-oli"
    assert ins.auto_input_sensor({"PRODUCT_ID": "LC09_L1TP_044034_20220101"}) == "landsat8-oli"
    assert ins.auto_input_sensor({"PRODUCT_URI": "S2A_MSIL2A_20200101T000000"}) == "sentinel2-msi"
    assert ins.auto_input_sensor({"DATATAKE_1_SPACECRAFT_NAME": "Sentinel-2B"}) == "sentinel2b-msi"
    assert ins.auto_input_sensor({"LANDSAT_PRODUCT_ID": "LE07_L1TP"}) == "landsat7-etm"
    assert ins.auto_input_sensor({"TIFFTAG_SOFTWARE": "Agisoft Metashape"}) == ins.GENERIC_CAMERA
    assert ins.auto_input_sensor(None) == ins.GENERIC_CAMERA
    assert ins.auto_input_sensor({"input_sensor": "landsat7-etm", "x": "Sentinel-2"}) == "landsat7-etm"
    assert ins.resolve_input_sensor("auto", {"a": "Landsat 8"}).name == "landsat8-oli"
    assert ins.resolve_input_sensor("L8").name == "landsat8-oli"
    with pytest.raises(InputError, match="unknown input sensor"):
        ins.resolve_input_sensor("hubble")
    r = ins.resolve_input_sensor(None, {}).rgb(default_sensor())
    assert r.shape == (3, 48)


def test_qgis_plugin_lists_the_same_sensors():
    """The plugin cannot import the engine; its copy of the registry names must match."""
    import ast
    from pathlib import Path

    base = Path(__file__).resolve().parents[2] / "qgis_plugin" / "hyperldm" / "algorithms" / "base.py"
    tree = ast.parse(base.read_text())
    value = next(ast.literal_eval(n.value) for n in tree.body
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "INPUT_SENSORS")
    assert value == [ins.AUTO, *ins.names()]
