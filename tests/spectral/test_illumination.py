"""Illumination: G173 shape with SPECTRL2 variations."""

import numpy as np
import pytest

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.illumination import (
    G173_AOD500,
    G173_WATER_CM,
    G173_ZENITH_DEG,
    g173_global,
    illumination,
    irradiance_1nm,
)
from hyperldm_engine.spectral.sensor import default_sensor

S = default_sensor()


def test_positive_mean_one_and_smooth():
    t = illumination(S, 30.0, 1.5, 0.1)
    assert t.shape == (48,) and t.dtype == np.float32
    assert (t > 0).all() and t.mean() == pytest.approx(1.0, abs=1e-6)
    # band-to-band changes stay moderate except in the 940 nm water band
    jumps = np.abs(np.diff(t))[S.centers_nm[1:] < 900]
    assert jumps.max() < 0.25


def test_reference_conditions_reproduce_g173():
    _wl, e = irradiance_1nm(G173_ZENITH_DEG, G173_WATER_CM, G173_AOD500)
    _, g = g173_global()
    np.testing.assert_allclose(e, g, rtol=1e-9)


def test_sun_and_atmosphere_change_the_shape():
    blue, nir = S.centers_nm < 460, (S.centers_nm > 850) & (S.centers_nm < 900)
    high_sun = illumination(S, 20.0, 1.4, 0.08)
    low_sun = illumination(S, 70.0, 1.4, 0.08)
    assert low_sun[blue].mean() / low_sun[nir].mean() < high_sun[blue].mean() / high_sun[nir].mean()
    band940 = int(np.argmin(np.abs(S.centers_nm - 940)))
    assert illumination(S, 30.0, 4.0, 0.1)[band940] < illumination(S, 30.0, 0.5, 0.1)[band940]
    with pytest.raises(InputError):
        illumination(S, 95.0, 1.0, 0.1)
