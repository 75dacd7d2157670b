"""Material groups: library and land-cover classes map to the same few groups; agreement is scored right."""

import numpy as np

from hyperldm_engine.simulate.landcover import CLASS_NAMES
from hyperldm_engine.spectral.groups import (
    GROUPS,
    LABEL_CLASS_GROUP,
    dominant_group_agreement,
    group_matrix,
    label_groups,
)
from hyperldm_engine.spectral.library import decoder_library
from hyperldm_engine.spectral.sensor import default_sensor


def test_every_land_cover_class_and_library_class_has_a_group():
    assert set(CLASS_NAMES) <= set(LABEL_CLASS_GROUP)
    _, meta = decoder_library(default_sensor())
    m = group_matrix([x["class"] for x in meta])
    assert m.shape == (len(GROUPS), len(meta)) and (m.sum(0) == 1).all()
    assert m[GROUPS.index("vegetation")].sum() > 10 and m[GROUPS.index("water")].sum() >= 1


def test_agreement_known_answer():
    names = ["water", "trees", "road", "cloud"]
    labels = np.array([[0, 1], [2, 3]])
    assert label_groups(labels, names).tolist() == [[0, 1], [4, 5]]
    grouped = np.zeros((len(GROUPS), 2, 2))
    grouped[GROUPS.index("water"), 0, 0] = 1  # right
    grouped[GROUPS.index("bare"), 0, 1] = 1  # wrong (trees)
    grouped[GROUPS.index("built"), 1, 0] = 1  # right
    grouped[GROUPS.index("water"), 1, 1] = 1  # cloud: not scored
    assert dominant_group_agreement(grouped, labels, names) == 2 / 3
