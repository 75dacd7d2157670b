"""RGB radiometric augmentation: bounds, 8-bit storage, identity, determinism."""

import numpy as np

from hyperldm_engine.train.augment import AugmentConfig, Camera, apply_camera, draw_camera


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 0.6, (3, 32, 32)).astype(np.float32)


def test_many_cameras_keep_output_finite_non_negative_and_bounded():
    rgb = _scene()
    sample = rgb[:, ::4, ::4].reshape(3, -1)
    rng = np.random.default_rng(1)
    n_quantised = n_identity = 0
    for _ in range(200):
        cam = draw_camera(rng, sample)
        out = apply_camera(rgb, cam, rng)
        assert out.shape == rgb.shape and out.dtype == np.float32
        assert np.all(np.isfinite(out)) and out.min() >= 0.0
        if cam.full_scale is not None:
            n_quantised += 1
            assert out.max() <= 255.0 and np.array_equal(out, np.rint(out))
            assert len(np.unique(out)) > 20  # still an image, not saturated flat
        elif cam.is_identity:
            n_identity += 1
            assert np.array_equal(out, rgb)
        else:
            # gain <= 4, haze <= 0.5 mean, contrast <= 1.4 and gamma bounds keep values moderate
            assert out.max() < 4.0 * 1.4 * (1.5 * 0.6 / cam.pivot) ** 1.5 * cam.pivot + 1.0
    assert 20 < n_identity < 70          # p_identity = 0.2
    assert 50 < n_quantised < 120        # p_quantise = 0.5 of the rest


def test_camera_changes_colour_balance_and_scale():
    rgb = _scene()
    cam = Camera(pivot=float(rgb.mean()), gain=2.0, white_balance=(1.2, 1.0, 0.8))
    out = apply_camera(rgb, cam, np.random.default_rng(0))
    np.testing.assert_allclose(out[0], rgb[0] * 2.4, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out[2], rgb[2] * 1.6, rtol=1e-4, atol=1e-6)


def test_draws_are_reproducible_and_consume_fixed_randomness():
    sample = _scene()[:, ::4, ::4].reshape(3, -1)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [draw_camera(a, sample) for _ in range(10)] == [draw_camera(b, sample) for _ in range(10)]
    # the identity branch consumes as many draws as the others
    c = np.random.default_rng(4)
    d = np.random.default_rng(4)
    draw_camera(c, sample, AugmentConfig(p_identity=1.0))
    draw_camera(d, sample, AugmentConfig(p_identity=0.0))
    assert c.random() == d.random()
