"""Spectral libraries for QGIS and the EnMAP-Box (GeoPackage) and for everyone else (CSV).

A library is a vector layer, one feature per spectrum, whose ``profiles`` field holds the spectrum
as JSON ``{"x": [410.0, ...], "y": [0.05, ...], "xUnit": "nm", "yUnit": "reflectance"}``: the
convention of the EnMAP-Box and the QGIS spectral-library tools (field name ``profiles`` is the
EnMAP-Box default). Features carry ``name`` and ``class`` (and any extra text or number fields);
with ``points`` they are points in ``crs`` (pixels a spectrum was sampled at), without them the
layer is a plain table. The CSV beside it has one row per spectrum: the same fields, then one
column per wavelength (nm).

Written through pyogrio (an engine dependency, GDAL's GPKG driver); the field is declared JSON
(GDAL's JSON sub-type, ``application/json`` in ``gpkg_data_columns``) so readers know what it holds.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.errors import InputError

PROFILE_FIELD = "profiles"
LAYER = "spectral_library"
X_UNIT, Y_UNIT = "nm", "reflectance"
#: spectral library file extensions: GeoPackage (the CSV sits beside it with the same stem)
LIBRARY_SUFFIX = ".gpkg"


def check_library_path(path: str | os.PathLike[str]) -> Path:
    """``--library-out`` must name a ``.gpkg``; InputError otherwise."""
    p = Path(path)
    if p.suffix.lower() != LIBRARY_SUFFIX:
        raise InputError(f"{p}: --library-out must be a GeoPackage named .gpkg (got {p.suffix or 'no extension'}); "
                         "a CSV with the same stem is written beside it")
    return p


def csv_path(gpkg: str | os.PathLike[str]) -> Path:
    """The CSV written beside a library: same folder and stem, ``.csv``."""
    return Path(gpkg).with_suffix(".csv")


def profile_json(wavelengths_nm: Sequence[float], values: Sequence[float]) -> str:
    """The EnMAP-Box / QGIS profile dictionary as JSON (wavelengths 4 decimals, values 6)."""
    return json.dumps({"x": [round(float(w), 4) for w in wavelengths_nm],
                       "y": [round(float(v), 6) for v in values], "xUnit": X_UNIT, "yUnit": Y_UNIT})


def write_geopackage(path: str | os.PathLike[str], spectra: np.ndarray, wavelengths_nm: Sequence[float],
                     fields: Mapping[str, Sequence[Any]], points: np.ndarray | None = None,
                     crs: Any = None) -> None:
    """Write ``spectra`` (n, bands) to a new GeoPackage ``path`` (overwritten if there)."""
    import pyogrio.raw

    s = np.asarray(spectra, float)
    n = s.shape[0]
    field_data = [np.asarray([profile_json(wavelengths_nm, row) for row in s], dtype=object)]
    names = [PROFILE_FIELD]
    for key, values in fields.items():
        values = list(values)
        if len(values) != n:
            raise ValueError(f"field {key!r} has {len(values)} values for {n} spectra")
        numeric = all(isinstance(v, int | float | np.integer | np.floating) for v in values)
        field_data.append(np.asarray(values, dtype=np.float64 if numeric else object))
        names.append(key)
    geometry, geometry_type, crs_text = None, None, None
    if points is not None:
        import shapely

        pts = np.asarray(points, float).reshape(n, 2)
        geometry = shapely.to_wkb(shapely.points(pts))
        geometry_type = "Point"
        crs_text = None if crs is None else (crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs))
    if Path(path).exists():
        Path(path).unlink()
    pyogrio.raw.write(str(path), geometry, field_data, names, layer=LAYER, driver="GPKG",
                      geometry_type=geometry_type, crs=crs_text,
                      dataset_options={"VERSION": "1.2"})  # 1.2: read without warnings by GDAL < 3.8 (QGIS LTRs)
    _declare_json(Path(path), PROFILE_FIELD)


def _declare_json(path: Path, column: str) -> None:
    """Mark ``column`` as JSON the way GDAL's GPKG driver does for its JSON sub-type (OFSTJSON).

    pyogrio has no field sub-types; GDAL reads them back from ``gpkg_data_columns`` (the GeoPackage
    schema extension), so the row is added there, with the extension registered.
    """
    import sqlite3

    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, column_name TEXT "
                    "NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT, constraint_name TEXT, "
                    "CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), CONSTRAINT gdc_tn UNIQUE "
                    "(table_name, name))")
        con.execute("CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, extension_name "
                    "TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE "
                    "(table_name, column_name, extension_name))")
        con.execute("INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, mime_type) VALUES (?, ?, ?)",
                    (LAYER, column, "application/json"))
        for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
            con.execute("INSERT OR IGNORE INTO gpkg_extensions (table_name, column_name, extension_name, definition, "
                        "scope) VALUES (?, NULL, 'gpkg_schema', 'http://www.geopackage.org/spec/#extension_schema', "
                        "'read-write')", (table,))
        con.execute("CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (constraint_name TEXT NOT NULL, "
                    "constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, min_is_inclusive BOOLEAN, max NUMERIC, "
                    "max_is_inclusive BOOLEAN, description TEXT, CONSTRAINT gdcc_ntv UNIQUE (constraint_name, "
                    "constraint_type, value))")
        con.commit()
    finally:
        con.close()


def write_csv(path: str | os.PathLike[str], spectra: np.ndarray, wavelengths_nm: Sequence[float],
              fields: Mapping[str, Sequence[Any]]) -> None:
    """One row per spectrum: the fields, then one column per wavelength (header ``410.0`` ... in nm)."""
    s = np.asarray(spectra, float)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*fields, *(repr(round(float(v), 4)) for v in wavelengths_nm)])
        for i, row in enumerate(s):
            w.writerow([*(fields[k][i] for k in fields), *(f"{v:.6f}" for v in row)])
