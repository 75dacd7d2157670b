"""Decoder library and simulation pools."""

import numpy as np
import pytest

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.library import DECODER_FAMILIES, decoder_library, load_spectra, simulation_pool
from hyperldm_engine.spectral.sensor import default_sensor


def test_decoder_library_balanced_reproducible_train_only():
    s = default_sensor()
    R, meta = decoder_library(s, size=300, seed=0)
    assert R.shape == (48, 300) and R.dtype == np.float32 and len(meta) == 300
    assert {m["split"] for m in meta} == {"train"}
    families = {m["family"] for m in meta}
    assert families == set(DECODER_FAMILIES)
    counts = {f: sum(m["family"] == f for m in meta) for f in families}
    # families with enough spectra get equal shares (within one slot)
    big = [counts[f] for f in ("vegetation", "soil", "roof", "pavement", "npv")]
    assert max(big) - min(big) <= 1
    assert len({m["id"] for m in meta}) == 300
    R2, meta2 = decoder_library(s, size=300, seed=0)
    np.testing.assert_array_equal(R, R2)
    assert [m["id"] for m in meta] == [m["id"] for m in meta2]
    _, meta3 = decoder_library(s, size=300, seed=1)
    assert [m["id"] for m in meta] != [m["id"] for m in meta3]
    # columns are the resampled library spectra
    c = load_spectra()
    k = int(np.flatnonzero(c.ids == meta[7]["id"])[0])
    np.testing.assert_allclose(R[:, 7], c.subset(np.array([k])).resampled(s)[0], rtol=1e-6)


def test_pools_disjoint_and_validated():
    train, held = simulation_pool("train"), simulation_pool("heldout")
    assert not set(train.ids) & set(held.ids)
    assert len(train) + len(held) == len(load_spectra())
    with pytest.raises(InputError):
        simulation_pool("test")
