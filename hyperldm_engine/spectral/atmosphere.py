"""Atmosphere and camera radiometry: surface reflectance -> top-of-atmosphere reflectance -> camera.

Python API (pure functions on arrays; wavelengths in nm, angles in degrees, reflectance 0-1):

- ``rayleigh_optical_depth(wl, pressure_hpa)``: Hansen and Travis (1974, eq. 2.29),
  tau_R = 0.008569 l^-4 (1 + 0.0113 l^-2 + 0.00013 l^-4) (P / 1013.25 hPa), l in micrometres;
  0.0973 at 550 nm at sea level.
- ``aerosol_optical_depth(wl, tau550, angstrom)``: Angstrom (1929) law tau_a = tau550 (l / 550)^-alpha.
- ``scattering_angle(sun_zenith, view_zenith, relative_azimuth)``:
  cos(Theta) = -cos(ts) cos(tv) - sin(ts) sin(tv) cos(phi), phi = sun azimuth - view azimuth
  (phi = 0: the sensor looks from the sun's side, Theta = 180 deg at ts = tv: backscatter).
- ``rayleigh_phase(Theta)`` = 3/4 (1 + cos^2 Theta) (Chandrasekhar 1960, no depolarisation);
  ``henyey_greenstein(Theta, g)`` for aerosol (Henyey and Greenstein 1941; g = 0.65).
- ``path_reflectance(...)``: the single-scattering approximation of atmospheric correction
  (Gordon and Wang 1994; design.md section 7), rho_path = (tau_R P_R + w_a tau_a P_a) / (4 mu_s mu_v),
  zero when tau = 0. The exact single-scattering reflectance of a plane layer,
  [...] (1 - exp(-tau m)) / (tau m) with m = 1/mu_s + 1/mu_v (Liou 2002 sec. 6.3), is this times an
  attenuation factor that multiple scattering largely gives back; leaving both out keeps the
  haze brightening monotonic in tau, as observed (``attenuate=True`` applies the factor).
- ``diffuse_transmittance(...)``: direct + diffuse transmittance along one path,
  T(mu) = exp(-(tau_R / 2 + (1 - w_a F_a) tau_a) / mu) (Gordon, Brown and Jacobs 1983; Wang 1999),
  F_a = (1 + g) / 2 the aerosol forward-scattering fraction; gases multiply by
  ``gas_transmittance`` (SPECTRL2 ozone, water vapour and mixed-gas terms from pvlib, Bird and
  Riordan 1986), so the 760-nm oxygen and 940-nm water-vapour bands appear.
- ``toa_reflectance(rho_s, rho_path, t_down, t_up)`` = rho_path + t_down t_up rho_s (single
  scattering, no surface-atmosphere multiple reflection; adding the spherical-albedo term
  1 / (1 - S rho_s) is a few per cent over bright land and left out, as in the issue).
- ``atmosphere_terms(sensor, ...)`` -> ``AtmosphereTerms`` (per band: path, t_down, t_up), and
  ``camera_rgb(rgb, ...)``: exposure, white balance (von Kries per channel gains), gamma
  (sRGB-like power law) and 8- or 16-bit quantisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.sensor import Sensor

SEA_LEVEL_HPA = 1013.25
#: aerosol defaults: continental (Shettle and Fenn 1979 rural): single-scattering albedo, asymmetry
AEROSOL_OMEGA = 0.93
AEROSOL_G = 0.65  # SPECTRL2's default asymmetry (Bird and Riordan 1986)


def rayleigh_optical_depth(wavelengths_nm: np.ndarray | float, pressure_hpa: float = SEA_LEVEL_HPA) -> np.ndarray:
    """Rayleigh optical depth of the whole atmosphere (Hansen and Travis 1974, eq. 2.29), scaled by pressure."""
    lam = np.asarray(wavelengths_nm, dtype=np.float64) / 1000.0
    return 0.008569 * lam**-4 * (1.0 + 0.0113 * lam**-2 + 0.00013 * lam**-4) * (pressure_hpa / SEA_LEVEL_HPA)


def aerosol_optical_depth(wavelengths_nm: np.ndarray | float, tau550: float, angstrom: float = 1.3) -> np.ndarray:
    """Angstrom's law: tau_a(l) = tau550 (l / 550 nm)^-alpha (alpha ~ 1.3 continental, ~0.5 maritime)."""
    return tau550 * (np.asarray(wavelengths_nm, dtype=np.float64) / 550.0) ** -angstrom


