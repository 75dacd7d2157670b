"""Band centre wavelengths (and FWHM) of a hyperspectral raster, in nanometres.

Sources, first match wins: per-band metadata ``wavelength`` (GDAL's ENVI driver, our writer),
per-band ``IMAGERY`` metadata ``CENTRAL_WAVELENGTH_UM`` / ``FWHM_UM`` (GDAL's standard since 3.10),
dataset metadata ``wavelength = {...}`` in the default or ENVI domain, band descriptions such as
``b12 580.4 nm`` or ``378.19 Nanometers``, and finally an ENVI ``.hdr`` beside the file.
Micrometre values are converted to nanometres; without units, values below 30 are taken as
micrometres (no imaging spectrometer has bands below 30 nm).
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from hyperldm_engine.errors import InputError

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# "b12 580.4 nm", "580.4 nm", "378.190002 Nanometers", "Band 3 (0.55 um)", "0.55 micrometers"
_DESC_RE = re.compile(
    rf"(?P<value>{_NUMBER})\s*(?P<unit>nm|nanomet(?:er|re)s?|um|µm|μm|microns?|micromet(?:er|re)s?)\b",
    re.IGNORECASE,
)
_MICRO_UNITS = ("um", "µm", "μm", "micron", "microns", "micrometer", "micrometers", "micrometre",
                "micrometres")
_NANO_UNITS = ("nm", "nanometer", "nanometers", "nanometre", "nanometres")
# Below this a unit-less wavelength is taken as micrometres.
MICROMETRE_THRESHOLD = 30.0


def unit_factor(unit: str | None, values: np.ndarray | None = None) -> float:
    """Multiplier from ``unit`` to nanometres; unknown units fall back to the magnitude rule."""
    u = (unit or "").strip().lower().replace(" ", "")
    if u in _NANO_UNITS:
        return 1.0
    if u in _MICRO_UNITS:
        return 1000.0
    if u in ("mm", "millimeter", "millimeters", "millimetre", "millimetres"):
        return 1.0e6
    if values is not None and len(values) and float(np.nanmax(values)) < MICROMETRE_THRESHOLD:
        return 1000.0
    return 1.0


def parse_envi_list(text: str) -> np.ndarray:
    """``{400.0, 412.5, ...}`` (or a bare comma/space separated list) -> float array."""
    body = text.strip().strip("{}")
    parts = [p for p in re.split(r"[,\s]+", body) if p]
    return np.array([float(p) for p in parts], dtype=float)


def read_envi_header(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse an ENVI ``.hdr`` into ``{lower-case key: raw value}`` (braced values may span lines)."""
    p = Path(path)
    try:
        text = p.read_text(errors="replace")
    except OSError as exc:
        raise InputError(f"{p}: cannot read the ENVI header: {exc.strerror or exc}") from exc
    lines = text.splitlines()
    if not lines or lines[0].strip().upper() != "ENVI":
        raise InputError(f"{p}: not an ENVI header (the first line is not 'ENVI')")
    out: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if value.startswith("{"):
            while "}" not in value and i < len(lines):
                value += " " + lines[i].strip()
                i += 1
        out[" ".join(key.strip().lower().split())] = value
    return out


def _validated(centers: np.ndarray, fwhm: np.ndarray | None, where: str
               ) -> tuple[np.ndarray, np.ndarray | None]:
    if not np.all(np.isfinite(centers)) or np.any(centers <= 0):
        raise InputError(f"{where}: wavelengths must be positive numbers")
    if fwhm is not None and (len(fwhm) != len(centers) or not np.all(np.isfinite(fwhm))
                             or np.any(fwhm <= 0)):
        fwhm = None  # a broken FWHM list is dropped, the centres are still usable
    return centers, fwhm


def _from_header_dict(meta: Mapping[str, str], count: int | None
                      ) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Wavelengths from ENVI-style keys (``wavelength``, ``wavelength units``, ``fwhm``)."""
    norm = {k.lower().replace("_", " "): v for k, v in meta.items()}
    raw = norm.get("wavelength")
    if not raw:
        return None
    try:
        wl = parse_envi_list(raw)
    except ValueError:
        return None
    if count is not None and len(wl) != count:
        return None
    factor = unit_factor(norm.get("wavelength units"), wl)
    fwhm = None
    if norm.get("fwhm"):
        try:
            fwhm = parse_envi_list(norm["fwhm"]) * factor
        except ValueError:
            fwhm = None
    return wl * factor, fwhm


def _from_band_tags(ds: rasterio.DatasetReader) -> tuple[np.ndarray, np.ndarray | None] | None:
    wl, fw, units = [], [], []
    dataset_units = ds.tags().get("wavelength_units") or ds.tags(ns="ENVI").get("wavelength_units")
    for b in ds.indexes:
        t = ds.tags(b)
        if "wavelength" not in t:
            return None
        try:
            wl.append(float(t["wavelength"]))
        except ValueError:
            return None
        units.append(t.get("wavelength_units") or dataset_units)
        try:
            fw.append(float(t["fwhm"]) if "fwhm" in t else np.nan)
        except ValueError:
            fw.append(np.nan)
    centers = np.array(wl, float)
    factor = unit_factor(units[0], centers)
    fwhm = np.array(fw, float) * factor
    return centers * factor, (None if np.isnan(fwhm).any() else fwhm)


def _from_imagery(ds: rasterio.DatasetReader) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Per-band ``IMAGERY`` domain ``CENTRAL_WAVELENGTH_UM`` (and ``FWHM_UM``), micrometres."""
    wl, fw = [], []
    for b in ds.indexes:
        t = ds.tags(b, ns="IMAGERY")
        try:
            wl.append(float(t["CENTRAL_WAVELENGTH_UM"]) * 1000.0)
            fw.append(float(t["FWHM_UM"]) * 1000.0 if "FWHM_UM" in t else np.nan)
        except (KeyError, ValueError):
            return None
    fwhm = np.array(fw, float)
    return np.array(wl, float), (None if np.isnan(fwhm).any() else fwhm)


