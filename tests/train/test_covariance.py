"""The model's error covariance (train.covariance), its place in the bundle, and --rgb-correction."""

import dataclasses
import json

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from tiny_models import build_tiny_bundle

from hyperldm_engine.errors import BundleError
from hyperldm_engine.models.bundle import load_bundle, save_bundle
from hyperldm_engine.train.covariance import CovarianceSettings, attach_error_covariance, error_covariance


@pytest.fixture(scope="module")
def scenes():
    from hyperldm_engine.simulate.scene import simulate_scene
    from hyperldm_engine.train.data import scene_from_simulation

    scene = scene_from_simulation(simulate_scene(64, 64, seed=5, gsd_m=2.0, held_out=False), "simulate_scene(seed=5)")
    scene.heldout_row0 = 48
    return [scene]


SMALL = CovarianceSettings(batches=2, batch_size=2, patch_size=32, samples=2, steps=1)


def test_error_covariance_is_the_second_moment_of_the_samples_errors(tmp_path, scenes):
    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", random_denoiser=True))
    before = {k: v.clone() for k, v in bundle.denoiser.state_dict().items()}
    C, info = error_covariance(bundle, scenes, SMALL)
    assert C.shape == (48, 48)
    np.testing.assert_allclose(C, C.T, atol=1e-12)
    assert np.linalg.eigvalsh(C).min() > 0  # the jitter makes S C S^T invertible
    assert info["pixels"] == 2 * 2 * 2 * 32 * 32  # batches x patches x samples x pixels, all valid
    assert info["rms_error"] == pytest.approx(np.sqrt(np.mean(np.diag(C)) / (1 + SMALL.jitter)), rel=1e-3)
    assert info["rms_error"] > 0.01  # an untrained model's errors are not small
    assert all(torch.equal(v, before[k]) for k, v in bundle.denoiser.state_dict().items())
    C2, _ = error_covariance(bundle, scenes, SMALL)
    np.testing.assert_array_equal(C, C2)  # seeded: the same bundle and scenes give the same prior


def test_the_covariance_survives_save_and_load_and_a_bad_one_is_refused(tmp_path, scenes):
    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny"))
    assert bundle.consistency_covariance is None
    info = attach_error_covariance(bundle, scenes, SMALL)
    path = save_bundle(tmp_path / "with_cov", bundle)
    again = load_bundle(path)
    np.testing.assert_allclose(again.consistency_covariance, bundle.consistency_covariance, rtol=1e-6)
    assert again.consistency_info["pixels"] == info["pixels"]
    assert json.loads((path / "config.json").read_text())["consistency"]["source"] == info["source"]
    again.consistency_covariance = -np.eye(48)
    save_bundle(tmp_path / "bad", again)
    with pytest.raises(BundleError, match=r"consistency\.covariance: .*positive semi-definite"):
        load_bundle(tmp_path / "bad")


def test_the_default_bundle_carries_its_measured_covariance():
    from hyperldm_engine.models.bundle import default_bundle_path

    bundle = load_bundle(default_bundle_path())
    assert bundle.consistency_covariance.shape == (48, 48)
    assert "scripts/measure_error_covariance.py" in bundle.consistency_info["command"]
    assert 0.02 < bundle.consistency_info["rms_error"] < 0.2


def _info(output: str) -> list[str]:
    return [json.loads(line)["message"] for line in output.splitlines()
            if line.startswith("{") and json.loads(line).get("event") in ("info", "warning")]


def _two_samples_each(bundle, rgb, corrections, folder):
    """``synthesize --samples 2 --rgb-correction C`` for each C: cubes (2, 48, h, w), tags and the info line."""
    from hyperldm_cli.cmd_synthesize import synthesize

    cubes, tags, said = {}, {}, {}
    for correction in corrections:
        out = folder / f"{correction}.tif"
        r = CliRunner().invoke(synthesize, [str(rgb), str(out), "--model", str(bundle), "--steps", "1",
                                            "--samples", "2", "--sample-layout", "bands",
                                            "--rgb-correction", correction, "--progress", "json"])
        assert r.exit_code == 0, r.output
        said[correction] = next(m for m in _info(r.output) if m.startswith("RGB correction"))
        with rasterio.open(out) as ds:
            cubes[correction], tags[correction] = ds.read().reshape(2, 48, *ds.shape), ds.tags()
    return cubes, tags, said


