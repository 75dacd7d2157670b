"""Known answers for ``--output-sensor`` resampling (issue 21): constants stay constant, library
spectra agree with an independent resampler (Spectral Python's ``BandResampler``) and with the
sensor's response integrated over the full 1-nm spectrum."""

from __future__ import annotations

import numpy as np
import pytest

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.library import load_spectra
from hyperldm_engine.spectral.output_sensors import (
    MIN_COVERED_FRACTION,
    ResampledTileFn,
    get_output_sensor,
    names,
    read_sensor_csv,
    resampling,
)
from hyperldm_engine.spectral.sensor import default_sensor, resample

MODEL = default_sensor()


@pytest.mark.parametrize("name", names())
def test_constant_spectrum_stays_constant(name):
    res = resampling(get_output_sensor(name), MODEL.centers_nm, MODEL.fwhm_nm)
    assert np.all(res.matrix >= 0)
    for value in (0.0, 0.37, 1.0):
        out = res.apply(np.full((MODEL.n_bands, 2, 3), value, np.float32))
        np.testing.assert_allclose(out, value, atol=1e-6)
    assert res.sensor.n_bands + len(res.dropped) == get_output_sensor(name).n_bands


def test_sentinel2_and_landsat_bands_kept():
    s2 = resampling(get_output_sensor("sentinel-2"), MODEL.centers_nm, MODEL.fwhm_nm)
    assert s2.sensor.band_names == ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9")
    np.testing.assert_allclose(s2.sensor.centers_nm[[1, 2, 3, 7]], [492.5, 559.8, 664.6, 832.8], atol=0.1)
    oli = resampling(get_output_sensor("landsat9"), MODEL.centers_nm, MODEL.fwhm_nm)
    assert oli.sensor.band_names == ("B1", "B2", "B3", "B4", "B5") and not oli.dropped


def test_bands_beyond_the_model_are_left_out():
    res = resampling(get_output_sensor("aviris-ng"), MODEL.centers_nm, MODEL.fwhm_nm)
    lo, hi = MODEL.centers_nm[0] - MODEL.fwhm_nm[0] / 2, MODEL.centers_nm[-1] + MODEL.fwhm_nm[-1] / 2
    kept = res.sensor.centers_nm
    assert kept.min() >= lo and kept.max() <= hi
    # a Gaussian band is kept once MIN_COVERED_FRACTION of it is inside: centre >= 0.7 FWHM inside the edge
    assert MIN_COVERED_FRACTION == 0.95
    assert kept.min() - lo >= 0.7 * 5.5 - 1e-6


def _library():
    lib = load_spectra()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(lib), 40, replace=False)
    return lib.wavelengths_nm.astype(float), lib.spectra[idx].astype(float)


@pytest.mark.parametrize("name", ["sentinel2-msi", "landsat8-oli", "enmap", "prisma", "aviris-ng"])
def test_library_spectra_agree_with_spectral_pythons_band_resampler(name):
    """Both map the 48 model bands to the sensor: ours by linear interpolation and the band response,
    SPy's from the overlap of the model bands' and the sensor's Gaussian band passes (erf)."""
    spectral = pytest.importorskip("spectral")
    wl, spectra = _library()
    model_bands = resample(spectra, wl, MODEL)  # (40, 48): what a cube holds
    res = resampling(get_output_sensor(name), MODEL.centers_nm, MODEL.fwhm_nm)
    ours = model_bands @ res.matrix.T
    spy = spectral.BandResampler(MODEL.centers_nm, res.sensor.centers_nm, MODEL.fwhm_nm, res.sensor.fwhm_nm)
    theirs = np.array([spy(s) for s in model_bands])
    ok = np.isfinite(theirs).all(axis=0)
    assert ok.mean() > 0.9
    diff = np.abs(ours[:, ok] - theirs[:, ok])
    assert np.median(diff) < 1e-3, np.median(diff)
    # measured: 0.003 for the multispectral sensors; up to 0.03 for 5-10 nm bands, where SPy's
    # band-pass overlap is the one further from the truth (next test)
    assert diff.max() < (0.005 if name in ("sentinel2-msi", "landsat8-oli") else 0.035), diff.max()
    if name in ("enmap", "prisma", "aviris-ng"):
        truth = _truth(res.sensor, *_library())
        assert np.abs(ours - truth).max() < np.abs(theirs[:, ok] - truth[:, ok]).max()


def _truth(sensor, wl, spectra):
    curves = sensor.curves(wl)
    return spectra @ (curves / curves.sum(axis=1, keepdims=True)).T


@pytest.mark.parametrize("name", names())
def test_library_spectra_agree_with_the_full_spectrum_integrated(name):
    """The truth: each band's response (measured or Gaussian) integrated over the 1-nm library
    spectrum. The model's 48 bands (12.3 nm apart) lose narrower detail: measured within 0.012."""
    wl, spectra = _library()
    res = resampling(get_output_sensor(name), MODEL.centers_nm, MODEL.fwhm_nm)
    ours = resample(spectra, wl, MODEL) @ res.matrix.T
    diff = np.abs(ours - _truth(res.sensor, wl, spectra))
    assert np.median(diff) < 1e-3 and diff.max() < 0.015, (np.median(diff), diff.max())


def test_tile_function_wrapper_resamples_cubes_only():
    res = resampling(get_output_sensor("s2"), MODEL.centers_nm, MODEL.fwhm_nm)

    class Inner:
        def __call__(self, request):
            return {"s0": np.ones((48, 4, 5), np.float32) * 0.2, "abundances": np.ones((3, 4, 5), np.float32)}

        def batch(self, requests):
            return [self(r) for r in requests]

    fn = ResampledTileFn(Inner(), res.matrix)
    out = fn(None)
    assert out["s0"].shape == (10, 4, 5) and out["abundances"].shape == (3, 4, 5)
    np.testing.assert_allclose(out["s0"], 0.2, atol=1e-6)
    assert len(fn.batch([None, None])) == 2


def test_csv_in_micrometres_and_spy_aviris_table(tmp_path):
    p = tmp_path / "um.csv"
    p.write_text("center_um,fwhm_um\n0.45,0.02\n0.55,0.02\n")
    s = read_sensor_csv(p)
    np.testing.assert_allclose(s.centers_nm, [450, 550])
    np.testing.assert_allclose(s.fwhm_nm, [20, 20])
    aviris = pytest.importorskip("spectral.io.aviris")
    import importlib.util
    from pathlib import Path

    spc = Path(importlib.util.find_spec("spectral").submodule_search_locations[0]) / "tests" / "data" / "92AV3C.spc"
    if not spc.exists():
        pytest.skip("SPy's test data is not installed")
    bands = aviris.read_aviris_bands(str(spc))  # AVIRIS (1992 Indian Pines), 220 bands: a real band table
    table = tmp_path / "aviris.csv"
    table.write_text("wavelength,fwhm\n" + "\n".join(f"{c},{w}" for c, w in zip(bands.centers, bands.bandwidths,
                                                                                  strict=True)) + "\n")
    res = resampling(read_sensor_csv(table), MODEL.centers_nm, MODEL.fwhm_nm)
    assert 50 < res.sensor.n_bands < 70  # its bands between about 405 and 995 nm
    np.testing.assert_allclose(res.apply(np.full((48, 1), 0.5)), 0.5, atol=1e-9)


def test_unknown_name_and_missing_file():
    with pytest.raises(InputError, match="unknown output sensor 'spot7'"):
        get_output_sensor("spot7")
    with pytest.raises(InputError, match="output sensor file not found"):
        get_output_sensor("/nonexistent/cam.csv")
