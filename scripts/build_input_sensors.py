"""Build ``hyperldm_engine/data/input_sensors.npz``: measured relative spectral responses (RSR)
of the satellite RGB/NIR bands the engine accepts as input sensors.

Source: the band filter functions tabulated in Py6S 1.9.2 (``Py6S/Params/wavelength.py``,
``PredefinedWavelengths``; LGPL code, the tables themselves are the agencies' published RSRs:
USGS/NASA Landsat 8 OLI pre-launch RSR, ESA Sentinel-2A/2B MSI spectral response functions,
document COPE-GSEG-EOPG-TN-15-0007). Each entry there is ``(id, start_um, end_um, values)`` with
values every 2.5 nm from ``start`` to ``end``. The file is *parsed* (``ast``), not imported, so
Py6S's own dependencies (pysolar, the 6S binary) are not needed.

The responses are put on one grid, 350-1050 nm at 1 nm (linear interpolation, zero outside the
tabulated range, peak-normalised to 1). Landsat 7 ETM+ is not tabulated in Py6S, so the engine
models it as a top-hat from the handbook's band edges (``spectral/input_sensors.py``).

Run: ``.venv/bin/python scripts/build_input_sensors.py`` (needs ``pip install --no-deps py6s==1.9.2``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path

import numpy as np

GRID_NM = np.arange(350.0, 1050.0 + 0.5, 1.0)
OUT_DIR = Path(__file__).resolve().parents[1] / "hyperldm_engine" / "data"
PY6S_VERSION = "1.9.2"
# engine key -> Py6S PredefinedWavelengths attribute
BANDS = {
    "landsat8-oli/blue": "LANDSAT_OLI_B2",
    "landsat8-oli/green": "LANDSAT_OLI_B3",
    "landsat8-oli/red": "LANDSAT_OLI_B4",
    "landsat8-oli/nir": "LANDSAT_OLI_B5",
    "sentinel2a-msi/blue": "S2A_MSI_02",
    "sentinel2a-msi/green": "S2A_MSI_03",
    "sentinel2a-msi/red": "S2A_MSI_04",
    "sentinel2a-msi/nir": "S2A_MSI_08",
    "sentinel2b-msi/blue": "S2B_MSI_02",
    "sentinel2b-msi/green": "S2B_MSI_03",
    "sentinel2b-msi/red": "S2B_MSI_04",
    "sentinel2b-msi/nir": "S2B_MSI_08",
}


def _py6s_tables(path: Path) -> dict[str, tuple[float, float, np.ndarray]]:
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PredefinedWavelengths")
    out = {}
    for node in cls.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)):
            continue
        name = node.targets[0].id
        elts = node.value.elts
        if len(elts) != 4 or not isinstance(elts[3], ast.Call):
            continue
        start, end = ast.literal_eval(elts[1]), ast.literal_eval(elts[2])
        values = np.asarray(ast.literal_eval(elts[3].args[0]), dtype=np.float64)
        out[name] = (float(start), float(end), values)
    return out


def main() -> None:
    spec = importlib.util.find_spec("Py6S")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Py6S is not installed: pip install --no-deps py6s==1.9.2")
    src = Path(spec.submodule_search_locations[0]) / "Params" / "wavelength.py"
    version = importlib.metadata.version("Py6S")
    if version != PY6S_VERSION:
        raise SystemExit(f"expected Py6S {PY6S_VERSION}, found {version}")
    tables = _py6s_tables(src)
    arrays: dict[str, np.ndarray] = {"wavelengths_nm": GRID_NM.astype(np.float32)}
    meta = {}
    for key, attr in BANDS.items():
        start, end, values = tables[attr]
        wl = start * 1000.0 + 2.5 * np.arange(values.size)
        if abs(wl[-1] - end * 1000.0) >= 2.5:
            raise SystemExit(f"{attr}: {values.size} values do not span {start}-{end} um at 2.5 nm")
        r = np.interp(GRID_NM, wl, np.clip(values, 0.0, None), left=0.0, right=0.0)
        r /= r.max()
        arrays[key] = r.astype(np.float32)
        half = GRID_NM[r >= 0.5]
        centre = float((GRID_NM * r).sum() / r.sum())
        meta[key] = {"py6s": attr, "tabulated_nm": [wl[0], wl[-1]], "centroid_nm": round(centre, 1),
                     "half_max_nm": [float(half[0]), float(half[-1])]}
    np.savez_compressed(OUT_DIR / "input_sensors.npz", **arrays)
    prov = {"source": f"Py6S {version} Py6S/Params/wavelength.py (PredefinedWavelengths)",
            "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
            "licence": "Py6S code LGPL-3; the tabulated RSRs are USGS (Landsat 8 OLI) and ESA (Sentinel-2A/B "
                       "MSI, COPE-GSEG-EOPG-TN-15-0007) published data",
            "grid_nm": [350, 1050, 1], "processing": "linear interpolation of the 2.5-nm tables, zero outside, "
                                                     "peak-normalised", "bands": meta}
    (OUT_DIR / "input_sensors_provenance.json").write_text(json.dumps(prov, indent=1) + "\n")
    for k, m in meta.items():
        print(k, m)


if __name__ == "__main__":
    main()
