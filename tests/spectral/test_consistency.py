"""Exact RGB consistency: the projected cube reproduces the RGB and keeps the metameric black."""

import numpy as np
import pytest
import torch

from hyperldm_engine.spectral.consistency import project_to_rgb, reprojection_error, row_space_projector
from hyperldm_engine.spectral.rgb import camera_response
from hyperldm_engine.spectral.sensor import default_sensor


@pytest.fixture(scope="module")
def response():
    return camera_response(default_sensor())


def _cubes(seed, n=3, bands=48, h=5, w=6):
    g = np.random.default_rng(seed)
    base = g.uniform(0.05, 0.6, (n, bands, 1, 1)) * np.linspace(0.5, 1.5, bands)[None, :, None, None]
    return (base + 0.05 * g.standard_normal((n, bands, h, w))).clip(0.01, None).astype(np.float32)


def test_projection_reproduces_rgb_exactly_without_clipping(response):
    cube = torch.from_numpy(_cubes(0))
    rgb = torch.from_numpy(np.einsum("cb,nbhw->nchw", response, _cubes(1))[0])
    out = project_to_rgb(cube.double(), rgb.double(), response, nonnegative=False)
    assert reprojection_error(out[1].numpy(), rgb.numpy(), response) < 1e-9
    # the change lies in the row space: the null-space (metameric black) part is untouched
    P = row_space_projector(response).numpy()
    null = np.eye(48) - P @ response
    before = np.einsum("ab,nbhw->nahw", null, cube.double().numpy())
    after = np.einsum("ab,nbhw->nahw", null, out.numpy())
    np.testing.assert_allclose(after, before, atol=1e-9)
    # diversity between samples is kept exactly in the black
    assert np.abs(after[0] - after[1]).max() > 0.01


def test_nonnegative_projection_is_close_and_valid(response):
    cube = torch.from_numpy(_cubes(2))
    target = _cubes(3)[0]
    rgb = torch.from_numpy(np.einsum("cb,bhw->chw", response, target))
    out = project_to_rgb(cube, rgb, response)
    assert float(out.min()) >= 0.0
    for k in range(3):
        assert reprojection_error(out[k].numpy(), rgb.numpy(), response) < 1e-4


def test_an_already_consistent_cube_is_unchanged(response):
    cube = _cubes(4)[0]
    rgb = np.einsum("cb,bhw->chw", response, cube)
    out = project_to_rgb(torch.from_numpy(cube), torch.from_numpy(rgb), response).numpy()
    np.testing.assert_allclose(out, cube, atol=1e-6)


def test_degenerate_response_is_refused():
    with pytest.raises(ValueError, match="linearly dependent"):
        row_space_projector(np.ones((3, 48)))


def _alternating_projection(cube, rgb, response, rounds):
    """The definition: ``rounds`` projections of the whole cube, each followed by a clip at 0."""
    S = torch.as_tensor(np.asarray(response, np.float32))
    P = row_space_projector(response).float()
    out = cube
    for _ in range(rounds):
        out = out + torch.einsum("bc,...chw->...bhw", P, rgb - torch.einsum("cb,...bhw->...chw", S, out))
        out = out.clamp_min(0.0)
    return out


def test_later_rounds_on_the_clipped_pixels_alone_equal_whole_cube_rounds(response):
    # dark, noisy spectra: many pixels go negative after the first projection; RGB broadcast over K
    g = np.random.default_rng(7)
    cube = torch.from_numpy((0.03 + 0.05 * g.standard_normal((4, 48, 9, 11))).astype(np.float32))
    rgb = torch.from_numpy(np.einsum("cb,bhw->chw", response, cube[0].numpy().clip(0, None))
                           + 0.01 * g.standard_normal((3, 9, 11))).float()[None]
    got = project_to_rgb(cube, rgb, response)
    want = _alternating_projection(cube, rgb, response, 6)
    assert bool((_alternating_projection(cube, rgb, response, 1) == 0).any())  # the case the rounds are for
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-6)
    assert float(got.min()) >= 0.0
    assert torch.equal(cube, torch.from_numpy((0.03 + 0.05 * np.random.default_rng(7).standard_normal(
        (4, 48, 9, 11))).astype(np.float32)))  # the input is left as it was