def _from_descriptions(descriptions: tuple[str | None, ...]) -> np.ndarray | None:
    values = []
    for d in descriptions:
        m = _DESC_RE.search(d or "")
        if not m:
            return None
        values.append(float(m.group("value")) * unit_factor(m.group("unit")))
    return np.array(values, float) if values else None


def _sidecar_headers(p: Path) -> list[Path]:
    cands = [p.with_name(p.name + ".hdr")]
    if p.suffix:
        cands.append(p.with_suffix(".hdr"))
    return [c for c in cands if c.is_file()]


def find_wavelengths(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Like ``read_wavelengths`` but returns None when the raster carries no wavelengths."""
    p = Path(path)
    if p.suffix.lower() == ".hdr":
        found = _from_header_dict(read_envi_header(p), None)
        return None if found is None else _validated(*found, where=str(p))
    if not p.exists():
        raise InputError(f"{p}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(p)
    except RasterioIOError as exc:
        raise InputError(f"{p}: not a raster that GDAL can read") from exc
    with ds:
        count = ds.count
        domains = [ds.tags(), ds.tags(ns="ENVI") if "ENVI" in (ds.tag_namespaces() or []) else {}]
        from_domains = None
        for tags in domains:
            from_domains = _from_header_dict(tags, count)
            if from_domains is not None:
                break
        found = _from_band_tags(ds)
        if found is None:
            found = _from_imagery(ds)
        if found is None:
            found = from_domains
        elif found[1] is None and from_domains is not None and from_domains[1] is not None:
            found = (found[0], from_domains[1])  # per-band centres, dataset-level FWHM list
        if found is None:
            centers = _from_descriptions(ds.descriptions)
            if centers is not None:
                found = (centers, None)
    if found is None:
        for hdr in _sidecar_headers(p):
            found = _from_header_dict(read_envi_header(hdr), count)
            if found is not None:
                break
    return None if found is None else _validated(*found, where=str(p))


def read_wavelengths(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """``(centers_nm, fwhm_nm or None)`` of a raster (or ENVI ``.hdr``); InputError if absent."""
    found = find_wavelengths(path)
    if found is None:
        raise InputError(
            f"{path}: no band wavelengths found (band descriptions, 'wavelength' metadata or an ENVI "
            ".hdr); give them with a wavelengths file"
        )
    return found


def read_wavelength_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """A user's list of band centres: one per line, or CSV/TSV columns ``wavelength[,fwhm]``.

    A header row is allowed (``wavelength,fwhm``; a unit in it such as ``wavelength_um`` or
    ``(nm)`` is honoured), ``#`` starts a comment, and an ENVI ``.hdr`` is accepted too.
    """
    p = Path(path)
    if p.suffix.lower() == ".hdr":
        return read_wavelengths(p)
    try:
        text = p.read_text(errors="replace")
    except FileNotFoundError as exc:
        raise InputError(f"{p}: wavelengths file not found") from exc
    except OSError as exc:
        raise InputError(f"{p}: cannot read the wavelengths file: {exc.strerror or exc}") from exc
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError(f"{p}: the wavelengths file is empty")
    unit: str | None = None
    header = lines[0]
    if re.search(r"[A-Za-z]", header) and not re.fullmatch(rf"[\s,;]*{_NUMBER}([\s,;]+{_NUMBER})*[\s,;]*",
                                                          header):
        low = header.lower()
        if re.search(r"\b(um|µm|μm|micro\w*)\b|_um\b", low):
            unit = "um"
        elif re.search(r"\bnm\b|_nm\b|nano", low):
            unit = "nm"
        lines = lines[1:]
    rows: list[list[float]] = []
    dialect = "excel-tab" if "\t" in "\n".join(lines) else "excel"
    for n, row in enumerate(csv.reader(io.StringIO("\n".join(lines)), dialect=dialect), start=1):
        cells = [c for part in row for c in re.split(r"[;\s]+", part.strip()) if c]
        try:
            rows.append([float(c) for c in cells])
        except ValueError as exc:
            raise InputError(f"{p}: line {n} of the wavelengths is not numeric: {','.join(row)}") from exc
    widths = {len(r) for r in rows}
    if widths == {1}:
        centers, fwhm = np.array([r[0] for r in rows]), None
    elif len(rows) == 1 and len(rows[0]) > 2:  # one line of comma-separated centres
        centers, fwhm = np.array(rows[0]), None
    elif widths == {2}:
        centers, fwhm = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    else:
        raise InputError(f"{p}: expected one column (centres) or two (centre, FWHM) per line")
    factor = unit_factor(unit, centers)
    centers = centers * factor
    fwhm = None if fwhm is None else fwhm * factor
    if len(centers) > 1 and np.any(np.diff(centers) <= 0):
        raise InputError(f"{p}: band centres must increase strictly")
    return _validated(centers, fwhm, str(p))
