"""Output sensors: resample a synthesized cube to another sensor's bands (``--output-sensor``).

A cube holds band values at the model's centres (400-1000 nm for the shipped models). Resampling is
one linear map ``M`` (n_out, n_model): the band values are interpolated linearly onto a 1-nm grid
(held constant beyond the outer centres, out to half a band width), each output band's response is
integrated over that grid, and every row is normalised to sum 1, so a constant spectrum stays
exactly constant. Being linear per pixel, it commutes with the tile blending: the pipeline applies
it to each tile (:class:`ResampledTileFn`), so memory stays flat.

Output bands need at least :data:`MIN_COVERED_FRACTION` of their response inside the model's
coverage (first centre - FWHM/2 to last centre + FWHM/2, 403.8-996.2 nm for the default model);
the others cannot be made without inventing data beyond 1000 nm and are left out, by name.

Registry (``OUTPUT_SENSORS``; ``names()``), sources in each entry:

- ``sentinel2-msi``: Sentinel-2A MSI measured RSRs (ESA), bands B1-B9 and B8A (10 of 13: B10 at
  1375 nm, B11 at 1610 nm and B12 at 2190 nm lie beyond the model's 1000 nm).
- ``landsat8-oli``: Landsat 8/9 OLI measured RSRs (USGS), B1-B5 (B6, B7 and the cirrus B9 are SWIR;
  the 15 m panchromatic B8 is left out as it is never stacked with the 30 m bands).
- ``enmap``, ``prisma``, ``aviris-ng``: nominal band tables (regular grids with the instrument's
  published sampling and FWHM, Gaussian responses), the bands inside the model's range. A real
  scene's band table (its metadata) is better: give it as ``--output-sensor FILE.csv``.
- ``FILE.csv``: centres and FWHM (``wavelength,fwhm`` with an optional ``name`` column), or full
  responses (first column the wavelength, one column per band named in the header).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.sensor import FWHM_TO_SIGMA

#: an output band is made only when at least this fraction of its response lies inside the model's
#: coverage; a Gaussian band then has its centre at least 0.7 FWHM inside the coverage's edge
MIN_COVERED_FRACTION = 0.95
GRID_STEP_NM = 1.0


@dataclass(frozen=True, eq=False)
class OutputSensor:
    """Bands of a sensor to resample to: names, centres and FWHM (nm), and measured responses if any.

    ``responses`` (n_bands, len(grid_nm)) are relative spectral responses on ``grid_nm``; without
    them every band is a Gaussian of its centre and FWHM.
    """

    name: str
    description: str
    source: str
    band_names: tuple[str, ...]
    centers_nm: np.ndarray
    fwhm_nm: np.ndarray
    grid_nm: np.ndarray | None = None
    responses: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_bands(self) -> int:
        return len(self.band_names)

    def curves(self, grid_nm: np.ndarray) -> np.ndarray:
        """Each band's relative response on ``grid_nm`` (n_bands, len(grid_nm)), zero outside its range."""
        grid = np.asarray(grid_nm, float)
        if self.responses is not None and self.grid_nm is not None:
            return np.stack([np.interp(grid, self.grid_nm, r, left=0.0, right=0.0) for r in self.responses])
        sigma = np.asarray(self.fwhm_nm, float)[:, None] * FWHM_TO_SIGMA
        return np.exp(-0.5 * ((grid[None, :] - np.asarray(self.centers_nm, float)[:, None]) / sigma) ** 2)

    def subset(self, keep: Sequence[int]) -> OutputSensor:
        idx = list(keep)
        return OutputSensor(self.name, self.description, self.source, tuple(self.band_names[i] for i in idx),
                            self.centers_nm[idx], self.fwhm_nm[idx], self.grid_nm,
                            None if self.responses is None else self.responses[idx])


@dataclass(frozen=True)
class Resampling:
    """The map from a model's bands to an output sensor's: ``out = matrix @ cube`` per pixel."""

    sensor: OutputSensor  # the bands that are made, in order
    matrix: np.ndarray  # (n_out, n_model) float64, rows sum to 1
    dropped: tuple[str, ...]  # band names left out (outside the model's coverage)

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """``cube`` (n_model, ...) -> (n_out, ...) in the cube's float dtype."""
        a = np.asarray(cube)
        dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.float32
        flat = a.reshape(a.shape[0], -1)
        return (self.matrix.astype(dtype) @ flat).reshape((self.matrix.shape[0], *a.shape[1:])).astype(dtype)


