"""Sensor responses and resampling: known answers and an independent implementation (SPy)."""

import os

import numpy as np
import pytest

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.sensor import Sensor, default_sensor, resample

WL = np.arange(400.0, 1001.0, 5.0)


def test_default_sensor_bands():
    s = default_sensor()
    assert s.n_bands == 48
    assert s.centers_nm[0] == pytest.approx(410.0) and s.centers_nm[-1] == pytest.approx(990.0)
    np.testing.assert_allclose(np.diff(s.centers_nm), 580 / 47)
    m = s.response_matrix(WL)
    assert m.shape == (48, WL.size)
    np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-12)
    assert (m >= 0).all()


def test_constant_stays_constant():
    out = resample(np.full((2, WL.size), 0.37), WL, default_sensor())
    np.testing.assert_allclose(out, 0.37, atol=1e-12)


def test_linear_spectrum_gives_value_at_centre():
    s = Sensor(np.array([500.0, 620.0, 800.0]), np.array([10.0, 20.0, 15.0]), "t")
    wl = np.arange(350.0, 1051.0, 1.0)
    out = resample(0.1 + 0.0005 * (wl - 400.0), wl, s)
    np.testing.assert_allclose(out, 0.1 + 0.0005 * (s.centers_nm - 400.0), atol=1e-9)


def test_narrow_band_picks_the_sample():
    s = Sensor(np.array([600.0]), np.array([0.01]), "delta")
    x = np.sin(WL / 37.0)
    assert resample(x, WL, s)[0] == pytest.approx(x[WL == 600.0][0], abs=1e-9)


def test_agrees_with_spy_band_resampler():
    spectral = pytest.importorskip("spectral")
    from scipy.ndimage import gaussian_filter1d

    s = default_sensor()
    x = gaussian_filter1d(np.random.default_rng(0).random((4, WL.size)), 3, axis=1)
    spy = np.stack([spectral.BandResampler(WL, s.centers_nm, None, s.fwhm_nm)(v) for v in x])
    # SPy integrates the Gaussian over each source sample's bin; we sample it: within 0.01 reflectance
    np.testing.assert_allclose(resample(x, WL, s), spy, atol=0.01)


def test_aviris_sensor_from_spy_round_trips():
    spectral = pytest.importorskip("spectral")
    from spectral.io import aviris

    path = os.path.join(os.path.dirname(spectral.__file__), "tests", "data", "92AV3C.spc")
    if not os.path.exists(path):
        pytest.skip("SPy test data not installed")
    bands = aviris.read_aviris_bands(path)
    s = Sensor(np.asarray(bands.centers), np.asarray(bands.bandwidths), "AVIRIS 92AV3C")
    assert s.n_bands == 220
    back = Sensor.from_dict(s.to_dict())
    assert back == s and hash(back) == hash(s)
    wl = np.arange(350.0, 2600.0, 1.0)
    out = resample(np.full(wl.size, 0.25), wl, s)
    np.testing.assert_allclose(out, 0.25, atol=1e-9)
    # a band outside the data is an error, not a silent zero
    with pytest.raises(InputError):
        s.response_matrix(WL)


def test_bad_inputs():
    with pytest.raises(InputError):
        Sensor(np.array([500.0]), np.array([0.0]))
    with pytest.raises(InputError):
        resample(np.zeros((2, 5)), WL, default_sensor())
