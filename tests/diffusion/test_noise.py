"""Scene-level noise field: overlap identity, statistics, independence, speed, batch helpers."""

import time

import numpy as np
import pytest
import torch

from hyperldm_engine.diffusion.noise import (
    INITIAL_STEP,
    NoiseField,
    noise_fn_for_window,
    noise_fn_for_windows,
)
from hyperldm_engine.errors import InputError


def test_overlapping_random_windows_agree_bit_for_bit():
    field = NoiseField(seed=123, sample=0, channels=4, block=8)
    rng = np.random.default_rng(0)
    big = field.window_numpy(3, -5, 7, 60, 50)  # reference region rows -5..54, cols 7..56
    for _ in range(40):
        r0, c0 = int(rng.integers(-5, 40)), int(rng.integers(7, 45))
        h, w = int(rng.integers(1, 55 - r0)), int(rng.integers(1, 57 - c0))
        win = field.window(3, r0, c0, h, w)
        assert win.shape == (4, h, w) and win.dtype == torch.float32
        assert np.array_equal(win.numpy(), big[:, r0 + 5:r0 + 5 + h, c0 - 7:c0 - 7 + w])


def test_same_indices_same_values_and_different_indices_differ():
    a = NoiseField(7, 0, 4).window(0, 10, 10, 16, 16)
    assert torch.equal(a, NoiseField(7, 0, 4).window(0, 10, 10, 16, 16))
    for other in (NoiseField(8, 0, 4).window(0, 10, 10, 16, 16),
                  NoiseField(7, 1, 4).window(0, 10, 10, 16, 16),
                  NoiseField(7, 0, 4).window(1, 10, 10, 16, 16),
                  NoiseField(7, 0, 4).window(INITIAL_STEP, 10, 10, 16, 16)):
        assert not torch.equal(a, other)


def test_standard_normal_statistics():
    x = NoiseField(1, 0, 16).window_numpy(0, 0, 0, 128, 128).astype(np.float64)  # 262144 values
    n = x.size
    assert abs(x.mean()) < 4 / np.sqrt(n)
    assert abs(x.std() - 1) < 4 * np.sqrt(0.5 / n)
    assert abs(((x - x.mean()) ** 4).mean() / x.var() ** 2 - 3) < 0.05  # Gaussian kurtosis
    # Adjacent blocks and channels are uncorrelated.
    assert abs(np.corrcoef(x[:, :, 31].ravel(), x[:, :, 32].ravel())[0, 1]) < 0.03
    assert abs(np.corrcoef(x[0].ravel(), x[1].ravel())[0, 1]) < 0.01


def test_independence_across_samples_steps_and_seeds():
    ref = NoiseField(5, 0, 16).window_numpy(2, 0, 0, 64, 64).ravel()
    for other in (NoiseField(5, 1, 16).window_numpy(2, 0, 0, 64, 64),
                  NoiseField(5, 0, 16).window_numpy(3, 0, 0, 64, 64),
                  NoiseField(6, 0, 16).window_numpy(2, 0, 0, 64, 64)):
        corr = np.corrcoef(ref, other.ravel())[0, 1]
        assert abs(corr) < 4 / np.sqrt(ref.size)  # 65536 values: |r| < 0.016


def test_window_speed():
    field = NoiseField(0, 0, 16)
    field.window(0, 5, 5, 64, 64)
    t0 = time.perf_counter()
    for step in range(10):
        field.window(step, 5, 5, 64, 64)  # unaligned: touches 9 blocks
    per_window_ms = (time.perf_counter() - t0) * 100
    assert per_window_ms < 20, per_window_ms  # measured ~1.7 ms on one shared CPU core


def test_noise_fn_helpers_match_windows():
    field = NoiseField(11, 2, 4, block=16)
    fn = noise_fn_for_window(field, 8, 24, 20, 30, dtype=torch.float64)
    x_t = fn(INITIAL_STEP)
    assert x_t.shape == (1, 4, 20, 30) and x_t.dtype == torch.float64
    assert torch.equal(x_t[0], field.window(INITIAL_STEP, 8, 24, 20, 30, dtype=torch.float64))
    origins = [(0, 0), (0, 12), (12, 0)]
    batch = noise_fn_for_windows(field, origins, 20, 20)(4)
    assert batch.shape == (3, 4, 20, 20)
    for i, (r, c) in enumerate(origins):
        assert torch.equal(batch[i], field.window(4, r, c, 20, 20))
    # Overlapping tiles of one batch agree in their overlap.
    assert torch.equal(batch[0][:, :, 12:], batch[1][:, :, :8])
    # K samples of one tile: one field per batch element.
    fields = [NoiseField(11, k, 4, block=16) for k in range(3)]
    ks = noise_fn_for_windows(fields, [(5, 5)] * 3, 10, 10)(0)
    for k in range(3):
        assert torch.equal(ks[k], fields[k].window(0, 5, 5, 10, 10))


def test_prefetch_gives_the_same_values_in_any_order():
    field = NoiseField(3, 0, 4)
    plain = noise_fn_for_windows(field, [(0, 0), (0, 40)], 48, 48)
    fetched = noise_fn_for_windows(field, [(0, 0), (0, 40)], 48, 48, prefetch=True)
    for step in (INITIAL_STEP, 0, 1, 2, 7, 3):
        assert torch.equal(plain(step), fetched(step))


def test_bad_arguments():
    with pytest.raises(InputError):
        NoiseField(0, 0, 0)
    with pytest.raises(InputError):
        NoiseField(2 ** 70, 0, 4)
    with pytest.raises(InputError):
        NoiseField(0, 0, 4).window(0, 0, 0, 0, 4)
    with pytest.raises(InputError):
        noise_fn_for_windows([NoiseField(0, 0, 4)], [(0, 0), (1, 1)], 4, 4)


def test_tiles_sampled_with_the_field_agree_in_their_overlap():
    # A pointwise model sees the same x_T and noise in the overlap of two tiles, so DDPM gives
    # identical latents there: the noise side of seamless tiling.
    from hyperldm_engine.diffusion.samplers import DDPMSampler
    from hyperldm_engine.diffusion.schedule import NoiseSchedule

    sampler = DDPMSampler(NoiseSchedule.linear(num_steps=20))
    field = NoiseField(42, 0, 4, block=8)
    eps_fn = lambda x, t: torch.tanh(x) * (t + 1) / 20  # noqa: E731
    outs = []
    for c0 in (0, 10):
        fn = noise_fn_for_window(field, 3, c0, 16, 16)
        outs.append(sampler.sample(eps_fn, fn(INITIAL_STEP), fn))
    assert torch.equal(outs[0][..., 10:], outs[1][..., :6])


def test_field_pickles():
    import pickle

    field = NoiseField(9, 3, 4, block=16)
    assert torch.equal(pickle.loads(pickle.dumps(field)).window(2, 1, 1, 8, 8), field.window(2, 1, 1, 8, 8))
