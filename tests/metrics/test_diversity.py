"""SD (eq. 26-28) and SDM (eq. 29) on constructed softmaxes with hand-computed answers."""

import numpy as np
import pytest
import torch

from hyperldm_engine.metrics.diversity import (
    SPREAD_ROWS,
    SDAccumulator,
    SDMAccumulator,
    kl_divergence,
    sample_diversity,
    softmax_statistics,
    spectral_diversity,
    spread_maps,
)

LOG2 = np.log(2.0)


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def probs():
    return softmax(np.random.default_rng(0).normal(0, 2, (600, 5)))


def direct_sd(v, n_s):
    cls = v.argmax(1)
    terms = []
    for i in range(n_s):
        g = v[cls == i]
        if len(g) == 0:
            terms.append(1.0)
            continue
        p = g.mean(0)
        terms.append(np.exp(np.mean(np.sum(g * np.log(g / p), axis=1))))
    return np.mean(terms)


def test_sd_matches_the_two_pass_formula(probs):
    res = spectral_diversity(probs)
    assert res.sd == pytest.approx(direct_sd(probs, 5), rel=1e-10)
    assert res.sd > 1.05
    # the per-pixel map averages to KL_i within each class
    cls = probs.argmax(1)
    for i in range(5):
        assert res.map[cls == i].mean() == pytest.approx(res.kl_per_class[i], rel=1e-8)


def test_uniform_softmax_gives_sd_one():
    res = spectral_diversity(np.full((50, 7), 1 / 7))
    assert res.sd == 1.0 and res.sd_present == 1.0
    assert res.counts.tolist() == [50, 0, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(res.map, 0.0)


def test_sd_by_hand_with_an_empty_class():
    # class 0: two pixels (0.9, 0.1, 0) and (0.7, 0.3, 0): p_0 = (0.8, 0.2, 0)
    # class 1: one pixel, KL 0; class 2: empty, contributes exp(0) = 1
    v = np.array([[0.9, 0.1, 0.0], [0.7, 0.3, 0.0], [0.2, 0.8, 0.0]])
    kl0 = 0.5 * (0.9 * np.log(0.9 / 0.8) + 0.1 * np.log(0.1 / 0.2)
                 + 0.7 * np.log(0.7 / 0.8) + 0.3 * np.log(0.3 / 0.2))
    res = spectral_diversity(v)
    assert res.kl_per_class[0] == pytest.approx(kl0, rel=1e-9)
    assert res.sd == pytest.approx((np.exp(kl0) + 1 + 1) / 3, rel=1e-9)
    assert res.sd_present == pytest.approx((np.exp(kl0) + 1) / 2, rel=1e-9)
    assert res.to_dict()["n_present"] == 2


def test_sd_permutation_invariance(probs):
    base = spectral_diversity(probs).sd
    rng = np.random.default_rng(1)
    assert spectral_diversity(probs[rng.permutation(len(probs))]).sd == pytest.approx(base, rel=1e-12)
    assert spectral_diversity(probs[:, rng.permutation(5)]).sd == pytest.approx(base, rel=1e-12)


def test_sd_mask_windows_and_band_first_maps(probs):
    mask = np.random.default_rng(2).random(600) > 0.3
    garbage = probs.copy()
    garbage[~mask] = np.nan
    a = spectral_diversity(probs[mask])
    b = spectral_diversity(garbage, mask)
    assert b.sd == pytest.approx(a.sd, rel=1e-12) and b.n_pixels == mask.sum()
    assert np.isnan(b.map[~mask]).all()
    # window by window == whole, on a (n_s, rows, cols) map
    cube = probs.T.reshape(5, 20, 30)
    acc = SDAccumulator(5)
    for rows in (slice(0, 7), slice(7, 20)):
        acc.update(cube[:, rows], mask.reshape(20, 30)[rows])
    assert acc.result().sd == pytest.approx(a.sd, rel=1e-12)
    pixel_map = np.concatenate([acc.pixel_map(cube[:, r], mask.reshape(20, 30)[r])
                                for r in (slice(0, 7), slice(7, 20))])
    np.testing.assert_allclose(pixel_map.reshape(-1)[mask], a.map, rtol=1e-12)


def test_sdm_identical_samples_is_exactly_one(probs):
    res = sample_diversity(np.stack([probs, probs, probs]))
    assert res.sdm == 1.0
    assert np.all(res.map == 0.0)


def test_sdm_one_hot_disagreement_by_hand():
    e0, e1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    # pixel 1: samples disagree (e0, e1) -> p = (1/2, 1/2), mean KL = log 2; pixel 2: agree -> 0
    probs = np.array([[e0, e0], [e1, e0]])  # (K=2, N=2, n_s=2)
    res = sample_diversity(probs)
    assert res.mean_kl == pytest.approx(LOG2 / 2, rel=1e-9)
    assert res.sdm == pytest.approx(np.sqrt(2.0), rel=1e-9)
    np.testing.assert_allclose(res.map, [LOG2, 0.0], rtol=1e-9, atol=1e-12)
    # global variant: p_all = (3/4, 1/4); KL(e0||p) = log 4/3 three times, KL(e1||p) = log 4 once
    kl_global = (3 * np.log(4 / 3) + np.log(4)) / 4
    assert res.mean_kl_global == pytest.approx(kl_global, rel=1e-9)
    assert res.sdm_global == pytest.approx(np.exp(kl_global), rel=1e-9)


def test_sdm_permutation_mask_streaming_and_torch(probs):
    rng = np.random.default_rng(3)
    k_probs = np.stack([probs, probs[rng.permutation(600)], softmax(rng.normal(0, 1, (600, 5)))])
    base = sample_diversity(k_probs)
    assert 1.0 < base.sdm < base.sdm_global
    perm = sample_diversity(k_probs[[2, 0, 1]][:, :, [4, 3, 2, 1, 0]])
    assert perm.sdm == pytest.approx(base.sdm, rel=1e-12)
    assert perm.sdm_global == pytest.approx(base.sdm_global, rel=1e-12)
    mask = rng.random(600) > 0.5
    garbage = k_probs.copy()
    garbage[1, ~mask] = 7.0
    masked = sample_diversity(garbage, mask)
    assert masked.sdm == pytest.approx(sample_diversity(k_probs[:, mask]).sdm, rel=1e-12)
    assert masked.sdm_global == pytest.approx(sample_diversity(k_probs[:, mask]).sdm_global, rel=1e-12)
    # windows of a (K, n_s, rows, cols) stack == whole; torch input accepted
    cube = np.moveaxis(k_probs, -1, 1).reshape(3, 5, 20, 30)
    acc = SDMAccumulator(5)
    maps = [acc.update(torch.from_numpy(cube[:, :, r])) for r in (slice(0, 11), slice(11, 20))]
    res = acc.result()
    assert res.sdm == pytest.approx(base.sdm, rel=1e-12)
    assert res.sdm_global == pytest.approx(base.sdm_global, rel=1e-12)
    np.testing.assert_allclose(np.concatenate(maps).reshape(-1), base.map, rtol=1e-12)


def test_kl_is_safe_with_zeros():
    assert kl_divergence([1.0, 0.0], [1.0, 0.0]) == 0.0
    assert np.isfinite(kl_divergence([1.0, 0.0], [0.0, 1.0]))
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        0.5 * np.log(2) + 0.5 * np.log(0.5 / 0.75), rel=1e-9)


