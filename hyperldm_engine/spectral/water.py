"""Semi-analytical shallow-water reflectance (Lee et al. 1998, 1999), for coasts, rivers and lakes.

``water_reflectance(wl, chl, cdom440, spm, depth_m, bottom)`` -> reflectance (pi Rrs, 0-1) above
the surface, the quantity a surface-reflectance product reports for water. Equations:

- Inherent optical properties (IOPs), per metre:
  a = a_w + a_ph + a_g + a_nap;  b_b = b_bw + b_bp.
  * a_w: pure water, Pope and Fry (1997) 400-720 nm, Kou, Labrie and Chylek (1993) 720-1000 nm
    (``PURE_WATER_ABSORPTION``, 10-nm steps, 20-22 C).
  * a_ph = a_ph(440) * shape(l), a_ph(440) = 0.06 Chl^0.65 (Prieur and Sathyendranath 1981, used by
    Lee et al. 1998); the shape is the Gaussian-band decomposition of phytoplankton absorption
    (Hoepffner and Sathyendranath 1991): chlorophyll-a Soret (440 nm) and red (676 nm) peaks,
    chlorophyll b/c and carotenoid bands (``PHYTO_BANDS``), normalised to 1 at 440 nm.
  * a_g (CDOM) = a_g(440) exp(-0.015 (l - 440)) (Bricaud, Morel and Prieur 1981; S = 0.015 nm^-1 as in
    Lee et al. 1999).
  * a_nap (suspended sediment) = SPM 0.041 exp(-0.0123 (l - 443)) (Babin et al. 2003, mineral-
    rich coastal waters; m^2 g^-1 at 443 nm).
  * b_bw = 0.0038 (400 / l)^4.32 (Morel 1974, half the pure-water scattering).
  * b_bp = SPM 0.0086 (555 / l)^0.7 + 0.3 (Chl^0.62) 0.01 (550 / l) (Babin et al. 2003 mineral
    specific backscattering ~0.0086 m^2 g^-1 with a slope 0.7; Morel 1988 b_p(550) = 0.3 Chl^0.62 and a
    backscattering ratio 0.01 for phytoplankton).
- Lee et al. (1999) shallow-water remote-sensing reflectance below the surface:
  u = b_b / (a + b_b),  kappa = a + b_b,
  r_rs^dp = (0.084 + 0.170 u) u  (optically deep),
  D_u^C = 1.03 (1 + 2.4 u)^0.5,  D_u^B = 1.04 (1 + 5.4 u)^0.5,
  r_rs = r_rs^dp [1 - exp(-(1/cos t_w + D_u^C / cos t_v) kappa H)]
         + (rho_b / pi) exp(-(1/cos t_w + D_u^B / cos t_v) kappa H),
  with t_w, t_v the subsurface sun and view angles and rho_b the bottom albedo.
- Above the surface (Lee et al. 1999 eq. 4): R_rs = 0.5 r_rs / (1 - 1.5 r_rs); reflectance =
  pi R_rs + ``surface_reflection`` (Fresnel reflection of sky and sun light at the surface: 0.021 at
  normal incidence for n = 1.34; field and laboratory spectra include ~0.02, satellite surface
  reflectance products 0 to 0.02 depending on glint and their sky-glint correction).

Bottoms are measured spectra (sand, soil, vegetation for seagrass/algae beds) from the shipped
library. The model is anchored on the measured water spectra in the library (USGS splib07 coastal
and open-ocean seawater, montmorillonite-laden turbid water): ``tests/spectral/test_water.py``
checks that a point of the parameter ranges used by the simulator reproduces each of them.
"""

from __future__ import annotations

import numpy as np

# Pure-water absorption (m^-1): Pope and Fry 1997 (Appl. Opt. 36, 8710; 380-727.5 nm) sampled at
# 10 nm up to 720 nm, then Kou, Labrie and Chylek 1993 (Appl. Opt. 32, 3531) at 10-20 nm to 1000 nm.
_AW_NM = np.array([400, 410, 420, 430, 440, 450, 460, 470, 480, 490, 500, 510, 520, 530, 540, 550, 560, 570,
                   580, 590, 600, 610, 620, 630, 640, 650, 660, 670, 680, 690, 700, 710, 720, 730, 740, 750,
                   760, 770, 780, 790, 800, 820, 840, 860, 880, 900, 920, 940, 960, 980, 1000], dtype=float)
_AW = np.array([0.00663, 0.00473, 0.00454, 0.00495, 0.00635, 0.00922, 0.00979, 0.0106, 0.0127, 0.0150,
                0.0204, 0.0325, 0.0409, 0.0434, 0.0474, 0.0565, 0.0619, 0.0695, 0.0896, 0.1351, 0.2224,
                0.2644, 0.2755, 0.2916, 0.3108, 0.340, 0.410, 0.439, 0.465, 0.516, 0.624, 0.827, 1.231,
                1.69, 2.38, 2.62, 2.66, 2.54, 2.36, 2.16, 2.02, 2.38, 3.26, 4.24, 5.15, 6.53, 11.8,
                25.5, 40.8, 42.3, 36.2], dtype=float)