def scattering_angle(sun_zenith_deg: float, view_zenith_deg: float, relative_azimuth_deg: float) -> float:
    """Scattering angle (degrees) between the incident sunlight and the direction to the sensor."""
    ts, tv, phi = np.radians([sun_zenith_deg, view_zenith_deg, relative_azimuth_deg])
    c = -np.cos(ts) * np.cos(tv) - np.sin(ts) * np.sin(tv) * np.cos(phi)
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def rayleigh_phase(theta_deg: float) -> float:
    """Rayleigh phase function 3/4 (1 + cos^2 Theta), normalised to 4 pi over the sphere."""
    c = np.cos(np.radians(theta_deg))
    return float(0.75 * (1.0 + c * c))


def henyey_greenstein(theta_deg: float, g: float = AEROSOL_G) -> float:
    """Henyey-Greenstein phase function (1 - g^2) / (1 + g^2 - 2 g cos Theta)^1.5, normalised like Rayleigh's."""
    c = np.cos(np.radians(theta_deg))
    return float((1.0 - g * g) / (1.0 + g * g - 2.0 * g * c) ** 1.5)


def path_reflectance(wavelengths_nm: np.ndarray, sun_zenith_deg: float, view_zenith_deg: float = 0.0,
                     relative_azimuth_deg: float = 0.0, tau550: float = 0.1, angstrom: float = 1.3,
                     omega: float = AEROSOL_OMEGA, g: float = AEROSOL_G,
                     pressure_hpa: float = SEA_LEVEL_HPA, attenuate: bool = False) -> np.ndarray:
    """Single-scattering path reflectance (Rayleigh + aerosol) at ``wavelengths_nm`` (see module docstring)."""
    mu_s, mu_v = np.cos(np.radians(sun_zenith_deg)), np.cos(np.radians(view_zenith_deg))
    if mu_s <= 0.0 or mu_v <= 0.0:
        raise InputError("sun and view zenith angles must be below 90 degrees")
    theta = scattering_angle(sun_zenith_deg, view_zenith_deg, relative_azimuth_deg)
    tr = rayleigh_optical_depth(wavelengths_nm, pressure_hpa)
    ta = aerosol_optical_depth(wavelengths_nm, tau550, angstrom)
    scat = tr * rayleigh_phase(theta) + omega * ta * henyey_greenstein(theta, g)
    first_order = scat / (4.0 * mu_s * mu_v)
    if not attenuate:
        return first_order
    x = (tr + ta) * (1.0 / mu_s + 1.0 / mu_v)
    # (1 - exp(-x)) / x -> 1 as x -> 0 (expm1 keeps it exact for small x)
    return first_order * np.where(x > 1e-12, -np.expm1(-x) / np.maximum(x, 1e-12), 1.0)


def diffuse_transmittance(wavelengths_nm: np.ndarray, zenith_deg: float, tau550: float = 0.1, angstrom: float = 1.3,
                          omega: float = AEROSOL_OMEGA, g: float = AEROSOL_G,
                          pressure_hpa: float = SEA_LEVEL_HPA) -> np.ndarray:
    """Direct + diffuse transmittance for scattering along one path (Gordon et al. 1983), no gas absorption."""
    mu = np.cos(np.radians(zenith_deg))
    if mu <= 0.0:
        raise InputError("zenith angle must be below 90 degrees")
    tr = rayleigh_optical_depth(wavelengths_nm, pressure_hpa)
    ta = aerosol_optical_depth(wavelengths_nm, tau550, angstrom)
    return np.exp(-(0.5 * tr + (1.0 - omega * 0.5 * (1.0 + g)) * ta) / mu)


