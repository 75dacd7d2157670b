"""Material groups: one vocabulary for the decoder library's classes and the simulator's land cover.

The decoder library's spectra carry fine classes (``paint``, ``roof_tile``, ``soil`` ...) and the
simulator labels pixels with land-cover classes (``trees``, ``road``, ``cloud`` ...). Abundance maps
become material maps when both are read in a few groups that a spectrum can actually tell apart:
water, green vegetation, non-photosynthetic vegetation, bare ground, built surfaces and bright
surfaces (snow, cloud). ``--abundance-groups`` writes one band per group, and the quality report
scores the dominant group of the abundances against the simulator's labels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hyperldm_engine.errors import InputError

GROUPS = ("water", "vegetation", "npv", "bare", "built", "bright")
#: --abundances bands: the library's fine classes, or the material groups :data:`GROUPS`
ABUNDANCE_GROUPINGS = ("class", "material")

#: decoder-library class -> group (earthlib LEVEL_2/3 and USGS splib07 classes as shipped)
LIBRARY_CLASS_GROUP = {
    "water": "water",
    "vegetation": "vegetation",
    "npv": "npv", "char": "npv",
    "soil": "bare", "sand": "bare", "mineral": "bare", "gravel": "bare",
    "asphalt": "built", "road": "built", "parking_lot": "built", "concrete": "built", "metal": "built",
    "paint": "built", "glass": "built", "impervious_other": "built", "roof_shingle": "built",
    "roof_tile": "built", "roof_concrete_tile": "built", "roof_wood": "built",
    "snow": "bright",
}

#: simulator land-cover class -> group (``simulate.landcover.CLASS_NAMES``)
LABEL_CLASS_GROUP = {
    "water": "water", "trees": "vegetation", "grass": "vegetation", "cropland": "vegetation",
    "wetland": "vegetation", "dry_vegetation": "npv", "bare_soil": "bare", "sand": "bare", "rock": "bare",
    "road": "built", "pavement": "built", "roof": "built", "cloud": "bright",
}


def group_matrix(library_classes: list[str]) -> np.ndarray:
    """(n_groups, n_library) 0/1 matrix summing per-spectrum abundances into :data:`GROUPS`.

    A library class outside the table goes to ``built`` only if it names a roof or pavement, else
    to ``bare``; unknown classes are rare and listed in ``data/SPECTRA.md``.
    """
    m = np.zeros((len(GROUPS), len(library_classes)), np.float32)
    for j, c in enumerate(library_classes):
        g = LIBRARY_CLASS_GROUP.get(c) or ("built" if ("roof" in c or "pave" in c) else "bare")
        m[GROUPS.index(g), j] = 1.0
    return m


def class_groups(library_classes: list[str]) -> tuple[list[str], np.ndarray]:
    """Group library spectra by class: names and a (n_groups, n_g) 0/1 matrix summing abundances."""
    names = sorted(set(library_classes))
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(names), len(library_classes)), np.float32)
    for j, c in enumerate(library_classes):
        matrix[index[c], j] = 1.0
    return names, matrix


@lru_cache(maxsize=4)
def abundance_groups(library_classes: tuple[str, ...], grouping: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Band names of the abundances output and the (n_bands, n_library) matrix summing per-spectrum
    abundances into them: the library's classes (``grouping="class"``) or the material groups ("material")."""
    if grouping not in ABUNDANCE_GROUPINGS:
        raise InputError(f"unknown abundance grouping {grouping!r}; choose one of {', '.join(ABUNDANCE_GROUPINGS)}")
    if grouping == "material":
        return GROUPS, group_matrix(list(library_classes))
    names, matrix = class_groups(list(library_classes))
    return tuple(names), matrix


def label_groups(labels: np.ndarray, class_names: list[str] | tuple[str, ...]) -> np.ndarray:
    """Per-pixel group index of a label map (-1 where the class has no group or is out of range)."""
    lut = np.array([GROUPS.index(LABEL_CLASS_GROUP[c]) if c in LABEL_CLASS_GROUP else -1 for c in class_names])
    out = np.full(labels.shape, -1, np.int64)
    ok = (labels >= 0) & (labels < len(lut))
    out[ok] = lut[labels[ok]]
    return out


def dominant_group_agreement(grouped: np.ndarray, labels: np.ndarray, class_names: list[str] | tuple[str, ...],
                             exclude: tuple[str, ...] = ("bright",)) -> float:
    """Fraction of labelled pixels whose largest group abundance (``grouped``: (n_groups, h, w)) is the
    label's group; groups in ``exclude`` (clouds: no library spectrum is a cloud) are not scored."""
    want = label_groups(labels, class_names)
    keep = want >= 0
    for g in exclude:
        keep &= want != GROUPS.index(g)
    if not keep.any():
        return float("nan")
    return float((grouped.argmax(0)[keep] == want[keep]).mean())