def test_cli_corrections_reproduce_the_rgb_and_spectral_moves_the_near_infrared(tmp_path):
    from hyperldm_cli.cmd_synthesize import synthesize

    from hyperldm_engine.simulate.scene import simulate_scene, write_scene
    from hyperldm_engine.spectral.consistency import reprojection_error

    bundle = build_tiny_bundle(tmp_path / "tiny", random_denoiser=True)
    write_scene(simulate_scene(32, 32, seed=3, gsd_m=2.0), tmp_path / "scene")
    rgb = tmp_path / "scene" / "rgb.tif"
    cubes, tags, said = _two_samples_each(bundle, rgb, ("minimum", "spectral", "ensemble", "auto"), tmp_path)
    # the tiny bundle has no measured covariance: its library's is used
    assert "weighted by the covariance of the bundle's" in said["spectral"]
    assert said["auto"].startswith("RGB correction ensemble (auto: surface reflectance input)")
    with rasterio.open(rgb) as ds:
        target = ds.read().astype(np.float64)
    response = load_bundle(bundle).rgb_response
    for correction, cube in cubes.items():
        for k in range(2):
            assert reprojection_error(cube[k], target, response) < 1e-3, correction
        assert tags[correction]["HYPERLDM_RGB_CORRECTION"] == ("ensemble" if correction == "auto" else correction)
    np.testing.assert_array_equal(cubes["auto"], cubes["ensemble"])
    nir = slice(36, 48)  # ~ 850-1000 nm: bands the Nikon does not see
    assert np.abs(cubes["spectral"][:, nir] - cubes["minimum"][:, nir]).mean() > 1e-3
    # ensemble: the two samples differ as the smallest change leaves them (clipping aside), spectral pulls them together
    spread = {c: np.abs(cubes[c][0] - cubes[c][1]).mean() for c in cubes}
    assert spread["ensemble"] == pytest.approx(spread["minimum"], rel=0.05)
    r = CliRunner().invoke(synthesize, [str(rgb), str(tmp_path / "x.tif"), "--model", str(bundle),
                                        "--rgb-correction", "bogus"])
    assert r.exit_code != 0 and "--rgb-correction" in r.output and not (tmp_path / "x.tif").exists()


def test_cli_auto_correction_is_minimum_on_top_of_atmosphere_input(tmp_path):
    from hyperldm_cli.cmd_synthesize import synthesize

    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    bundle = build_tiny_bundle(tmp_path / "tiny")
    write_scene(simulate_scene(32, 32, seed=3, gsd_m=30.0, input_sensor="landsat8-oli", radiometry="toa"),
                tmp_path / "l8")
    for correction, expected in (("auto", "minimum"), ("spectral", "spectral")):
        out = tmp_path / f"{correction}.tif"
        r = CliRunner().invoke(synthesize, [str(tmp_path / "l8" / "rgb.tif"), str(out), "--model", str(bundle),
                                            "--steps", "1", "--rgb-correction", correction, "--progress", "json"])
        assert r.exit_code == 0, r.output
        messages = _info(r.output)
        with rasterio.open(out) as ds:
            assert ds.tags()["HYPERLDM_RGB_CORRECTION"] == expected
        warned = any("assumes surface reflectance" in m for m in messages)
        assert warned == (correction == "spectral")
    assert any("(auto: top-of-atmosphere input)" in m for m in _info(r.output)) is False  # spectral said outright


def test_cli_auto_is_anchored_on_toa_input_with_an_anchor_measured_on_toa_scenes(tmp_path):
    from hyperldm_cli.cmd_synthesize import synthesize

    from hyperldm_engine.models.bundle import default_bundle_path
    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    write_scene(simulate_scene(32, 32, seed=3, gsd_m=30.0, input_sensor="landsat8-oli", radiometry="toa"),
                tmp_path / "l8")
    out = tmp_path / "auto.tif"
    r = CliRunner().invoke(synthesize, [str(tmp_path / "l8" / "rgb.tif"), str(out), "--model",
                                        str(default_bundle_path()), "--progress", "json"])
    assert r.exit_code == 0, r.output
    messages = _info(r.output)
    assert any(m.startswith("RGB correction anchored (auto: top-of-atmosphere input)") for m in messages)
    assert not any("assumes surface reflectance" in m for m in messages)
    with rasterio.open(out) as ds:
        assert ds.tags()["HYPERLDM_RGB_CORRECTION"] == "anchored"