# ---- the covariance-weighted update (--rgb-correction spectral) ---------------------------------------

def _red_nir_covariance(bands=48, red=20, nir=40, rho=0.9):
    """A prior in which the near-infrared band ``nir`` moves with the visible band ``red`` (corr. -rho)."""
    C = np.eye(bands) * 1e-3
    C[red, nir] = C[nir, red] = -rho * 1e-3
    return C


def test_covariance_update_reproduces_rgb_exactly_and_identity_is_the_smallest_change(response):
    cube = torch.from_numpy(_cubes(10)).double()
    rgb = torch.from_numpy(np.einsum("cb,bhw->chw", response, _cubes(11)[0])).double()
    g = np.random.default_rng(3)
    a = g.standard_normal((48, 48))
    C = a @ a.T / 48 + 1e-3 * np.eye(48)
    out = project_to_rgb(cube, rgb, response, nonnegative=False, covariance=C)
    for k in range(3):
        assert reprojection_error(out[k].numpy(), rgb.numpy(), response) < 1e-9
    np.testing.assert_allclose(row_space_projector(response, np.eye(48) * 0.37).numpy(),
                               row_space_projector(response).numpy(), atol=1e-12)
    # the update is the Gaussian posterior mean: C S^T (S C S^T)^-1, so S @ P = identity (3 x 3)
    P = row_space_projector(response, C).numpy()
    np.testing.assert_allclose(np.asarray(response, np.float64) @ P, np.eye(3), atol=1e-9)


def test_covariance_update_moves_the_bands_the_sensor_cannot_see(response):
    """The smallest change never touches a band outside the response (here 40: ~880 nm); the
    covariance-weighted one moves it against the visible band it anti-correlates with."""
    S = np.asarray(response, np.float64)
    red = int(np.argmax(S[0]))
    assert S[:, 40].max() == 0  # a near-infrared band the camera does not see
    cube = torch.full((48, 2, 2), 0.3, dtype=torch.float64)
    rgb = torch.from_numpy(np.einsum("cb,bhw->chw", S, cube.numpy())) + torch.tensor([0.05, 0, 0])[:, None, None]
    minimum = project_to_rgb(cube, rgb, S, nonnegative=False)
    spectral = project_to_rgb(cube, rgb, S, nonnegative=False, covariance=_red_nir_covariance(red=red))
    assert float((minimum[40] - cube[40]).abs().max()) == 0.0
    assert float((spectral[40] - cube[40]).max()) < -0.01  # redder than drawn -> less near infrared
    assert reprojection_error(spectral.numpy(), rgb.numpy(), S) < 1e-9


@pytest.mark.parametrize("bad, message", [
    (np.eye(47), r"must be \(48, 48\)"),
    (np.triu(np.ones((48, 48))), "symmetric"),
    (-np.eye(48), "positive semi-definite"),
    (np.full((48, 48), np.nan), "finite"),
])
def test_a_bad_covariance_is_refused(response, bad, message):
    with pytest.raises(ValueError, match=message):
        row_space_projector(response, bad)


def test_second_moment_and_library_covariance():
    from hyperldm_engine.spectral.consistency import library_covariance, second_moment

    e = np.array([[1.0, 0.0], [0.0, 2.0], [np.nan, 5.0]])  # the NaN row is left out
    m = second_moment(e, jitter=0.0)
    np.testing.assert_allclose(m, [[0.5, 0.0], [0.0, 2.0]])
    assert second_moment(e, jitter=0.1)[0, 0] == pytest.approx(0.5 + 0.1 * 1.25)
    with pytest.raises(ValueError, match="no finite"):
        second_moment(np.full((2, 2), np.nan))
    lib = np.random.default_rng(0).uniform(0, 1, (48, 30))
    C = library_covariance(lib, jitter=0.0)
    np.testing.assert_allclose(C, np.cov(lib, bias=True), atol=1e-12)