PURE_WATER_ABSORPTION = (_AW_NM, _AW)

# Gaussian bands of phytoplankton absorption, (centre nm, sigma nm, relative height): centres and
# widths after the decomposition of Hoepffner and Sathyendranath (1991, Mar. Ecol. Prog. Ser. 73);
# heights chosen for a mixed population so that a_ph(676) / a_ph(440) = 0.40, the ratio Bricaud et
# al. (1995, J. Geophys. Res. 100) report near Chl = 1 mg m^-3.
PHYTO_BANDS = ((384, 19, 0.40), (413, 13, 0.55), (435, 11, 0.75), (461, 13, 0.55), (490, 17, 0.40),
               (532, 15, 0.18), (583, 12, 0.06), (623, 11, 0.07), (644, 10, 0.09), (676, 9.5, 0.36))
S_CDOM = 0.015  # nm^-1
A_NAP_443 = 0.041  # m^2 g^-1
S_NAP = 0.0123  # nm^-1
BB_SPM_555 = 0.0086  # m^2 g^-1
N_WATER = 1.34
FRESNEL_NORMAL = (N_WATER - 1.0) ** 2 / (N_WATER + 1.0) ** 2  # 0.0211


def pure_water_absorption(wavelengths_nm: np.ndarray) -> np.ndarray:
    """a_w (m^-1), log-linear interpolation of ``PURE_WATER_ABSORPTION``."""
    return np.exp(np.interp(np.asarray(wavelengths_nm, dtype=float), _AW_NM, np.log(_AW)))


def phytoplankton_absorption(wavelengths_nm: np.ndarray, chl_mg_m3: float) -> np.ndarray:
    """a_ph (m^-1) = 0.06 Chl^0.65 x Gaussian-band shape normalised at 440 nm."""
    wl = np.asarray(wavelengths_nm, dtype=float)

    def shape(x: np.ndarray) -> np.ndarray:
        return sum(h * np.exp(-0.5 * ((x - c) / s) ** 2) for c, s, h in PHYTO_BANDS)

    return 0.06 * max(chl_mg_m3, 0.0) ** 0.65 * shape(wl) / shape(np.array(440.0))


def iops(wavelengths_nm: np.ndarray, chl_mg_m3: float = 0.5, cdom440: float = 0.05,
         spm_g_m3: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Total absorption and backscattering (a, b_b) in m^-1 for the given constituents."""
    wl = np.asarray(wavelengths_nm, dtype=float)
    a = (pure_water_absorption(wl) + phytoplankton_absorption(wl, chl_mg_m3)
         + cdom440 * np.exp(-S_CDOM * (wl - 440.0)) + spm_g_m3 * A_NAP_443 * np.exp(-S_NAP * (wl - 443.0)))
    bbw = 0.0038 * (400.0 / wl) ** 4.32
    bbp = spm_g_m3 * BB_SPM_555 * (555.0 / wl) ** 0.7 + 0.01 * 0.3 * max(chl_mg_m3, 0.0) ** 0.62 * (550.0 / wl)
    return a, bbw + bbp


def water_reflectance(wavelengths_nm: np.ndarray, chl_mg_m3: float = 0.5, cdom440: float = 0.05,
                      spm_g_m3: float = 1.0, depth_m: float = np.inf, bottom: np.ndarray | float = 0.0,
                      sun_zenith_deg: float = 30.0, view_zenith_deg: float = 0.0,
                      surface_reflection: float = 0.0) -> np.ndarray:
    """Above-surface water reflectance pi R_rs (0-1) from Lee et al. (1999); ``bottom`` on the same grid."""
    wl = np.asarray(wavelengths_nm, dtype=float)
    a, bb = iops(wl, chl_mg_m3, cdom440, spm_g_m3)
    u = bb / (a + bb)
    kappa = a + bb
    rrs_dp = (0.084 + 0.170 * u) * u
    # Snell: subsurface angles
    mu_w = np.cos(np.arcsin(np.sin(np.radians(sun_zenith_deg)) / N_WATER))
    mu_v = np.cos(np.arcsin(np.sin(np.radians(view_zenith_deg)) / N_WATER))
    if np.isfinite(depth_m):
        du_c = 1.03 * np.sqrt(1.0 + 2.4 * u)
        du_b = 1.04 * np.sqrt(1.0 + 5.4 * u)
        rb = np.broadcast_to(np.asarray(bottom, dtype=float), wl.shape)
        rrs = (rrs_dp * (1.0 - np.exp(-(1.0 / mu_w + du_c / mu_v) * kappa * depth_m))
               + rb / np.pi * np.exp(-(1.0 / mu_w + du_b / mu_v) * kappa * depth_m))
    else:
        rrs = rrs_dp
    Rrs = 0.5 * rrs / (1.0 - 1.5 * rrs)
    return np.pi * Rrs + surface_reflection
