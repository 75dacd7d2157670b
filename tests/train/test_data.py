"""Patch sampling: determinism, nodata rejection, held-out rows never sampled, refusals."""

import numpy as np
import pytest
import torch

from hyperldm_engine.errors import InputError
from hyperldm_engine.train.data import (
    PatchSampler,
    TrainScene,
    heldout_patches,
    heldout_row0,
    labelled_pixels,
    valid_origins,
)


def mean_normaliser(rgb, sample, ok):
    return rgb / max(float(sample[:, ok].mean()), 1e-6)


def make_scene(h=40, w=36, bands=5, seed=0, hole=None, patch=8):
    rng = np.random.default_rng(seed)
    # encode the pixel position in the cube so that patches can be located exactly
    rows, cols = np.mgrid[0:h, 0:w]
    hsi = np.stack([rows, cols] + [rng.random((h, w)) for _ in range(bands - 2)]).astype(np.float32)
    valid = np.ones((h, w), bool)
    if hole is not None:
        valid[hole] = False
    labels = (rows // 10 + cols // 12).astype(np.int64) % 3
    labels[0, :] = -1
    return TrainScene(name=f"s{seed}.tif", hsi=hsi, rgb=rng.random((3, h, w)).astype(np.float32), valid=valid,
                      wavelengths_nm=np.linspace(400, 900, bands), fwhm_nm=np.full(bands, 100.0),
                      labels=labels, class_names=["a", "b", "c"],
                      heldout_row0=heldout_row0(h, patch, 0.1))


def test_heldout_rows_are_at_least_one_patch_and_never_sampled():
    s = make_scene()
    assert s.heldout_row0 == 32  # ceil(4) < 8 -> 8 rows held out
    sampler = PatchSampler([s], 8, np.random.default_rng(0), mean_normaliser)
    batch = sampler.sample(64)
    # undo orientation: rows of a patch come from channel 0 (row index); max row < held-out start
    assert batch.hsi[:, 0].max() < s.heldout_row0
    assert batch.hsi.shape == (64, 5, 8, 8) and batch.rgb.shape == (64, 3, 8, 8)
    assert batch.labels.shape == (64, 8, 8)
    with pytest.raises(InputError, match="too few"):
        heldout_row0(12, 8, 0.1, "x.tif")


def test_same_seed_same_batches_and_different_seed_differs():
    s = make_scene()
    a = PatchSampler([s], 8, np.random.default_rng(5), mean_normaliser).sample(6)
    b = PatchSampler([s], 8, np.random.default_rng(5), mean_normaliser).sample(6)
    c = PatchSampler([s], 8, np.random.default_rng(6), mean_normaliser).sample(6)
    assert torch.equal(a.hsi, b.hsi) and torch.equal(a.rgb, b.rgb)
    assert not torch.equal(a.hsi, c.hsi)


def test_patches_with_nodata_rejected_and_scene_without_room_refused():
    hole = (slice(0, 32), slice(10, 36))
    s = make_scene(hole=hole)
    origins = valid_origins(s, 8, 0.9)
    cols = origins % 36
    assert origins.size and cols.max() <= 2  # only windows left of the hole (>= 90 % valid)
    batch = PatchSampler([s], 8, np.random.default_rng(0), mean_normaliser, orient=False).sample(20)
    assert batch.valid.float().mean(dim=(1, 2)).min() >= 0.9
    empty = make_scene(hole=(slice(None), slice(None)))
    with pytest.raises(InputError, match=r"s0\.tif: too few valid pixels"):
        PatchSampler([empty], 8, np.random.default_rng(0), mean_normaliser)


def test_statistics_are_scene_level_not_per_patch():
    s = make_scene()
    sampler = PatchSampler([s], 8, np.random.default_rng(0), mean_normaliser, orient=False, augment=None)
    batch = sampler.sample(4)
    scale = float(s.rgb[:, ::1, ::1].mean())
    # the patch was divided by the scene mean, so its own mean is not forced to 1
    means = batch.rgb.mean(dim=(1, 2, 3))
    assert torch.all((means - 1).abs() > 1e-3)
    assert scale > 0


def test_heldout_patches_and_labelled_pixels_come_from_the_right_rows():
    s = make_scene()
    hp = heldout_patches(s, 8, mean_normaliser)
    assert hp.hsi[:, 0].min() >= s.heldout_row0 and hp.hsi.shape[0] == 4
    x, y = labelled_pixels([s], "train")
    assert x.shape == (31 * 36, 5) and set(np.unique(y)) <= {0, 1, 2}  # row 0 unlabelled
    assert x[:, 0].max() < s.heldout_row0
    xh, _ = labelled_pixels([s], "heldout")
    assert xh[:, 0].min() >= s.heldout_row0


def test_multiple_scenes_all_used():
    scenes = [make_scene(seed=0), make_scene(seed=1, h=48, w=48)]
    sampler = PatchSampler(scenes, 8, np.random.default_rng(0), mean_normaliser, orient=False)
    batch = sampler.sample(40)
    # scene 1 has columns up to 47, scene 0 only up to 35
    assert batch.hsi[:, 1].amax(dim=(1, 2)).max() > 36
    assert (batch.hsi[:, 1].amax(dim=(1, 2)) < 36).any()