@pytest.fixture(scope="module")
def two_scenes():
    from hyperldm_engine.simulate.scene import simulate_scene
    from hyperldm_engine.train.data import scene_from_simulation

    out = []
    for seed in (5, 6):
        scene = scene_from_simulation(simulate_scene(64, 64, seed=seed, gsd_m=2.0, held_out=False), f"seed={seed}")
        scene.heldout_row0 = 48
        out.append(scene)
    return out


def test_anchor_fusion_is_cross_fitted_and_survives_save_and_load(tmp_path, two_scenes):
    from hyperldm_engine.spectral.fusion import poly_features, ridge_weights
    from hyperldm_engine.train.covariance import anchor_fusion, attach_anchor_fusion, scene_normal_equations

    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", random_denoiser=True))
    settings = CovarianceSettings(batches=2, batch_size=2, patch_size=32, samples=2, steps=1, anchor_batches=2)
    anchor, info = anchor_fusion(bundle, two_scenes, settings)
    assert info["cross_fitted"] and info["pixels"] == 2 * 1 * 2 * 2 * 32 * 32  # scenes x batches x patches x draws x px
    # the stored weights are the ridge of every scene's training rows: they fit those rows best
    eq = [scene_normal_equations(s) for s in two_scenes]
    np.testing.assert_allclose(anchor.weights, ridge_weights(eq[0][0] + eq[1][0], eq[0][1] + eq[1][1]))
    assert eq[0][0][0, 0] == two_scenes[0].valid[:48].sum()  # the intercept column counts the valid training pixels
    # an untrained model's samples are far off and the ridge is close: the fused centre's errors are smaller
    assert info["rms_error_fused"] < 0.6 * info["rms_error_samples"]
    anchor.check(48)
    x = poly_features(torch.from_numpy(np.full((3, 1, 1), 0.5)), 2).reshape(10)
    assert np.all(np.isfinite(x.numpy() @ anchor.weights))
    with pytest.raises(ValueError, match="error covariance first"):
        attach_anchor_fusion(bundle, two_scenes, settings)
    attach_error_covariance(bundle, two_scenes, SMALL)
    attach_anchor_fusion(bundle, two_scenes, settings)
    attach_anchor_fusion(bundle, two_scenes[:1], settings, key="anchor_toa")  # the TOA input's anchor, stored beside it
    path = save_bundle(tmp_path / "anchored", bundle)
    record = json.loads((path / "config.json").read_text())["consistency"]
    assert record["anchor"]["degree"] == 2 and record["anchor"]["cross_fitted"] is True
    again = load_bundle(path)
    for name in ("weights", "gain", "covariance"):
        np.testing.assert_allclose(getattr(again.correction_anchor, name), getattr(bundle.correction_anchor, name),
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(getattr(again.correction_anchor_toa, name),
                                   getattr(bundle.correction_anchor_toa, name), rtol=1e-5, atol=1e-7)
    assert record["anchor_toa"]["cross_fitted"] is False  # one scene
    # one scene: nothing to cross-fit against, said in the record
    _, single = anchor_fusion(bundle, two_scenes[:1], settings)
    assert single["cross_fitted"] is False and "in-sample" in single["source"]
    # a damaged anchor is refused at load
    from safetensors.torch import load_file, save_file

    tensors = load_file(path / "weights.safetensors")
    tensors["consistency.anchor.gain"] = tensors["consistency.anchor.gain"][:, :40].contiguous()
    save_file(tensors, path / "weights.safetensors")
    with pytest.raises(BundleError, match=r"consistency\.anchor\.gain has shape"):
        load_bundle(path)


def test_a_cnn_anchor_is_trained_on_the_training_rows_and_fused_in_sample(tmp_path, two_scenes):
    from hyperldm_engine.spectral.fusion import NetworkAnchor
    from hyperldm_engine.train.covariance import CnnAnchorSettings, anchor_fusion, attach_anchor_fusion

    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", random_denoiser=True))
    settings = CovarianceSettings(batches=2, batch_size=2, patch_size=32, samples=2, steps=1, anchor_batches=2)
    cnn = CnnAnchorSettings(width=8, blocks=1, iterations=40)
    anchor, info = anchor_fusion(bundle, two_scenes, settings, kind="cnn", cnn=cnn)
    assert isinstance(anchor, NetworkAnchor) and anchor.net.width == 8 and anchor.net.n_blocks == 1
    assert info["kind"] == "cnn" and info["cross_fitted"] is False and "in-sample" in info["source"]
    assert "degree" not in info
    assert info["training"]["iterations"] == 40 and info["parameters"] == anchor.net.n_parameters
    assert info["training"]["final_l1"] < 0.2 and info["rms_error_fused"] < 0.6 * info["rms_error_samples"]
    anchor.check(48)
    attach_error_covariance(bundle, two_scenes, SMALL)
    attach_anchor_fusion(bundle, two_scenes, settings, kind="cnn", cnn=cnn)
    path = save_bundle(tmp_path / "cnn", bundle)
    record = json.loads((path / "config.json").read_text())["consistency"]["anchor"]
    assert record["kind"] == "cnn" and record["width"] == 8 and record["macs_per_pixel"] == anchor.net.macs_per_pixel()
    assert isinstance(load_bundle(path).correction_anchor, NetworkAnchor)


def test_the_default_bundle_carries_cross_fitted_ridges_and_no_network_anchor():
    from hyperldm_engine.models.bundle import default_bundle_path
    from hyperldm_engine.pipeline.synthesize import correction_anchor
    from hyperldm_engine.spectral.fusion import RegressionAnchor

    bundle = load_bundle(default_bundle_path())
    anchor = bundle.correction_anchor
    assert isinstance(anchor, RegressionAnchor) and anchor.weights.shape == (10, 48)
    info = bundle.consistency_info["anchor"]
    assert info["cross_fitted"] and info["rms_error_fused"] < info["rms_error_samples"]
    assert info["radiometries"] == ["surface"]  # the bundle's own Nikon-camera scenes
    # no mean-mode anchor: the network anchors measured worse on the real Landsat 8 crop (docs/model-diagnosis.md)
    assert bundle.correction_anchor_mean is None and correction_anchor(bundle, mean=True) is anchor
    # the anchor for TOA input: measured with the 8 real-world scenes the decoder was aligned on too
    toa = bundle.consistency_info["anchor_toa"]
    assert isinstance(bundle.correction_anchor_toa, RegressionAnchor)
    assert "toa" in toa["radiometries"] and len(toa["real_world"]) == 8
    assert correction_anchor(bundle, toa=True, mean=True) is bundle.correction_anchor_toa
    prior = bundle.abundance_prior
    assert prior is not None and prior.power > 0 and bundle.abundance_prior_info["cross_fitted"]
    by_power = bundle.abundance_prior_info["agreement_by_power"]
    assert by_power[str(prior.power)] > by_power["0.0"] + 0.1  # measured: 0.624 -> 0.821


def test_cli_anchored_correction_reproduces_the_rgb_keeps_the_spread_and_is_auto(tmp_path, two_scenes):
    from hyperldm_cli.cmd_synthesize import synthesize

    from hyperldm_engine.simulate.scene import simulate_scene, write_scene
    from hyperldm_engine.spectral.consistency import reprojection_error
    from hyperldm_engine.train.covariance import attach_anchor_fusion

    plain = build_tiny_bundle(tmp_path / "tiny", random_denoiser=True)
    bundle = load_bundle(plain)
    attach_error_covariance(bundle, two_scenes, SMALL)
    attach_anchor_fusion(bundle, two_scenes, CovarianceSettings(batch_size=2, patch_size=32, samples=2, steps=1,
                                                                anchor_batches=2))
    anchored = save_bundle(tmp_path / "anchored", bundle)
    write_scene(simulate_scene(32, 32, seed=3, gsd_m=2.0), tmp_path / "scene")
    rgb = tmp_path / "scene" / "rgb.tif"
    cubes, tags, said = _two_samples_each(anchored, rgb, ("anchored", "auto", "ensemble", "minimum"), tmp_path)
    for correction, tag in tags.items():
        assert tag["HYPERLDM_RGB_CORRECTION"] == ("anchored" if correction == "auto" else correction)
    assert said["auto"].startswith("RGB correction anchored (auto: surface reflectance input)")
    assert "bundle's anchor (degree-2 ridge" in said["anchored"]
    np.testing.assert_array_equal(cubes["auto"], cubes["anchored"])
    with rasterio.open(rgb) as ds:
        target = ds.read().astype(np.float64)
    for k in range(2):
        assert reprojection_error(cubes["anchored"][k], target, bundle.rgb_response) < 1e-3
    # the centre moved towards the anchor (an untrained model's samples are far from it), the spread stayed
    assert np.abs(cubes["anchored"].mean(0) - cubes["ensemble"].mean(0)).mean() > 1e-3
    spread = {c: np.abs(cubes[c][0] - cubes[c][1]).mean() for c in cubes}
    # (the same deviations as minimum's before the clip at 0, which this untrained model's centre hits more often)
    assert 0.5 * spread["minimum"] < spread["anchored"] < 1.05 * spread["minimum"]
    # a bundle without an anchor: auto is ensemble, and anchored is refused before anything is written
    out = tmp_path / "refused.tif"
    r = CliRunner().invoke(synthesize, [str(rgb), str(out), "--model", str(plain), "--steps", "1",
                                        "--rgb-correction", "anchored"])
    assert r.exit_code != 0 and "needs a bundle with a measured regression anchor" in str(r.exception)
    assert not out.exists()


def test_cli_mean_mode_centres_on_the_mean_anchor_and_sample_mode_does_not(tmp_path, two_scenes):
    from hyperldm_cli.cmd_synthesize import synthesize

    from hyperldm_engine.simulate.scene import simulate_scene, write_scene
    from hyperldm_engine.spectral.consistency import reprojection_error
    from hyperldm_engine.train.covariance import CnnAnchorSettings, attach_anchor_fusion

    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", random_denoiser=True))
    settings = CovarianceSettings(batch_size=2, patch_size=32, samples=2, steps=1, anchor_batches=2)
    attach_error_covariance(bundle, two_scenes, SMALL)
    attach_anchor_fusion(bundle, two_scenes, settings)
    ridge_only = save_bundle(tmp_path / "ridge", bundle)
    attach_anchor_fusion(bundle, two_scenes, settings, key="anchor_mean", kind="ridge+cnn",
                         cnn=CnnAnchorSettings(8, 1, 60))
    with_mean = save_bundle(tmp_path / "mean", bundle)
    write_scene(simulate_scene(32, 32, seed=3, gsd_m=2.0), tmp_path / "scene")
    rgb = tmp_path / "scene" / "rgb.tif"

    def run(model, mode, *options):
        out = tmp_path / f"{model.name}-{mode}-{len(list(tmp_path.glob('*.tif')))}.tif"
        r = CliRunner().invoke(synthesize, [str(rgb), str(out), "--model", str(model), "--mode", mode,
                                            *(options or ("--steps", "1", "--mean-draws", "2")), "--progress", "json"])
        assert r.exit_code == 0, r.output
        with rasterio.open(out) as ds:
            run.tags = ds.tags()
            return ds.read(), next(m for m in _info(r.output) if m.startswith("RGB correction"))

    mean_cube, said = run(with_mean, "mean")
    assert "bundle's anchor (degree-2 ridge (cross-fitted) and residual CNN (width 8, 1 blocks" in said
    ridge_mean, said_ridge = run(ridge_only, "mean")
    assert "bundle's anchor (degree-2 ridge" in said_ridge
    assert np.abs(mean_cube - ridge_mean).mean() > 1e-3  # a different centre
    with rasterio.open(rgb) as ds:
        assert reprojection_error(mean_cube, ds.read().astype(np.float64), bundle.rgb_response) < 1e-3
    # sample mode keeps the ridge: the same cubes from both bundles
    sample, said_sample = run(with_mean, "sample")
    assert "degree-2 ridge" in said_sample
    np.testing.assert_array_equal(sample, run(ridge_only, "sample")[0])
    # the mean mode's defaults follow the run: 2 draws at 4 steps on a mean-mode anchor, else 8 at 10; given wins
    from hyperldm_engine.pipeline.synthesize import (
        ANCHORED_MEAN_DRAWS,
        ANCHORED_MEAN_STEPS,
        DEFAULT_MEAN_DRAWS,
        DEFAULT_MEAN_STEPS,
    )

    for model, options, want in ((with_mean, ("--seed", "0"), (ANCHORED_MEAN_DRAWS, ANCHORED_MEAN_STEPS)),
                                 (ridge_only, ("--seed", "0"), (DEFAULT_MEAN_DRAWS, DEFAULT_MEAN_STEPS)),
                                 (with_mean, ("--rgb-correction", "ensemble"),
                                  (DEFAULT_MEAN_DRAWS, DEFAULT_MEAN_STEPS)),
                                 (with_mean, ("--mean-draws", "3", "--steps", "6"), (3, 6))):
        run(model, "mean", *options)
        assert (run.tags["HYPERLDM_MEAN_DRAWS"], run.tags["HYPERLDM_STEPS"]) == tuple(map(str, want))
    assert (ANCHORED_MEAN_DRAWS, ANCHORED_MEAN_STEPS) == (2, 4)


def test_group_prior_is_measured_on_labelled_scenes_and_survives_save_and_load(tmp_path, two_scenes):
    from hyperldm_engine.train.group_prior import POWERS, attach_group_prior, group_prior

    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", random_denoiser=True))
    settings = CovarianceSettings(batch_size=2, patch_size=32, samples=1, steps=1, anchor_batches=2)
    prior, info = group_prior(bundle, two_scenes, settings)
    assert prior.power in POWERS and info["cross_fitted"] and info["pixels"] > 0
    by_power = info["agreement_by_power"]
    assert set(by_power) == {str(p) for p in POWERS} and all(0 <= v <= 1 for v in by_power.values())
    assert by_power[str(prior.power)] == max(by_power.values())
    # an untrained decoder's groups are noise; a ridge on the simulated labels is not: the prior helps
    assert max(by_power.values()) > by_power["0.0"] + 0.1
    unlabelled = [dataclasses.replace(s, labels=None) for s in two_scenes]
    assert group_prior(bundle, unlabelled, settings) is None
    attach_group_prior(bundle, two_scenes, settings)
    path = save_bundle(tmp_path / "with_prior", bundle)
    again = load_bundle(path)
    np.testing.assert_allclose(again.abundance_prior.weights, prior.weights, rtol=1e-5, atol=1e-7)
    assert again.abundance_prior.power == prior.power and again.abundance_prior_info["pixels"] == info["pixels"]
    config = json.loads((path / "config.json").read_text())
    config["abundance_prior"]["power"] = "strong"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="abundance_prior is not a JSON object"):
        load_bundle(path)


