"""Similarity metrics against scikit-image and torchmetrics, and their mask / scale properties."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.functional.image import spectral_angle_mapper, structural_similarity_index_measure

from hyperldm_engine.metrics import similarity as S


@pytest.fixture(scope="module")
def cubes():
    rng = np.random.default_rng(7)
    ref = gaussian_filter(rng.uniform(0.05, 0.9, (5, 36, 41)), (0, 2, 2))
    pred = ref * (1 + 0.05 * rng.standard_normal(ref.shape)) + 0.01 * rng.standard_normal(ref.shape)
    return pred, ref


def test_ssim_per_band_matches_scikit_image(cubes):
    pred, ref = cubes
    ours = S.ssim_per_band(pred, ref, data_range=1.0)
    theirs = [structural_similarity(pred[b], ref[b], gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0) for b in range(5)]
    np.testing.assert_allclose(ours, theirs, atol=1e-10)
    assert 0.2 < ours.mean() < 0.99


def test_ssim_map_matches_torchmetrics_inside_the_border(cubes):
    # torchmetrics averages its reflect-padded map over the whole image; its map cropped by the 5 px
    # window radius is the same population as ours and scikit-image's.
    pred, ref = cubes
    p, r = torch.from_numpy(pred)[:, None], torch.from_numpy(ref)[:, None]
    _, full = structural_similarity_index_measure(p, r, data_range=1.0, reduction="none",
                                                  return_full_image=True)
    theirs = full[:, 0, 5:-5, 5:-5].mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(S.ssim_per_band(pred, ref), theirs, atol=1e-10)


def test_psnr_sam_rmse_mrae_match_references(cubes):
    pred, ref = cubes
    m = S.similarity_metrics(pred, ref)
    psnr = [peak_signal_noise_ratio(ref[b], pred[b], data_range=1.0) for b in range(5)]
    np.testing.assert_allclose(S.psnr_per_band(pred, ref), psnr, rtol=1e-12)
    assert m["mpsnr"] == pytest.approx(np.mean(psnr), rel=1e-12)
    sam_t = spectral_angle_mapper(torch.from_numpy(pred)[None], torch.from_numpy(ref)[None]).item()
    assert m["sam"] == pytest.approx(sam_t, rel=1e-9)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - ref) ** 2)), rel=1e-12)
    assert m["mrae"] == pytest.approx(np.mean(np.abs(pred - ref) / ref), rel=1e-12)
    assert m["mssim"] == pytest.approx(S.mssim(pred, ref), rel=1e-12)
    assert m["n_pixels"] == 36 * 41 and m["n_ssim_centres"] == 26 * 31


def test_known_spectral_angle_small_and_large():
    base = np.array([1.0, 0.0, 0.0])
    for angle in (1e-7, 0.0724, 1.2):
        other = np.array([np.cos(angle), np.sin(angle), 0.0]) * 3.0
        pred = np.broadcast_to(other[:, None, None], (3, 2, 2)).copy()
        ref = np.broadcast_to(base[:, None, None], (3, 2, 2)).copy()
        assert S.sam(pred, ref) == pytest.approx(angle, rel=1e-9)


def test_mrae_ignores_non_positive_reference():
    ref = np.array([[[0.5, 0.0], [-0.1, 0.25]]])
    pred = np.array([[[0.6, 9.0], [9.0, 0.2]]])
    assert S.mrae(pred, ref) == pytest.approx((0.1 / 0.5 + 0.05 / 0.25) / 2)


def test_identical_cubes():
    ref = np.random.default_rng(1).uniform(0.1, 0.8, (3, 20, 20))
    m = S.similarity_metrics(ref, ref)
    assert m["rmse"] == 0 and m["mrae"] == 0 and m["sam"] == pytest.approx(0, abs=1e-12)
    assert m["mpsnr"] == np.inf and m["mssim"] == pytest.approx(1.0, abs=1e-12)


def test_data_range_scaling(cubes):
    pred, ref = cubes
    a = S.similarity_metrics(pred, ref, data_range=1.0)
    b = S.similarity_metrics(pred * 4095, ref * 4095, data_range=4095.0)
    assert b["rmse"] == pytest.approx(a["rmse"] * 4095, rel=1e-12)
    for key in ("mrae", "sam", "mpsnr", "mssim"):
        assert b[key] == pytest.approx(a[key], rel=1e-9)


def test_mask_and_non_finite_pixels_are_ignored(cubes):
    pred, ref = cubes
    mask = np.ones(ref.shape[1:], bool)
    mask[10:14, 5:30] = False
    mask[30, 30] = False
    garbage_pred = pred.copy()
    garbage_pred[:, ~mask] = 1e6
    garbage_ref = ref.copy()
    garbage_ref[:, ~mask] = -3.0
    a = S.similarity_metrics(pred, ref, mask)
    b = S.similarity_metrics(garbage_pred, garbage_ref, mask)
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-12)
    nan_pred = pred.copy()
    nan_pred[2, ~mask] = np.nan  # one band non-finite is enough to drop the pixel
    c = S.similarity_metrics(nan_pred, ref)
    for key in a:
        assert c[key] == pytest.approx(a[key], rel=1e-12)
    assert a["n_pixels"] == mask.sum()
    # pixel metrics equal those of the valid pixels alone
    assert a["rmse"] == pytest.approx(np.sqrt(np.mean((pred[:, mask] - ref[:, mask]) ** 2)), rel=1e-12)
    # masked SSIM scores fewer centres, but an all-True mask is the unmasked result
    assert a["n_ssim_centres"] < 26 * 31
    assert S.mssim(pred, ref, np.ones(mask.shape, bool)) == S.mssim(pred, ref)


def test_grouped_sums_add_up_to_the_whole(cubes):
    pred, ref = cubes
    labels = (np.arange(41)[None, :] // 14 + 3 * (np.arange(36)[:, None] > 20)).astype(np.int64)
    groups = S.similarity_sums(pred, ref, labels=labels)
    assert sorted(groups) == [0, 1, 2, 3, 4, 5]
    total = S.ErrorSums(5)
    for s in groups.values():
        total += s
    whole = S.similarity_sums(pred, ref)[0]
    np.testing.assert_allclose(total.sq_err, whole.sq_err, rtol=1e-12)
    np.testing.assert_allclose(total.ssim_sum, whole.ssim_sum, rtol=1e-12)
    assert total.ssim_count == whole.ssim_count and total.n_pixels == whole.n_pixels
    one = labels == 4
    assert groups[4].rmse() == pytest.approx(np.sqrt(np.mean((pred[:, one] - ref[:, one]) ** 2)), rel=1e-12)