def test_ensemble_update_moves_the_mean_and_keeps_the_spread(response):
    from hyperldm_engine.spectral.consistency import project_ensemble

    S = np.asarray(response, np.float64)
    g = np.random.default_rng(5)
    a = g.standard_normal((48, 48))
    C = a @ a.T / 48 + 1e-3 * np.eye(48)
    cubes = torch.from_numpy(0.3 + 0.01 * g.standard_normal((4, 48, 3, 3)))  # no value near 0: nothing clips
    rgb = torch.from_numpy(np.einsum("cb,bhw->chw", S, cubes[0].numpy()) + 0.01)
    out = project_ensemble(cubes, rgb, S, C)
    for k in range(4):
        assert reprojection_error(out[k].numpy(), rgb.numpy(), S) < 1e-9
    spectral_mean = project_to_rgb(cubes.mean(0), rgb, S, covariance=C)
    np.testing.assert_allclose(out.mean(0).numpy(), spectral_mean.numpy(), atol=1e-12)
    minimum = project_to_rgb(cubes, rgb, S)
    np.testing.assert_allclose((out[1:] - out[:1]).numpy(), (minimum[1:] - minimum[:1]).numpy(), atol=1e-12)
    # one sample: the covariance-weighted update itself
    np.testing.assert_allclose(project_ensemble(cubes[:1], rgb, S, C)[0].numpy(),
                               project_to_rgb(cubes[0], rgb, S, covariance=C).numpy(), atol=1e-12)


def test_auto_correction_is_ensemble_on_surface_reflectance_and_minimum_on_toa():
    from hyperldm_engine.spectral.consistency import choose_rgb_correction

    assert choose_rgb_correction("auto", "surface") == "ensemble"
    assert choose_rgb_correction("auto", "surface", anchored=True) == "anchored"
    assert choose_rgb_correction("auto", "toa") == "minimum"
    assert choose_rgb_correction("auto", "toa", anchored=True) == "minimum"
    # an anchor measured on top-of-atmosphere scenes too has seen path radiance: it corrects TOA input
    assert choose_rgb_correction("auto", "toa", anchored=True, anchored_toa=True) == "anchored"
    assert choose_rgb_correction("auto", "toa", anchored=False, anchored_toa=True) == "minimum"
    assert choose_rgb_correction("spectral", "toa") == "spectral"
    with pytest.raises(ValueError, match="--rgb-correction"):
        choose_rgb_correction("kalman", "surface")


def test_uncertain_target_makes_the_exact_projection_the_kalman_update():
    """Projecting exactly onto ``uncertain_target`` = x + C S^T (S C S^T + R)^-1 (rgb - S x); R = 0 gives the
    RGB back, a huge R the cube's own RGB."""
    from hyperldm_engine.spectral.consistency import project_to_rgb, uncertain_target

    rng = np.random.default_rng(3)
    n = 12
    S = rng.uniform(0, 1, (3, n))
    S /= S.sum(1, keepdims=True)
    a = rng.normal(size=(n, n))
    C = a @ a.T / n + 0.1 * np.eye(n)
    x = torch.from_numpy(rng.uniform(0.2, 0.6, (n, 4, 5)))
    y = torch.from_numpy(rng.uniform(0.2, 0.6, (3, 4, 5)))
    R = np.diag([1e-3, 4e-3, 2e-3])
    target = uncertain_target(x, y, S, C, R)
    got = project_to_rgb(x, target, S, covariance=C, nonnegative=False)
    K = C @ S.T @ np.linalg.inv(S @ C @ S.T + R)
    want = x.numpy() + np.einsum("bc,chw->bhw", K, y.numpy() - np.einsum("cb,bhw->chw", S, x.numpy()))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)  # project_to_rgb holds S in float32
    np.testing.assert_allclose(uncertain_target(x, y, S, C, np.zeros((3, 3))).numpy(), y.numpy(), atol=1e-10)
    own = np.einsum("cb,bhw->chw", S, x.numpy())
    np.testing.assert_allclose(uncertain_target(x, y, S, None, np.eye(3) * 1e9).numpy(), own, atol=1e-6)