@lru_cache(maxsize=256)
def _spectrl2_gas(zenith_deg: float, water_cm: float, ozone_atm_cm: float) -> tuple[np.ndarray, np.ndarray]:
    """SPECTRL2 direct-beam transmittance with Rayleigh and aerosol removed: ozone, water vapour, mixed gases."""
    import pvlib

    airmass = float(pvlib.atmosphere.get_relative_airmass(zenith_deg))
    common = {"apparent_zenith": zenith_deg, "aoi": zenith_deg, "surface_tilt": 0.0, "ground_albedo": 0.0,
              "surface_pressure": 101325.0, "relative_airmass": airmass, "ozone": ozone_atm_cm,
              "aerosol_turbidity_500nm": 1e-6, "dayofyear": 172}
    wet = pvlib.spectrum.spectrl2(precipitable_water=water_cm, **common)
    e0 = np.asarray(wet["dni_extra"], dtype=float).reshape(-1)
    dni = np.asarray(wet["dni"], dtype=float).reshape(-1)
    wl = np.asarray(wet["wavelength"], dtype=float)
    # remove Rayleigh (SPECTRL2's own formula, Bird and Riordan 1986 eq. 2-4) from the direct beam
    lam = wl / 1000.0
    m_p = airmass  # surface pressure = sea level
    t_r = np.exp(-m_p / (lam**4 * (115.6406 - 1.335 / lam**2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        gas = np.where(e0 > 0, dni / np.maximum(e0 * t_r, 1e-30), 1.0)
    return wl, np.clip(gas, 0.0, 1.0)


def gas_transmittance(wavelengths_nm: np.ndarray, zenith_deg: float, water_vapour_cm: float = 1.42,
                      ozone_atm_cm: float = 0.34) -> np.ndarray:
    """Ozone, water-vapour and O2 transmittance along one path from pvlib's SPECTRL2 (interpolated)."""
    wl, gas = _spectrl2_gas(round(float(zenith_deg), 2), round(float(water_vapour_cm), 3), float(ozone_atm_cm))
    return np.interp(np.asarray(wavelengths_nm, dtype=np.float64), wl, gas)


@dataclass(frozen=True)
class AtmosphereTerms:
    """Per-band terms of ``rho_TOA = path + t_down * t_up * rho_surface`` on one sensor."""

    path: np.ndarray
    t_down: np.ndarray
    t_up: np.ndarray
    params: dict

    def apply(self, rho_surface: np.ndarray) -> np.ndarray:
        """``(n_bands, ...)`` surface reflectance -> TOA reflectance (same shape, float32)."""
        shape = (-1,) + (1,) * (np.ndim(rho_surface) - 1)
        t = (self.t_down * self.t_up).reshape(shape).astype(np.float32)
        return (self.path.reshape(shape).astype(np.float32) + t * rho_surface).astype(np.float32)


def toa_reflectance(rho_surface: np.ndarray, rho_path: np.ndarray, t_down: np.ndarray, t_up: np.ndarray) -> np.ndarray:
    """rho_TOA = rho_path + t_down t_up rho_surface (arrays broadcast)."""
    return np.asarray(rho_path) + np.asarray(t_down) * np.asarray(t_up) * np.asarray(rho_surface)


def atmosphere_terms(sensor: Sensor, sun_zenith_deg: float, view_zenith_deg: float = 0.0,
                     relative_azimuth_deg: float = 0.0, tau550: float = 0.1, angstrom: float = 1.3,
                     water_vapour_cm: float = 1.42, ozone_atm_cm: float = 0.34, omega: float = AEROSOL_OMEGA,
                     g: float = AEROSOL_G, pressure_hpa: float = SEA_LEVEL_HPA, gases: bool = True) -> AtmosphereTerms:
    """Path reflectance and transmittances at 1 nm, integrated over ``sensor``'s band responses.

    The path term is averaged with equal weights inside each band, and the transmittances
    too: reflectance is a ratio to the same solar irradiance in numerator and denominator, so the
    solar spectrum cancels to first order inside a narrow band.
    """
    wl = np.arange(350.0, 1051.0)
    kw = {"tau550": tau550, "angstrom": angstrom, "omega": omega, "g": g, "pressure_hpa": pressure_hpa}
    path = path_reflectance(wl, sun_zenith_deg, view_zenith_deg, relative_azimuth_deg, **kw)
    t_down = diffuse_transmittance(wl, sun_zenith_deg, **kw)
    t_up = diffuse_transmittance(wl, view_zenith_deg, **kw)
    if gases:
        t_down = t_down * gas_transmittance(wl, sun_zenith_deg, water_vapour_cm, ozone_atm_cm)
        t_up = t_up * gas_transmittance(wl, view_zenith_deg, water_vapour_cm, ozone_atm_cm)
    m = sensor.response_matrix(wl)
    params = {"sun_zenith_deg": float(sun_zenith_deg), "view_zenith_deg": float(view_zenith_deg),
              "relative_azimuth_deg": float(relative_azimuth_deg), "tau550": float(tau550),
              "angstrom": float(angstrom), "aerosol_omega": float(omega), "aerosol_g": float(g),
              "water_vapour_cm": float(water_vapour_cm), "ozone_atm_cm": float(ozone_atm_cm),
              "pressure_hpa": float(pressure_hpa)}
    return AtmosphereTerms(path=(m @ path).astype(np.float32), t_down=(m @ t_down).astype(np.float32),
                           t_up=(m @ t_up).astype(np.float32), params=params)


# ---- camera radiometry -------------------------------------------------------------------------

def camera_rgb(rgb: np.ndarray, exposure: float = 1.0, white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0),
               gamma: float = 1.0 / 2.2, bits: int | None = 8) -> np.ndarray:
    """Scene RGB (reflectance-like, ``(3, ...)``) -> camera values 0-1.

    ``v = clip(exposure * wb_c * rgb_c, 0, 1) ** gamma`` then rounded to ``bits`` (8 or 16; None: no
    quantisation) and returned as float32 in 0-1 (``round(v * (2^bits - 1)) / (2^bits - 1)``).
    Exposure scales reflectance to the sensor's full well (auto-exposure puts a bright percentile
    near 1); white balance is a per-channel (von Kries) gain; gamma is the usual display encoding.
    """
    if bits not in (None, 8, 16):
        raise InputError(f"bits must be 8, 16 or None, not {bits}")
    wb = np.asarray(white_balance, dtype=np.float32).reshape((3,) + (1,) * (np.ndim(rgb) - 1))
    v = np.clip(np.asarray(rgb, dtype=np.float32) * np.float32(exposure) * wb, 0.0, 1.0) ** np.float32(gamma)
    if bits is not None:
        q = float(2**bits - 1)
        v = np.round(v * q) / q
    return v.astype(np.float32)


def auto_exposure(rgb: np.ndarray, percentile: float = 99.0, target: float = 0.9) -> float:
    """Exposure that puts the ``percentile`` of the brightest channel at ``target`` (camera auto-exposure)."""
    p = float(np.percentile(np.max(np.asarray(rgb), axis=0), percentile))
    return target / max(p, 1e-3)


def gray_world_balance(rgb: np.ndarray) -> tuple[float, float, float]:
    """Gray-world white balance gains (Buchsbaum 1980): each channel's mean scaled to the green mean."""
    m = np.asarray(rgb, dtype=np.float64).reshape(3, -1).mean(axis=1)
    m = np.maximum(m, 1e-6)
    return (float(m[1] / m[0]), 1.0, float(m[1] / m[2]))
