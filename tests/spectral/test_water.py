"""Semi-analytical water model: limits and the anchor on the measured water spectra."""

import itertools

import numpy as np
import pytest

from hyperldm_engine.spectral import water
from hyperldm_engine.spectral.library import load_spectra

WL = np.arange(400.0, 1001.0, 5.0)


def test_pure_water_absorption_known_values():
    assert water.pure_water_absorption(440.0) == pytest.approx(0.00635, rel=1e-3)  # Pope and Fry 1997
    assert water.pure_water_absorption(700.0) == pytest.approx(0.624, rel=1e-3)
    assert 1.5 < water.pure_water_absorption(800.0) < 2.5  # NIR: metres^-1
    assert abs(water.FRESNEL_NORMAL - 0.0211) < 2e-4


def test_deep_clear_water_is_dark_beyond_700_nm():
    r = water.water_reflectance(WL, chl_mg_m3=0.1, cdom440=0.01, spm_g_m3=0.1)
    assert r[WL > 700].max() < 0.002 and r[WL < 500].mean() > 0.01  # blue, black in the NIR
    assert np.all(r >= 0)


def test_turbid_water_is_brighter_in_the_red_than_clear_water():
    clear = water.water_reflectance(WL, 0.2, 0.02, 0.2)
    turbid = water.water_reflectance(WL, 2.0, 0.2, 60.0)
    red = (WL >= 620) & (WL <= 680)
    assert turbid[red].mean() > 5 * clear[red].mean()
    assert turbid[(WL >= 780) & (WL <= 900)].mean() > clear[(WL >= 780) & (WL <= 900)].mean()


def test_chlorophyll_and_cdom_darken_the_blue():
    base = water.water_reflectance(WL, 0.1, 0.01, 0.5)
    blue = WL < 460
    assert water.water_reflectance(WL, 10.0, 0.01, 0.5)[blue].mean() < base[blue].mean()
    assert water.water_reflectance(WL, 0.1, 2.0, 0.5)[blue].mean() < 0.5 * base[blue].mean()


def test_shallow_water_limits():
    sand = np.full(WL.shape, 0.35)
    deep = water.water_reflectance(WL, 0.3, 0.02, 0.5)
    very_shallow = water.water_reflectance(WL, 0.3, 0.02, 0.5, depth_m=0.05, bottom=sand)
    shallow = water.water_reflectance(WL, 0.3, 0.02, 0.5, depth_m=2.0, bottom=sand)
    deepish = water.water_reflectance(WL, 0.3, 0.02, 0.5, depth_m=200.0, bottom=sand)
    green = (WL >= 520) & (WL <= 580)
    assert shallow[green].mean() > 2 * deep[green].mean()  # bright bottom shows through
    np.testing.assert_allclose(deepish, deep, atol=1e-6)  # infinitely deep limit
    assert very_shallow[green].mean() > shallow[green].mean()


def test_model_reproduces_the_measured_seawater_spectra():
    """The anchor: a point of the simulator's ranges matches each measured seawater (RMSE < 0.005)."""
    lib = load_spectra()
    w = lib.of_class("water")
    grid = list(itertools.product([0.03, 0.1, 0.3, 1, 3, 10], [0.0, 0.02, 0.1, 0.3], [0.0, 0.3, 1.0, 3.0, 10.0]))
    for name, measured in zip(w.names, w.spectra, strict=True):
        if "Seawater" not in str(name):
            continue
        # laboratory / field spectra include the surface (Fresnel) reflection, ~0.02
        best = min(np.sqrt(np.mean((water.water_reflectance(lib.wavelengths_nm, c, g, s, surface_reflection=0.0196)
                                    - measured) ** 2)) for c, g, s in grid)
        assert best < 0.005, (name, best)