def _interpolation_matrix(grid: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(len(grid), n) weights: linear interpolation of band values at ``centers``, constant beyond."""
    n = len(centers)
    return np.stack([np.interp(grid, centers, np.eye(n)[j]) for j in range(n)], axis=1)


def resampling(sensor: OutputSensor, model_centers_nm: Sequence[float], model_fwhm_nm: Sequence[float]) -> Resampling:
    """The linear map from a model's bands (centres, FWHM in nm) to ``sensor``'s bands inside its coverage.

    InputError when no band of ``sensor`` lies inside the model's coverage.
    """
    centers = np.asarray(model_centers_nm, float).ravel()
    fwhm = np.broadcast_to(np.asarray(model_fwhm_nm, float), centers.shape)
    if centers.size < 2 or np.any(np.diff(centers) <= 0):
        raise InputError("the model's band centres must increase strictly")
    lo, hi = centers[0] - fwhm[0] / 2.0, centers[-1] + fwhm[-1] / 2.0
    reach = 3.0 * float(np.max(sensor.fwhm_nm))
    start = np.floor(min(lo, float(np.min(sensor.centers_nm)) - reach))
    stop = np.ceil(max(hi, float(np.max(sensor.centers_nm)) + reach))
    if sensor.grid_nm is not None:
        start, stop = min(start, np.floor(sensor.grid_nm[0])), max(stop, np.ceil(sensor.grid_nm[-1]))
    grid = np.arange(start, stop + GRID_STEP_NM / 2, GRID_STEP_NM)
    curves = sensor.curves(grid)
    total = curves.sum(axis=1)
    inside = (grid >= lo) & (grid <= hi)
    covered = np.where(total > 0, curves[:, inside].sum(axis=1) / np.where(total > 0, total, 1.0), 0.0)
    keep = [i for i in range(sensor.n_bands) if covered[i] >= MIN_COVERED_FRACTION]
    dropped = tuple(sensor.band_names[i] for i in range(sensor.n_bands) if i not in keep)
    if not keep:
        raise InputError(f"output sensor {sensor.name!r}: none of its {sensor.n_bands} bands lies inside the "
                         f"model's {lo:.0f}-{hi:.0f} nm")
    w = curves[keep][:, inside]
    w = w / w.sum(axis=1, keepdims=True)
    matrix = w @ _interpolation_matrix(grid[inside], centers)
    matrix /= matrix.sum(axis=1, keepdims=True)
    return Resampling(sensor.subset(keep), matrix, dropped)


@dataclass
class ResampledTileFn:
    """A tile function whose cubes (outputs ``s0``, ``s1``, ...) come out resampled to another sensor.

    Picklable (dask workers) and batched like the function it wraps; other outputs (abundances) pass.
    """

    inner: Any
    matrix: np.ndarray

    def _resample(self, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        m = self.matrix.astype(np.float32)
        result = {}
        for key, value in out.items():
            if key.startswith("s") and key[1:].isdigit():
                a = np.asarray(value, np.float32)
                value = np.ascontiguousarray((m @ a.reshape(a.shape[0], -1)).reshape((m.shape[0], *a.shape[1:])))
            result[key] = value
        return result

    def __call__(self, request: Any) -> dict[str, np.ndarray]:
        return self._resample(self.inner(request))

    def batch(self, requests: Sequence[Any]) -> list[dict[str, np.ndarray]]:
        return [self._resample(out) for out in self.inner.batch(requests)]


# ---- registry ------------------------------------------------------------------------------------
def _regular(start: float, stop: float, step: float) -> np.ndarray:
    return np.round(np.arange(start, stop + step / 2, step), 4)


def _nominal(name: str, description: str, source: str, detectors: Sequence[tuple[str, float, float, float, float]]
             ) -> OutputSensor:
    """A nominal band table: per detector (prefix, first centre, last centre, step, FWHM), numbered 1..n."""
    centers, fwhm, names = [], [], []
    for _prefix, first, last, step, width in detectors:
        c = _regular(first, last, step)
        centers.append(c)
        fwhm.append(np.full(c.size, width))
    centers_all, fwhm_all = np.concatenate(centers), np.concatenate(fwhm)
    names = [f"band {i + 1}" for i in range(centers_all.size)]
    return OutputSensor(name, description, source, tuple(names), centers_all, fwhm_all)


@lru_cache(maxsize=1)
def _rsr_tables() -> dict[str, np.ndarray]:
    path = resources.files("hyperldm_engine.data").joinpath("output_sensors.npz")
    with resources.as_file(path) as p, np.load(p, allow_pickle=False) as z:
        return {k: z[k].astype(np.float64) for k in z.files}


def _measured(name: str, description: str, source: str, bands: Sequence[str]) -> OutputSensor:
    t = _rsr_tables()
    grid = t["wavelengths_nm"]
    responses = np.stack([t[f"{name}/{b}"] for b in bands])
    centers = (responses * grid).sum(axis=1) / responses.sum(axis=1)
    fwhm = np.array([np.ptp(grid[r >= 0.5 * r.max()]) + 1.0 for r in responses])
    return OutputSensor(name, description, source, tuple(bands), centers, fwhm, grid, responses)


_S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9")
_FACTORIES = {
    "sentinel2-msi": lambda: _measured(
        "sentinel2-msi", "Sentinel-2A MSI, bands B1-B9 and B8A (B10-B12 are beyond 1000 nm)",
        "ESA Sentinel-2A MSI spectral response functions (COPE-GSEG-EOPG-TN-15-0007) as tabulated in Py6S 1.9.2; "
        "data/output_sensors.npz, built by scripts/build_output_sensors.py", _S2_BANDS),
    "landsat8-oli": lambda: _measured(
        "landsat8-oli", "Landsat 8/9 OLI, bands B1-B5 (OLI-2 on Landsat 9 has the same nominal bands)",
        "USGS/NASA Landsat 8 OLI relative spectral response as tabulated in Py6S 1.9.2; "
        "data/output_sensors.npz, built by scripts/build_output_sensors.py", ("B1", "B2", "B3", "B4", "B5")),
    # Guanter et al. (2015), "The EnMAP spaceborne imaging spectroscopy mission for Earth observation",
    # Remote Sensing 7, 8830-8857, table 1: VNIR 420-1000 nm at 6.5 nm sampling, FWHM 8.1 nm; SWIR
    # 900-2450 nm at 10 nm, FWHM 12.5 nm (224 bands in the products; real centres vary per scene).
    "enmap": lambda: _nominal(
        "enmap", "EnMAP HSI, nominal VNIR (420-998.5 nm, 6.5 nm) and SWIR (900-2450 nm, 10 nm) grids",
        "nominal grid from Guanter et al. 2015 (Remote Sens. 7:8830), table 1; Gaussian responses",
        [("VNIR", 420.0, 998.5, 6.5, 8.1), ("SWIR", 900.0, 2450.0, 10.0, 12.5)]),
    # Loizzo et al. (2018), "PRISMA: the Italian hyperspectral mission", IGARSS 2018, 175-178: VNIR 66
    # bands over 400-1010 nm, SWIR 173 bands over 920-2505 nm, spectral sampling <= 12 nm.
    "prisma": lambda: _nominal(
        "prisma", "PRISMA HYC, nominal VNIR (66 bands, 400-1010 nm) and SWIR (173 bands, 920-2505 nm) grids",
        "nominal grid: the band counts and ranges of Loizzo et al. 2018 (IGARSS, 175-178) spread evenly, "
        "FWHM = sampling; Gaussian responses",
        [("VNIR", 404.6, 1005.4, 9.24, 9.24), ("SWIR", 924.6, 2500.4, 9.16, 9.16)]),
    # Chapman et al. (2019), "Spectral and radiometric calibration of the Next Generation Airborne
    # Visible Infrared Spectrometer (AVIRIS-NG)", Remote Sensing 11, 2129: 380-2510 nm, 5 nm sampling,
    # FWHM about 5.5 nm (425 bands).
    "aviris-ng": lambda: _nominal(
        "aviris-ng", "AVIRIS-NG, nominal 425 bands at 5 nm (377-2497 nm), FWHM 5.5 nm",
        "nominal grid from Chapman et al. 2019 (Remote Sens. 11:2129); Gaussian responses",
        [("", 377.0, 2497.0, 5.0, 5.5)]),
}
_ALIASES = {"sentinel-2": "sentinel2-msi", "sentinel2": "sentinel2-msi", "s2": "sentinel2-msi",
            "landsat8": "landsat8-oli", "landsat9": "landsat8-oli", "landsat-8": "landsat8-oli",
            "landsat-9": "landsat8-oli", "landsat9-oli": "landsat8-oli", "oli": "landsat8-oli",
            "avirisng": "aviris-ng", "aviris_ng": "aviris-ng"}


def names() -> tuple[str, ...]:
    """The registry's sensor names (``--output-sensor`` also takes a CSV file)."""
    return tuple(_FACTORIES)


@lru_cache(maxsize=16)
def _registry(name: str) -> OutputSensor:
    return _FACTORIES[name]()


def get_output_sensor(name_or_file: str | Path) -> OutputSensor:
    """A registry sensor (name or alias, case-insensitive) or a user's CSV (:func:`read_sensor_csv`)."""
    text = str(name_or_file).strip()
    key = _ALIASES.get(text.lower(), text.lower())
    if key in _FACTORIES:
        return _registry(key)
    if text.lower().endswith((".csv", ".txt", ".tsv")) or Path(text).exists():
        return read_sensor_csv(text)
    raise InputError(f"unknown output sensor {text!r}; known: {', '.join(names())}, or a CSV file of band "
                     "centres and FWHM")


def _unit_of(header: str) -> float | None:
    low = header.lower()
    if any(u in low for u in ("um", "µm", "μm", "micro")):
        return 1000.0
    if "nm" in low or "nano" in low:
        return 1.0
    return None


def read_sensor_csv(path: str | Path) -> OutputSensor:
    """A user's sensor from CSV: a band table or full responses (units from the header, else by magnitude).

    Band table: a header naming ``wavelength`` (or ``center``/``centre``) and ``fwhm`` columns, and
    optionally ``name``; one band per row. Responses: a header whose first column is the wavelength
    and every other column a band (its name), one row per wavelength sample.
    """
    p = Path(path)
    try:
        text = p.read_text(errors="replace")
    except FileNotFoundError as exc:
        raise InputError(f"{p}: output sensor file not found") from exc
    except OSError as exc:
        raise InputError(f"{p}: cannot read the output sensor file: {exc.strerror or exc}") from exc
    lines = [ln for ln in (raw.split("#", 1)[0].strip() for raw in text.splitlines()) if ln]
    if len(lines) < 2:
        raise InputError(f"{p}: expected a header row and at least one row of numbers")
    dialect = "excel-tab" if "\t" in lines[0] else "excel"
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO("\n".join(lines)), dialect=dialect)]
    header = [h.lower() for h in rows[0]]

    def column(*keys: str) -> int | None:
        return next((i for i, h in enumerate(header) if any(h == k or h.startswith(k) for k in keys)), None)

    i_wl, i_fwhm, i_name = column("wavelength", "center", "centre", "wl"), column("fwhm", "width"), column("name")
    if i_wl is None:
        raise InputError(f"{p}: the header must name a wavelength column (wavelength,fwhm[,name] or "
                         "wavelength,<band>,<band>...)")
    body = rows[1:]
    try:
        if i_fwhm is not None:
            centers = np.array([float(r[i_wl]) for r in body])
            fwhm = np.array([float(r[i_fwhm]) for r in body])
            band_names = tuple(r[i_name] if i_name is not None else f"band {n + 1}" for n, r in enumerate(body))
            factor = _unit_of(rows[0][i_wl]) or (1000.0 if centers.max() < 30 else 1.0)
            centers, fwhm = centers * factor, fwhm * factor
            responses, grid = None, None
        else:
            cols = [i for i in range(len(header)) if i != i_wl]
            grid = np.array([float(r[i_wl]) for r in body])
            responses = np.array([[float(r[i]) for r in body] for i in cols])
            factor = _unit_of(rows[0][i_wl]) or (1000.0 if grid.max() < 30 else 1.0)
            grid = grid * factor
            band_names = tuple(rows[0][i] for i in cols)
            if len(grid) < 2 or np.any(np.diff(grid) <= 0):
                raise InputError(f"{p}: the response wavelengths must increase strictly")
            if not np.all(np.isfinite(responses)) or np.any(responses < 0) or np.any(responses.max(axis=1) <= 0):
                raise InputError(f"{p}: every band's response must be non-negative with a positive peak")
            centers = (responses * grid).sum(axis=1) / responses.sum(axis=1)
            fwhm = np.array([max(np.ptp(grid[r >= 0.5 * r.max()]), float(np.min(np.diff(grid)))) for r in responses])
    except (ValueError, IndexError) as exc:
        raise InputError(f"{p}: a row is not numeric or has too few columns ({exc})") from exc
    if centers.size == 0 or not np.all(np.isfinite(centers)) or not np.all(np.isfinite(fwhm)) or np.any(fwhm <= 0):
        raise InputError(f"{p}: band centres must be numbers and FWHM positive")
    return OutputSensor(p.stem, f"user sensor from {p.name}", str(p), band_names, centers, fwhm, grid, responses)
