"""The anchored RGB correction's pieces (spectral.fusion) and the ensemble update about a given centre."""

import numpy as np
import pytest
import torch

from hyperldm_engine.spectral.consistency import project_ensemble, project_to_rgb, reprojection_error
from hyperldm_engine.spectral.fusion import RegressionAnchor, fusion_gain, n_features, poly_features, ridge_weights
from hyperldm_engine.spectral.rgb import camera_response
from hyperldm_engine.spectral.sensor import default_sensor


def test_poly_features_are_the_ridge_baselines_and_agree_along_any_axis():
    from hyperldm_engine.train.baselines import poly_features as baseline_features

    rgb = np.random.default_rng(0).uniform(0, 1, (3, 4, 5))
    image = poly_features(torch.from_numpy(rgb), 2).numpy()  # (10, 4, 5)
    assert image.shape == (n_features(2), 4, 5)
    pixels = rgb.reshape(3, -1).T
    np.testing.assert_allclose(image.reshape(10, -1).T, baseline_features(pixels, 2))
    r, g, b = pixels.T
    squares = np.stack([r * r, g * g, b * b, r * g, r * b, g * b], 1)
    np.testing.assert_allclose(baseline_features(pixels, 2)[:, 4:], squares)
    assert poly_features(torch.from_numpy(rgb), 1).shape[0] == n_features(1) == 4
    with pytest.raises(ValueError, match="degree"):
        poly_features(torch.from_numpy(rgb), 3)


def test_ridge_weights_recover_a_polynomial_map_and_leave_the_intercept_unpenalised():
    g = np.random.default_rng(1)
    x = poly_features(torch.from_numpy(g.uniform(0, 1, (500, 3))), 2, dim=1).numpy()
    w_true = g.standard_normal((10, 6))
    y = x @ w_true
    np.testing.assert_allclose(ridge_weights(x.T @ x, x.T @ y, 1e-12), w_true, atol=1e-6)
    # a huge penalty shrinks every coefficient but the intercept, which goes to the mean
    w = ridge_weights(x.T @ x, x.T @ y, 1e6)
    np.testing.assert_allclose(w[0], y.mean(0), rtol=1e-3)
    assert np.abs(w[1:]).max() < 1e-3


def test_fusion_gain_is_the_regression_of_the_error_on_the_disagreement():
    g = np.random.default_rng(2)
    n, bands = 200_000, 5
    truth = g.standard_normal((n, bands))
    sample = truth + 1.0 * g.standard_normal((n, bands))   # error variance 1
    anchor = truth + 0.5 * g.standard_normal((n, bands))   # error variance 0.25, independent
    e, d = truth - sample, anchor - sample
    gain, residual = fusion_gain(e.T @ e / n, e.T @ d / n, d.T @ d / n)
    # independent errors: the optimal weight on the anchor is 1 / (1 + 0.25) = 0.8, fused variance 0.2
    np.testing.assert_allclose(gain, 0.8 * np.eye(bands), atol=0.01)
    np.testing.assert_allclose(np.diag(residual), 0.2, atol=0.005)
    fused = sample + d @ gain.T
    assert np.mean((fused - truth) ** 2) == pytest.approx(0.2, abs=0.005)
    np.testing.assert_allclose(residual, residual.T)


def _anchor(bands=48, gain=0.5):
    g = np.random.default_rng(3)
    return RegressionAnchor(weights=0.1 * g.uniform(0, 1, (10, bands)), degree=2, gain=gain * np.eye(bands),
                            covariance=np.eye(bands) * 1e-3)


def test_regression_anchor_predicts_centres_and_checks_its_shapes():
    anchor = _anchor()
    rgb = torch.from_numpy(np.random.default_rng(4).uniform(0, 1, (2, 3, 4, 5)))
    a = anchor.predict(rgb)
    assert a.shape == (2, 48, 4, 5)
    x = poly_features(rgb[0], 2).reshape(10, -1).numpy()
    np.testing.assert_allclose(a[0].reshape(48, -1).numpy(), anchor.weights.T @ x)
    mean = torch.zeros_like(a)
    np.testing.assert_allclose(anchor.centre(mean, a.clone()).numpy(), 0.5 * a.numpy())  # gain 0.5: half way
    anchor.check(48)
    with pytest.raises(ValueError, match="weights has shape"):
        anchor.check(40)
    bad = RegressionAnchor(weights=anchor.weights, degree=2, gain=anchor.gain * np.nan, covariance=anchor.covariance)
    with pytest.raises(ValueError, match="gain contains NaN"):
        bad.check(48)


def _network_anchor(bands=48, gain=0.5):
    from hyperldm_engine.models.residual_cnn import ResidualCNN
    from hyperldm_engine.spectral.fusion import NetworkAnchor

    torch.manual_seed(0)
    net = ResidualCNN(bands, width=8, blocks=1)
    torch.nn.init.normal_(net.tail.weight, std=0.05)  # a trained network's context branch is not zero
    return NetworkAnchor(net=net.eval(), gain=gain * np.eye(bands), covariance=np.eye(bands) * 1e-3)


