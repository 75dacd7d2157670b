"""Physically modelled surfaces that real scenes are full of and the measured library lacks.

Every spectrum here is computed from a documented model fed with measured spectra or published
constants, never drawn by hand; all are on the library grid (400-1000 nm, 5 nm) and carry a
metadata row (id ``model:<kind>:<n>``, class, source, parameters).

- Water (``water_endmembers``): the Lee et al. (1999) shallow-water model of ``spectral.water``
  for a water type drawn per scene (``WATER_TYPES``: clear ocean, coastal, turbid river/estuary,
  eutrophic lake, CDOM-rich/dark lake): a deep member, a turbid shore member (more sediment)
  and a shallow member over a measured bottom (library sand, soil or green vegetation as a
  seagrass/algae proxy) at 0.5-4 m, plus Fresnel surface reflection 0-0.021.
- Clouds (``cloud_reflectance``): an optically thick water cloud, conservative two-stream
  reflectance R = (1 - g) tau / (2 + (1 - g) tau) (Bohren 1987, Am. J. Phys. 55, 524; g = 0.85 for
  droplets), times the asymptotic absorption factor exp(-4 sqrt((1 - w) / (3 (1 - g)))) (van de Hulst
  1980) with droplet co-albedo 1 - w = 1.7 a_w(l) r_e (weak-absorption limit for large spheres,
  Bohren and Huffman 1983 sec. 7.2; r_e = 10 micrometres, a_w pure-water absorption): flat and
  bright in the visible, a few per cent darker towards 1000 nm. Thin cloud and haze enter as
  partial (sub-pixel) cover of this cloud over the ground, a first-order form of the adding
  equation R_c + T_c^2 rho / (1 - R_c rho) for small R_c; shadows as diffuse-only illumination.
- Wet soil (``wet_soil``): Twomey, Bohren and Mergenthaler (1986, Appl. Opt. 25, 431):
  R_wet = R_dry / (n^2 - (n^2 - 1) R_dry), n = 1.33, applied to measured soil spectra, times the
  transmission of a water film exp(-2 a_w d) (d = 0.2 mm), mixed with the dry spectrum by wetness.
- Phenology: crops and forests at several stages are linear mixtures of measured / PROSAIL
  (earthlib) canopies with measured soil and non-photosynthetic vegetation (litter, stubble):
  emergence (cover 0.05-0.3), growth (0.3-0.7), peak (0.8-1), senescence (canopy + npv),
  harvest (npv stubble over soil). The fractions are the landscape's (``landcover``), the spectra
  the library's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperldm_engine.spectral.water import pure_water_absorption, water_reflectance


@dataclass(frozen=True)
class WaterType:
    """Ranges (lo, hi) of the constituents of one water type; drawn log-uniformly."""

    name: str
    chl: tuple[float, float]  # mg m^-3
    cdom440: tuple[float, float]  # m^-1
    spm: tuple[float, float]  # g m^-3


WATER_TYPES = (
    WaterType("clear", (0.03, 0.5), (0.002, 0.03), (0.01, 0.5)),
    WaterType("coastal", (0.5, 5.0), (0.03, 0.3), (0.5, 10.0)),
    WaterType("turbid", (1.0, 10.0), (0.1, 1.0), (10.0, 300.0)),
    WaterType("eutrophic", (10.0, 100.0), (0.2, 1.5), (2.0, 30.0)),
    WaterType("dark-cdom", (0.5, 10.0), (1.0, 8.0), (0.5, 10.0)),
)
CLOUD_G = 0.85
CLOUD_RE_M = 10e-6
WATER_N = 1.33


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def water_endmembers(rng: np.random.Generator, wl: np.ndarray, bottoms: np.ndarray, bottom_meta: list[dict],
                     sun_zenith_deg: float, water_type: str | None = None) -> tuple[np.ndarray, list[dict]]:
    """Deep, turbid-shore and shallow water spectra ``(3, n_wl)`` for one scene, with metadata."""
    wt = next((w for w in WATER_TYPES if w.name == water_type), None) or WATER_TYPES[rng.integers(len(WATER_TYPES))]
    chl, cdom, spm = (_log_uniform(rng, *wt.chl), _log_uniform(rng, *wt.cdom440), _log_uniform(rng, *wt.spm))
    glint = float(rng.uniform(0.0, 0.021))
    turbid_spm = spm * float(rng.uniform(3.0, 20.0))
    depth = float(rng.uniform(0.5, 4.0))
    b = int(rng.integers(len(bottoms)))
    out, meta = [], []
    for kind, s, h, bottom in (("deep", spm, np.inf, 0.0), ("shore", turbid_spm, np.inf, 0.0),
                               ("shallow", spm, depth, bottoms[b])):
        r = water_reflectance(wl, chl, cdom, s, h, bottom, sun_zenith_deg, 0.0, glint)
        out.append(r)
        p = {"water_type": wt.name, "chl_mg_m3": round(chl, 4), "cdom440_per_m": round(cdom, 4),
             "spm_g_m3": round(s, 3), "depth_m": None if not np.isfinite(h) else round(h, 2),
             "surface_reflection": round(glint, 4)}
        if kind == "shallow":
            p["bottom"] = bottom_meta[b]["id"]
        meta.append({"id": f"model:water:{kind}", "name": f"{wt.name} water ({kind})", "class": "water",
                     "source": "Lee et al. 1999 semi-analytical model (hyperldm_engine.spectral.water)",
                     "split": "model", "params": p})
    return np.clip(np.array(out), 0.0, 1.0), meta


def cloud_reflectance(wl: np.ndarray, tau: float = 30.0, g: float = CLOUD_G, r_e_m: float = CLOUD_RE_M) -> np.ndarray:
    """Reflectance of a thick water cloud at ``wl`` nm (see module docstring)."""
    r_cons = (1.0 - g) * tau / (2.0 + (1.0 - g) * tau)
    co_albedo = np.clip(1.7 * pure_water_absorption(wl) * r_e_m, 0.0, 1.0)
    return r_cons * np.exp(-4.0 * np.sqrt(co_albedo / (3.0 * (1.0 - g))))


def cloud_endmember(rng: np.random.Generator, wl: np.ndarray) -> tuple[np.ndarray, dict]:
    tau = _log_uniform(rng, 8.0, 80.0)
    return cloud_reflectance(wl, tau), {
        "id": "model:cloud", "name": "water cloud", "class": "cloud", "split": "model",
        "source": "two-stream conservative cloud (Bohren 1987) with droplet absorption (van de Hulst 1980)",
        "params": {"tau": round(tau, 2), "g": CLOUD_G, "r_e_um": CLOUD_RE_M * 1e6}}


def wet_soil(wl: np.ndarray, dry: np.ndarray, wetness: float, film_mm: float = 0.2) -> np.ndarray:
    """Wet-soil reflectance (Twomey et al. 1986) mixed with the dry spectrum by ``wetness`` 0-1."""
    n2 = WATER_N**2
    wet = dry / (n2 - (n2 - 1.0) * dry) * np.exp(-2.0 * pure_water_absorption(wl) * film_mm * 1e-3)
    return (1.0 - wetness) * dry + wetness * wet
