"""Atmosphere and radiometry: known answers and limits."""

import numpy as np
import pytest

from hyperldm_engine.spectral import atmosphere as atm
from hyperldm_engine.spectral.sensor import default_sensor


def test_rayleigh_optical_depth_published_values():
    # Hansen and Travis (1974): 0.0973 at 550 nm at sea level; Bodhaine et al. (1999) tabulate
    # 0.0976 (550 nm) and 0.364 (400 nm), within 1-2 % of the simpler formula
    assert atm.rayleigh_optical_depth(550.0) == pytest.approx(0.0973, abs=2e-4)
    assert atm.rayleigh_optical_depth(400.0) == pytest.approx(0.364, rel=0.02)
    assert atm.rayleigh_optical_depth(550.0, 506.6) == pytest.approx(0.0973 / 2, abs=1e-4)
    wl = np.array([450.0, 900.0])
    r = atm.rayleigh_optical_depth(wl)
    assert 15.0 < r[0] / r[1] < 17.5  # ~lambda^-4 (slightly steeper)


def test_angstrom_law():
    assert atm.aerosol_optical_depth(550.0, 0.2, 1.3) == pytest.approx(0.2)
    assert atm.aerosol_optical_depth(1100.0, 0.2, 1.0) == pytest.approx(0.1)


def test_path_reflectance_zero_without_atmosphere_and_first_order_limit():
    wl = np.arange(400.0, 1001.0, 50.0)
    zero = atm.path_reflectance(wl, 30.0, 10.0, 40.0, tau550=0.0, pressure_hpa=0.0)
    np.testing.assert_array_equal(zero, 0.0)
    # thin atmosphere: the first-order formula of design.md, (tau_R P_R + w tau_a P_a) / (4 mu_s mu_v)
    p = 1.0  # hPa: tau_R ~ 1e-4
    got = atm.path_reflectance(wl, 30.0, 10.0, 40.0, tau550=1e-4, omega=0.9, g=0.7, pressure_hpa=p)
    theta = atm.scattering_angle(30.0, 10.0, 40.0)
    mus, muv = np.cos(np.radians(30.0)), np.cos(np.radians(10.0))
    first = (atm.rayleigh_optical_depth(wl, p) * atm.rayleigh_phase(theta)
             + 0.9 * atm.aerosol_optical_depth(wl, 1e-4) * atm.henyey_greenstein(theta, 0.7)) / (4 * mus * muv)
    np.testing.assert_allclose(got, first, rtol=1e-3)
    att = atm.path_reflectance(wl, 30.0, 10.0, 40.0, tau550=1e-4, omega=0.9, g=0.7, pressure_hpa=p, attenuate=True)
    np.testing.assert_allclose(att, first, rtol=1e-3)  # thin: the attenuation factor is ~1
    # haze makes blue brighter than red, and more aerosol more path radiance
    p1 = atm.path_reflectance(np.array([450.0, 650.0]), 30.0, tau550=0.1)
    p2 = atm.path_reflectance(np.array([450.0, 650.0]), 30.0, tau550=0.4)
    assert p1[0] > p1[1] and (p2 > p1).all()


def test_scattering_angle_geometry():
    assert atm.scattering_angle(30.0, 30.0, 0.0) == pytest.approx(180.0)  # backscatter (hot spot)
    assert atm.scattering_angle(0.0, 0.0, 0.0) == pytest.approx(180.0)
    assert atm.scattering_angle(30.0, 30.0, 180.0) == pytest.approx(120.0)  # forward side: 180 - 2*30


def test_toa_is_path_plus_two_way_transmittance_times_surface():
    s = default_sensor()
    terms = atm.atmosphere_terms(s, 35.0, 5.0, 60.0, tau550=0.2)
    rho = np.random.default_rng(0).uniform(0.0, 0.6, (s.n_bands, 4, 5)).astype(np.float32)
    toa = terms.apply(rho)
    expect = terms.path[:, None, None] + terms.t_down[:, None, None] * terms.t_up[:, None, None] * rho
    np.testing.assert_allclose(toa, expect, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(atm.toa_reflectance(rho, terms.path[:, None, None], terms.t_down[:, None, None],
                                                   terms.t_up[:, None, None]), expect, rtol=1e-6)
    assert ((terms.t_down > 0) & (terms.t_down < 1) & (terms.t_up > 0) & (terms.t_up <= 1)).all()
    # without an atmosphere TOA equals the surface
    none = atm.atmosphere_terms(s, 35.0, tau550=0.0, pressure_hpa=0.0, gases=False)
    np.testing.assert_allclose(none.apply(rho), rho, atol=1e-6)


def test_gas_absorption_bands():
    wl = np.array([550.0, 760.0, 865.0, 940.0])
    t = atm.gas_transmittance(wl, 30.0, water_vapour_cm=2.0)
    assert t[1] < 0.9 * t[2] and t[3] < 0.7 * t[2]  # O2 A band and the water-vapour band


def test_camera_radiometry():
    rgb = np.array([0.1, 0.2, 0.4], np.float32).reshape(3, 1, 1)
    v = atm.camera_rgb(rgb, exposure=2.0, white_balance=(1.0, 1.0, 0.5), gamma=1.0, bits=None)
    np.testing.assert_allclose(v.ravel(), [0.2, 0.4, 0.4], rtol=1e-6)
    q = atm.camera_rgb(rgb, exposure=1.0, gamma=1 / 2.2, bits=8)
    np.testing.assert_allclose(q * 255, np.round(q * 255), atol=1e-4)
    assert atm.camera_rgb(rgb * 10, bits=16).max() == 1.0  # saturates, 0-1
    assert atm.auto_exposure(np.full((3, 8, 8), 0.45)) == pytest.approx(2.0)
    gains = atm.gray_world_balance(rgb)
    assert gains == pytest.approx((2.0, 1.0, 0.5))