def test_spread_known_answer() -> None:
    a = np.ones((4, 2, 3), np.float32)
    b = a.copy()
    b[:, 0, 0] = [1.0, 2.0, 1.0, 2.0]   # pixel (0, 0) of sample b differs in direction
    m = spread_maps(np.stack([a, b]))
    # per band std of two values x, y is |x - y| / 2: bands 1 and 3 differ by 1 -> mean 0.25
    assert m["std"][0, 0] == pytest.approx(0.25)
    assert m["std"][1, 2] == 0.0 and m["angle"][1, 2] == 0.0
    mean = (a[:, 0, 0] + b[:, 0, 0]) / 2
    cos = lambda u, v: float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))  # noqa: E731
    want = (np.arccos(cos(a[:, 0, 0], mean)) + np.arccos(cos(b[:, 0, 0], mean))) / 2
    assert m["angle"][0, 0] == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(m["mean"][:, 0, 0], mean)


def test_spread_in_row_blocks_matches_the_whole_tile() -> None:
    """A tile taller than one block (and not a multiple of it) gives the maps of the formula on the whole tile."""
    rng = np.random.default_rng(3)
    cubes = rng.random((3, 6, 2 * SPREAD_ROWS + 5, 4)).astype(np.float32)
    cubes[:, :, SPREAD_ROWS, 1] = 0.0  # a zero spectrum in the second block: angle 0 by definition
    m = spread_maps(cubes)
    c = cubes.astype(np.float64)
    mean = c.mean(0)
    np.testing.assert_array_equal(m["mean"], mean.astype(np.float32))
    np.testing.assert_array_equal(m["std"], c.std(0).mean(0).astype(np.float32))
    cos = (c * mean).sum(1) / np.linalg.norm(c, axis=1) / np.linalg.norm(mean, axis=0)
    want = np.arccos(np.clip(cos, -1, 1)).mean(0)
    want[SPREAD_ROWS, 1] = 0.0
    np.testing.assert_allclose(m["angle"], want, atol=2e-4)
    assert m["angle"][SPREAD_ROWS, 1] == 0.0 and m["angle"].max() > 0.1


def test_identical_softmaxes_give_zero_sdm_map() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=(6, 7)).transpose(2, 0, 1)
    stats = softmax_statistics(np.stack([p, p, p]))
    assert np.all(stats["sdm"] == 0.0)
    np.testing.assert_allclose(stats["pmean"], p)
    q = rng.dirichlet(np.ones(5), size=(6, 7)).transpose(2, 0, 1)
    assert np.all(softmax_statistics(np.stack([p, q]))["sdm"] > 0)
    assert np.all(softmax_statistics(np.stack([p, q]))["sdm"] <= np.log(2) + 1e-12)
