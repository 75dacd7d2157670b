"""Build ``hyperldm_engine/data/output_sensors.npz``: measured relative spectral responses (RSR) of the
Sentinel-2A MSI and Landsat 8 OLI bands that ``--output-sensor`` resamples synthesized cubes to.

Source: the band filter functions tabulated in Py6S 1.9.2 (``Py6S/Params/wavelength.py``,
``PredefinedWavelengths``; LGPL code, the tables are the agencies' published RSRs: ESA Sentinel-2A
MSI spectral response functions, COPE-GSEG-EOPG-TN-15-0007; USGS/NASA Landsat 8 OLI pre-launch RSR).
Only bands inside 350-1050 nm are kept (the engine's models cover 400-1000 nm): Sentinel-2 B1-B9 and
B8A, OLI B1-B5. SWIR bands (S2 B10-B12, OLI B6, B7, B9) cannot be made from a 400-1000 nm cube.
Same processing as ``build_input_sensors.py``: 1 nm grid, linear interpolation, zero outside the
tabulated range, peak-normalised.

Run: ``PYTHONPATH=<folder with Py6S> .venv/bin/python scripts/build_output_sensors.py``
(``pip download --no-deps py6s==1.9.2`` and unpack; Py6S is parsed with ``ast``, never imported).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np

GRID_NM = np.arange(350.0, 1050.0 + 0.5, 1.0)
OUT_DIR = Path(__file__).resolve().parents[1] / "hyperldm_engine" / "data"
# engine key -> Py6S PredefinedWavelengths attribute
BANDS = {
    **{f"sentinel2-msi/{b}": f"S2A_MSI_{b[1:].zfill(2)}" for b in
       ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9")},
    **{f"landsat8-oli/B{i}": f"LANDSAT_OLI_B{i}" for i in range(1, 6)},
}


def _py6s_tables(path: Path) -> dict[str, tuple[float, float, np.ndarray]]:
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PredefinedWavelengths")
    out = {}
    for node in cls.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)):
            continue
        elts = node.value.elts
        if len(elts) != 4 or not isinstance(elts[3], ast.Call):
            continue
        start, end = ast.literal_eval(elts[1]), ast.literal_eval(elts[2])
        out[node.targets[0].id] = (float(start), float(end),
                                   np.asarray(ast.literal_eval(elts[3].args[0]), dtype=np.float64))
    return out


def main() -> None:
    spec = importlib.util.find_spec("Py6S")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Py6S not found: pip download --no-deps py6s==1.9.2, unpack, put it on PYTHONPATH")
    src = Path(spec.submodule_search_locations[0]) / "Params" / "wavelength.py"
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
        meta[key] = {"py6s": attr, "tabulated_nm": [wl[0], wl[-1]],
                     "centroid_nm": round(float((GRID_NM * r).sum() / r.sum()), 1),
                     "half_max_nm": [float(half[0]), float(half[-1])]}
    np.savez_compressed(OUT_DIR / "output_sensors.npz", **arrays)
    prov = {"source": "Py6S 1.9.2 Py6S/Params/wavelength.py (PredefinedWavelengths)",
            "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
            "licence": "Py6S code LGPL-3; the tabulated RSRs are ESA (Sentinel-2A MSI, COPE-GSEG-EOPG-TN-15-0007) "
                       "and USGS (Landsat 8 OLI) published data",
            "grid_nm": [350, 1050, 1],
            "processing": "linear interpolation of the 2.5-nm tables, zero outside, peak-normalised",
            "bands": meta}
    (OUT_DIR / "output_sensors_provenance.json").write_text(json.dumps(prov, indent=1) + "\n")
    for k, m in meta.items():
        print(k, m)


if __name__ == "__main__":
    main()
