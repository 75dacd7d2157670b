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
