"""Material groups: one vocabulary for the decoder library's classes and the simulator's land cover.

The decoder library's spectra carry fine classes (``paint``, ``roof_tile``, ``soil`` ...) and the
simulator labels pixels with land-cover classes (``trees``, ``road``, ``cloud`` ...). Abundance maps
become material maps when both are read in a few groups that a spectrum can actually tell apart:
water, green vegetation, non-photosynthetic vegetation, bare ground, built surfaces and bright
surfaces (snow, cloud). ``--abundance-groups`` writes one band per group, and the quality report
scores the dominant group of the abundances against the simulator's labels.

:class:`GroupPrior` is a class-group prior on the abundances: a per-pixel regression from the RGB
to the land-cover groups, learned on the training labels, whose probabilities re-weight each
spectrum's abundance by its group (a product of experts, ``A_j * p_g(j)^power``, renormalised to sum 1).
The decoder's abundances follow the sampled latent more than the RGB (docs/model-diagnosis.md), so on
their own their dominant group agrees with the labels on only ~45 % of held-out pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.fusion import n_features, poly_features

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


#: lowest group probability of :class:`GroupPrior` (a regression can say 0 or less; no group is ruled out)
PRIOR_FLOOR = 0.02


@dataclass(frozen=True)
class GroupPrior:
    """``weights`` (n_features, len(GROUPS)): a degree-``degree`` ridge from the normalised RGB to one-hot
    :data:`GROUPS`; ``power`` how strongly its probabilities re-weight the abundances (0: not at all)."""

    weights: np.ndarray
    degree: int
    power: float
    floor: float = PRIOR_FLOOR

    def check(self) -> None:
        """ValueError unless the weights fit the groups and the numbers are usable."""
        shape = (n_features(self.degree), len(GROUPS))
        if np.asarray(self.weights).shape != shape:
            raise ValueError(f"group prior weights have shape {np.asarray(self.weights).shape}, expected {shape}")
        if not np.all(np.isfinite(self.weights)) or not (self.power >= 0) or not (0 < self.floor < 1):
            raise ValueError("group prior needs finite weights, power >= 0 and 0 < floor < 1")

    def probabilities(self, rgb: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(..., 3, H, W)`` -> group probabilities ``(..., len(GROUPS), H, W)``."""
        w = torch.as_tensor(np.asarray(self.weights), dtype=rgb.dtype, device=rgb.device)
        p = torch.einsum("fg,...fhw->...ghw", w, poly_features(rgb, self.degree)).clamp_min(self.floor)
        return p / p.sum(dim=-3, keepdim=True)

    def reweight(self, abundances: torch.Tensor, rgb: torch.Tensor, library_groups: torch.Tensor) -> torch.Tensor:
        """``abundances`` (..., n_library, H, W) times each spectrum's group probability to ``power``,
        renormalised to sum 1; ``library_groups`` (len(GROUPS), n_library) as :func:`group_matrix` gives."""
        if self.power == 0:
            return abundances
        weight = self.probabilities(rgb.to(abundances.dtype)) ** self.power
        per_spectrum = torch.einsum("gn,...ghw->...nhw", library_groups.to(abundances), weight)
        out = abundances * per_spectrum
        return out / out.sum(dim=-3, keepdim=True).clamp_min(torch.finfo(out.dtype).tiny)
