"""Illumination spectra: the ASTM G173 global shape, varied with SPECTRL2 (pvlib), per band.

``illumination(sensor, sun_zenith_deg, water_vapour_cm, aod500)`` = G173 global tilt
irradiance (1 nm) x [SPECTRL2 global horizontal at the given conditions / SPECTRL2 at the G173
reference conditions], integrated through the sensor's band responses and normalised to mean 1.
The ratio carries what changes with sun and atmosphere (Rayleigh and aerosol slope, water-vapour
and oxygen depth) at SPECTRL2's 122 wavelengths, interpolated linearly; G173 supplies the fine
1-nm structure. The result is smooth (band-integrated) and positive, like HyperLDM's ``t``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.sensor import Sensor

# ASTM G173-03 reference atmosphere (US standard, rural aerosol, AM1.5).
G173_ZENITH_DEG = 48.236
G173_WATER_CM = 1.42
G173_AOD500 = 0.084
G173_OZONE_ATM_CM = 0.34


@lru_cache(maxsize=1)
def g173_global() -> tuple[np.ndarray, np.ndarray]:
    """ASTM G173 global tilt irradiance on 350-1050 nm at 1 nm: (wavelengths nm, W m-2 nm-1)."""
    from pvlib.spectrum import get_reference_spectra

    ref = get_reference_spectra()["global"]
    wl = np.arange(350.0, 1051.0)
    return wl, np.interp(wl, ref.index.to_numpy(dtype=float), ref.to_numpy(dtype=float))


@lru_cache(maxsize=256)
def _spectrl2_global(zenith_deg: float, water_cm: float, aod500: float) -> tuple[np.ndarray, np.ndarray]:
    """SPECTRL2 global horizontal irradiance (wavelengths nm, W m-2 nm-1) for clear sky."""
    import pvlib

    airmass = float(pvlib.atmosphere.get_relative_airmass(zenith_deg))
    out = pvlib.spectrum.spectrl2(apparent_zenith=zenith_deg, aoi=zenith_deg, surface_tilt=0.0,
                                  ground_albedo=0.2, surface_pressure=101325.0,
                                  relative_airmass=airmass, precipitable_water=water_cm,
                                  ozone=G173_OZONE_ATM_CM, aerosol_turbidity_500nm=aod500, dayofyear=172)
    return np.asarray(out["wavelength"], dtype=float), np.asarray(out["poa_global"], dtype=float).reshape(-1)


def irradiance_1nm(sun_zenith_deg: float = G173_ZENITH_DEG, water_vapour_cm: float = G173_WATER_CM,
                   aod500: float = G173_AOD500) -> tuple[np.ndarray, np.ndarray]:
    """G173 global shape varied by the SPECTRL2 ratio, on 350-1050 nm at 1 nm (arbitrary scale)."""
    if not 0.0 <= sun_zenith_deg < 85.0:
        raise InputError(f"sun zenith must be in [0, 85) degrees, not {sun_zenith_deg}")
    if not 0.0 < water_vapour_cm <= 10.0 or not 0.0 < aod500 <= 3.0:
        raise InputError(f"water vapour {water_vapour_cm} cm or AOD500 {aod500} out of range "
                         "(0-10 cm, 0-3)")
    wl, g173 = g173_global()
    sw, s = _spectrl2_global(float(sun_zenith_deg), float(water_vapour_cm), float(aod500))
    _, s0 = _spectrl2_global(G173_ZENITH_DEG, G173_WATER_CM, G173_AOD500)
    ok = s0 > 1e-6 * s0.max()
    ratio = np.interp(wl, sw[ok], s[ok] / s0[ok])
    return wl, g173 * np.clip(ratio, 1e-6, None)


@lru_cache(maxsize=512)
def _illumination_cached(sensor: Sensor, zen: float, water: float, aod: float) -> np.ndarray:
    wl, e = irradiance_1nm(zen, water, aod)
    t = sensor.response_matrix(wl) @ e
    t = (t / t.mean()).astype(np.float32)
    t.setflags(write=False)
    return t


def illumination(sensor: Sensor, sun_zenith_deg: float = G173_ZENITH_DEG,
                 water_vapour_cm: float = G173_WATER_CM, aod500: float = G173_AOD500) -> np.ndarray:
    """Per-band illumination ``(n_bands,)`` float32, positive, mean 1 (cached per sensor/conditions)."""
    return _illumination_cached(sensor, round(float(sun_zenith_deg), 3), round(float(water_vapour_cm), 3),
                                round(float(aod500), 4))
