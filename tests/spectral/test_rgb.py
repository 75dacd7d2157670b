"""Camera response and band selection."""

import numpy as np
import pytest

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.rgb import camera_response, rgb_from_cube, select_bands
from hyperldm_engine.spectral.sensor import default_sensor


def test_camera_response_normalised_and_no_invented_nir():
    s = default_sensor()
    r = camera_response(s)
    assert r.shape == (3, 48)
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-6)
    # Nikon data stop at 780 nm: no response beyond ~800 nm (colour's default would extend it)
    assert r[:, s.centers_nm > 800].max() < 1e-4
    # channels peak in the right order: blue < green < red
    peaks = s.centers_nm[r.argmax(1)]
    assert peaks[2] < peaks[1] < peaks[0]
    assert 560 < peaks[0] < 640 and 500 < peaks[1] < 570 and 420 < peaks[2] < 490
    with pytest.raises(InputError):
        camera_response(s, "no such camera")


def test_rgb_from_cube_is_the_integral():
    s = default_sensor()
    r = camera_response(s)
    cube = np.random.default_rng(1).random((48, 5, 4)).astype(np.float32)
    rgb = rgb_from_cube(cube, r)
    expected = np.einsum("cb,bhw->chw", r.astype(np.float64), cube.astype(np.float64))
    np.testing.assert_allclose(rgb, expected, rtol=1e-5)
    flat = np.full((48, 2, 2), 0.3, np.float32)
    np.testing.assert_allclose(rgb_from_cube(flat, r), 0.3, rtol=1e-5)


def test_select_bands_one_based():
    cube = np.arange(48)[:, None, None] * np.ones((1, 2, 3))
    rgb = select_bands(cube, (23, 12, 5))
    np.testing.assert_array_equal(rgb[:, 0, 0], [22, 11, 4])
    with pytest.raises(InputError):
        select_bands(cube, (49, 1, 1))
    with pytest.raises(InputError):
        select_bands(cube, (0, 1, 1))
