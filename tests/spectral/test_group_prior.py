"""The class-group prior of the abundances (spectral.groups.GroupPrior)."""

import numpy as np
import pytest
import torch

from hyperldm_engine.spectral.groups import GROUPS, GroupPrior, group_matrix


def _prior(power, favoured="vegetation"):
    w = np.zeros((10, len(GROUPS)))
    w[0, :] = 0.1                       # intercept: every group a little
    w[0, GROUPS.index(favoured)] = 0.9  # and one group most
    return GroupPrior(weights=w, degree=2, power=power)


def test_probabilities_sum_to_one_and_respect_the_floor():
    prior = _prior(1.0)
    rgb = torch.from_numpy(np.random.default_rng(0).uniform(0, 1, (3, 4, 5)))
    p = prior.probabilities(rgb)
    assert p.shape == (len(GROUPS), 4, 5)
    np.testing.assert_allclose(p.sum(0).numpy(), 1.0, rtol=1e-12)
    favoured = p[GROUPS.index("vegetation")].numpy()
    np.testing.assert_allclose(favoured, 0.9 / (0.9 + 5 * 0.1))  # 0.1 is above the floor: kept as is
    low = GroupPrior(weights=-np.ones((10, len(GROUPS))), degree=2, power=1.0).probabilities(rgb)
    np.testing.assert_allclose(low.numpy(), 1 / len(GROUPS))  # all below the floor: uniform


def test_reweight_keeps_abundances_a_mix_and_moves_the_dominant_group():
    classes = ["soil", "vegetation", "water", "paint"]
    groups = torch.from_numpy(group_matrix(classes)).double()
    a = torch.tensor([0.5, 0.3, 0.1, 0.1], dtype=torch.float64)[:, None, None].repeat(1, 2, 3)
    rgb = torch.full((3, 2, 3), 0.5, dtype=torch.float64)
    np.testing.assert_array_equal(_prior(0.0).reweight(a, rgb, groups).numpy(), a.numpy())  # power 0: as decoded
    out = _prior(2.0).reweight(a, rgb, groups)
    np.testing.assert_allclose(out.sum(0).numpy(), 1.0)
    assert (out >= 0).all()
    dominant = torch.einsum("gn,nhw->ghw", groups, out).argmax(0)
    assert (dominant == GROUPS.index("vegetation")).all()  # was bare (soil 0.5) before the prior
    # within a group the decoder's proportions stay: here vegetation has one spectrum, bare one
    ratio = (out[0] / a[0]) / (out[1] / a[1])
    p = _prior(2.0).probabilities(rgb)
    np.testing.assert_allclose(ratio.numpy(), ((p[GROUPS.index("bare")] / p[GROUPS.index("vegetation")]) ** 2).numpy())


def test_check_refuses_bad_priors():
    _prior(1.0).check()
    with pytest.raises(ValueError, match="shape"):
        GroupPrior(weights=np.zeros((10, 3)), degree=2, power=1.0).check()
    with pytest.raises(ValueError, match="power >= 0"):
        _prior(-1.0).check()


def test_reweighting_summed_bands_equals_reweighting_each_spectrum():
    """The pipeline re-weights the abundances after summing them by class (a few bands, not hundreds):
    the same result, since each class lies in one group."""
    from hyperldm_engine.spectral.groups import class_groups

    library = ["soil", "soil", "vegetation", "water", "paint", "roof_tile", "vegetation"]
    names, by_class = class_groups(library)
    g = np.random.default_rng(1)
    a = torch.from_numpy(g.dirichlet(np.ones(len(library)), size=(3, 4)).transpose(2, 0, 1).copy())
    rgb = torch.from_numpy(g.uniform(0, 1, (3, 3, 4)))
    prior = GroupPrior(weights=g.normal(0.2, 0.3, (10, len(GROUPS))), degree=2, power=3.0)
    per_spectrum = torch.einsum("cn,nhw->chw", torch.from_numpy(by_class).double(),
                                prior.reweight(a, rgb, torch.from_numpy(group_matrix(library)).double()))
    summed = prior.reweight(torch.einsum("cn,nhw->chw", torch.from_numpy(by_class).double(), a), rgb,
                            torch.from_numpy(group_matrix(names)).double())
    np.testing.assert_allclose(summed.numpy(), per_spectrum.numpy(), rtol=1e-12)