def test_cli_abundances_use_the_prior_unless_off(tmp_path, two_scenes):
    from hyperldm_cli.cmd_synthesize import synthesize

    from hyperldm_engine.simulate.scene import simulate_scene, write_scene
    from hyperldm_engine.train.group_prior import attach_group_prior

    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", random_denoiser=True))
    attach_group_prior(bundle, two_scenes, CovarianceSettings(batch_size=2, patch_size=32, samples=1, steps=1,
                                                              anchor_batches=2))
    assert bundle.abundance_prior.power > 0
    path = save_bundle(tmp_path / "with_prior", bundle)
    write_scene(simulate_scene(32, 32, seed=3, gsd_m=2.0), tmp_path / "scene")
    ab, tags, cubes = {}, {}, {}
    for choice in ("auto", "off"):
        r = CliRunner().invoke(synthesize, [str(tmp_path / "scene" / "rgb.tif"), str(tmp_path / f"{choice}.tif"),
                                            "--model", str(path), "--steps", "1", "--abundances",
                                            str(tmp_path / f"ab_{choice}.tif"), "--abundance-groups",
                                            "--abundance-prior", choice, "--progress", "json"])
        assert r.exit_code == 0, r.output
        with rasterio.open(tmp_path / f"ab_{choice}.tif") as ds:
            ab[choice], tags[choice] = ds.read(), ds.tags()
        with rasterio.open(tmp_path / f"{choice}.tif") as ds:
            cubes[choice] = ds.read()
    assert tags["auto"]["HYPERLDM_ABUNDANCE_PRIOR"].startswith("power ")
    assert tags["off"]["HYPERLDM_ABUNDANCE_PRIOR"] == "none"
    for choice in ab:
        np.testing.assert_allclose(ab[choice].sum(0), 1.0, atol=1e-4)  # still a mix
    assert np.abs(ab["auto"] - ab["off"]).max() > 0.05
    np.testing.assert_array_equal(cubes["auto"], cubes["off"])  # the cubes do not change


def test_api_abundance_prior_is_auto_or_off(tmp_path):
    import hyperldm_engine
    from hyperldm_engine.errors import InputError

    with pytest.raises(InputError, match="abundance_prior must be auto or off"):
        hyperldm_engine.synthesize(tmp_path / "rgb.tif", tmp_path / "out.tif", abundance_prior="strong")
    assert not (tmp_path / "out.tif").exists()