def test_network_anchor_predicts_with_the_network_in_any_batch_shape_and_dtype():
    anchor = _network_anchor()
    rgb = torch.from_numpy(np.random.default_rng(6).uniform(0, 1, (2, 3, 3, 8, 8)))  # float64, two leading dims
    a = anchor.predict(rgb)
    assert a.shape == (2, 3, 48, 8, 8) and a.dtype == torch.float64
    with torch.no_grad():
        direct = anchor.net(rgb[1, 2][None].float())[0]
    np.testing.assert_allclose(a[1, 2].numpy(), direct.numpy(), rtol=1e-6, atol=1e-7)
    # a spatial map: the centre pixel's cube changes when a neighbour's colour does (a ridge's would not)
    moved = rgb.clone()
    moved[1, 2, :, 4, 5] += 0.5
    assert not torch.allclose(anchor.predict(moved)[1, 2, :, 4, 4], a[1, 2, :, 4, 4])
    mean = torch.zeros_like(a)
    np.testing.assert_allclose(anchor.centre(mean, a.clone()).numpy(), 0.5 * a.numpy())  # the same fusion
    assert anchor.kind == "cnn" and "width 8, 1 blocks" in anchor.describe()
    anchor.check(48)
    with pytest.raises(ValueError, match="gain has shape"):
        anchor.check(40)
    with torch.no_grad():
        anchor.net.head.bias[0] = float("nan")
    with pytest.raises(ValueError, match=r"head\.bias contains NaN"):
        anchor.check(48)


def test_joint_anchor_stacks_both_maps_and_fuses_each_by_its_part_of_the_gain():
    from hyperldm_engine.spectral.fusion import JointAnchor

    ridge, cnn = _anchor(), _network_anchor()
    g = np.random.default_rng(7)
    g_ridge, g_cnn = 0.01 * g.standard_normal((48, 48)), 0.01 * g.standard_normal((48, 48))
    joint = JointAnchor(weights=ridge.weights, degree=2, net=cnn.net, gain=np.concatenate([g_ridge, g_cnn], 1),
                        covariance=np.eye(48) * 1e-3)
    rgb = torch.from_numpy(np.random.default_rng(8).uniform(0, 1, (2, 3, 8, 8)))
    a = joint.predict(rgb)
    assert a.shape == (2, 96, 8, 8)
    np.testing.assert_allclose(a[:, :48].numpy(), ridge.predict(rgb).numpy())
    np.testing.assert_allclose(a[:, 48:].numpy(), cnn.predict(rgb).numpy(), rtol=1e-6, atol=1e-7)
    mean = torch.from_numpy(np.random.default_rng(9).uniform(0, 0.5, (2, 48, 8, 8)))
    want = (mean.numpy() + np.einsum("ij,bjhw->bihw", g_ridge, a[:, :48].numpy() - mean.numpy())
            + np.einsum("ij,bjhw->bihw", g_cnn, a[:, 48:].numpy() - mean.numpy()))
    np.testing.assert_allclose(joint.centre(mean, a.clone()).numpy(), want, rtol=1e-9, atol=1e-12)
    assert joint.kind == "ridge+cnn" and "fused jointly" in joint.describe()
    joint.check(48)
    with pytest.raises(ValueError, match="gain has shape"):
        JointAnchor(weights=ridge.weights, degree=2, net=cnn.net, gain=g_ridge, covariance=np.eye(48)).check(48)


def test_anchor_sees_toa_only_when_its_scenes_had_toa_radiometry():
    from hyperldm_engine.spectral.fusion import anchor_sees_toa

    assert anchor_sees_toa({"radiometries": ["surface", "toa"]}) and anchor_sees_toa({"radiometries": ["mixed"]})
    assert not anchor_sees_toa({"radiometries": ["surface"]}) and not anchor_sees_toa(None)
    assert not anchor_sees_toa({})  # bundles measured before the record said


def test_ensemble_about_a_centre_makes_it_the_mean_and_keeps_the_spread():
    S = np.asarray(camera_response(default_sensor()), np.float64)
    g = np.random.default_rng(5)
    a = g.standard_normal((48, 48))
    C = a @ a.T / 48 + 1e-3 * np.eye(48)
    cubes = torch.from_numpy(0.3 + 0.01 * g.standard_normal((4, 48, 3, 3)))  # no value near 0: nothing clips
    centre = torch.from_numpy(0.35 + 0.01 * g.standard_normal((1, 48, 3, 3)))
    rgb = torch.from_numpy(np.einsum("cb,bhw->chw", S, cubes[0].numpy()) + 0.01)
    out = project_ensemble(cubes, rgb, S, C, centre=centre)
    for k in range(4):
        assert reprojection_error(out[k].numpy(), rgb.numpy(), S) < 1e-9
    np.testing.assert_allclose(out.mean(0).numpy(), project_to_rgb(centre[0], rgb, S, covariance=C).numpy(),
                               atol=1e-12)
    minimum = project_to_rgb(cubes, rgb, S)
    np.testing.assert_allclose((out[1:] - out[:1]).numpy(), (minimum[1:] - minimum[:1]).numpy(), atol=1e-12)
    # one sample: the covariance-weighted update of the centre, whatever the sample
    np.testing.assert_allclose(project_ensemble(cubes[:1], rgb, S, C, centre=centre)[0].numpy(),
                               project_to_rgb(centre[0], rgb, S, covariance=C).numpy(), atol=1e-12)
