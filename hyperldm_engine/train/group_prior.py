"""The class-group prior of the abundances (``spectral.groups.GroupPrior``), measured on training scenes.

A degree-2 ridge from the normalised RGB to the one-hot land-cover group of each labelled training
pixel (the simulator's labels, or the user's ``--labels``), and the power with which its
probabilities re-weight the decoder's abundances. The power is chosen on the training scenes'
patches with the ridge cross-fitted (each scene's patches against a ridge fitted on the others),
as the one whose dominant group agrees best with the labels on the model's own samples. The same
held-out discipline as the anchored RGB correction's gain (``train.covariance.anchor_fusion``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from hyperldm_engine.spectral.fusion import ANCHOR_DEGREE, ridge_weights
from hyperldm_engine.spectral.groups import GROUPS, GroupPrior, group_matrix, label_groups
from hyperldm_engine.train.covariance import CovarianceSettings, sample_decoder, scene_normal_equations
from hyperldm_engine.train.data import PatchSampler, TrainScene, scene_normaliser

#: the powers tried (0: the decoder's abundances as they are)
POWERS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
#: groups the agreement does not score (clouds: no library spectrum is a cloud), as the quality report
UNSCORED = ("bright",)


def _one_hot_groups(scene: TrainScene) -> tuple[np.ndarray, np.ndarray]:
    """``(len(GROUPS), h, w)`` one-hot label groups of ``scene`` and where a group is known."""
    groups = label_groups(scene.labels, scene.class_names)
    known = groups >= 0
    return np.eye(len(GROUPS), dtype=np.float64)[np.where(known, groups, 0)].transpose(2, 0, 1), known


def group_prior(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings | None = None,
                degree: int = ANCHOR_DEGREE) -> tuple[GroupPrior, dict[str, Any]] | None:
    """The group prior of ``scenes`` with labels (None when none has a label that names a group) and its record."""
    settings = settings or CovarianceSettings()
    labelled = [s for s in scenes if s.labels is not None and (label_groups(s.labels, s.class_names) >= 0).any()]
    if not labelled:
        return None
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    equations = []
    for scene in labelled:
        target, known = _one_hot_groups(scene)
        equations.append(scene_normal_equations(scene, degree, target=target, keep=known))
    gram, xty = sum(e[0] for e in equations), sum(e[1] for e in equations)
    weights = ridge_weights(gram, xty, settings.anchor_lam)
    cross = len(labelled) > 1
    per_scene = max(1, round(settings.anchor_batches / len(labelled)))
    draw = sample_decoder(bundle, settings, generator, abundances=True)
    library_groups = torch.from_numpy(group_matrix(list(bundle.library_classes))).double()
    hits = dict.fromkeys(POWERS, 0)
    scored = 0
    bundle.eval()
    with torch.no_grad():
        for i, scene in enumerate(labelled):
            w = ridge_weights(gram - equations[i][0], xty - equations[i][1], settings.anchor_lam) if cross else weights
            priors = {p: GroupPrior(weights=w, degree=degree, power=p) for p in POWERS}
            patches = PatchSampler([scene], settings.patch_size, np.random.default_rng([settings.seed, 0x6A0, i]),
                                   scene_normaliser, augment=None)
            for _ in range(per_scene):
                batch = patches.sample(settings.batch_size)
                abundances = draw(batch.rgb).abundances.double()
                rgb = batch.rgb.double().repeat(settings.samples, 1, 1, 1)
                want = torch.from_numpy(label_groups(batch.labels.numpy(), scene.class_names))
                want = want.repeat(settings.samples, 1, 1)
                keep = (want >= 0) & batch.valid.repeat(settings.samples, 1, 1)
                for g in UNSCORED:
                    keep &= want != GROUPS.index(g)
                scored += int(keep.sum())
                for p, prior in priors.items():
                    grouped = torch.einsum("gn,bnhw->bghw", library_groups,
                                           prior.reweight(abundances, rgb, library_groups))
                    hits[p] += int((grouped.argmax(dim=1)[keep] == want[keep]).sum())
    if scored == 0:
        return None
    agreement = {p: hits[p] / scored for p in POWERS}
    power = max(POWERS, key=lambda p: (round(agreement[p], 4), -p))  # ties: the weaker prior
    prior = GroupPrior(weights=weights, degree=degree, power=power)
    info = {"source": f"degree-{degree} ridge from the RGB to the label groups of {len(labelled)} scene(s); "
                      f"power from {'cross-fitted' if cross else 'in-sample'} agreement on {scored:,} "
                      "labelled training pixels of the model's samples",
            "degree": degree, "power": power, "floor": prior.floor, "cross_fitted": cross, "pixels": scored,
            "agreement_by_power": {str(p): round(a, 4) for p, a in agreement.items()},
            "seconds": round(time.perf_counter() - t0, 1)}
    return prior, info


def attach_group_prior(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings | None = None
                       ) -> dict[str, Any] | None:
    """Measure :func:`group_prior` and store it in ``bundle`` (``abundance_prior``); None (nothing stored)
    when no scene has group labels."""
    measured = group_prior(bundle, scenes, settings)
    if measured is None:
        return None
    bundle.abundance_prior, bundle.abundance_prior_info = measured
    return measured[1]
