"""Synthesis modes: x0-predicting denoisers, the deterministic mean mode and exact RGB consistency."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperldm_engine.errors import InputError
from hyperldm_engine.models.bundle import load_bundle, save_bundle
from hyperldm_engine.models.config import ModelConfig
from hyperldm_engine.pipeline.synthesize import DEFAULT_MEAN_STEPS, DEFAULT_STEPS, SamplingOptions, SynthesisTileFn
from hyperldm_engine.spectral.consistency import reprojection_error

from .test_synthesize_pipeline import build_test_bundle, run, tile  # noqa: F401  (tile is a fixture)


def _variant(src: Path, dst: Path, **denoiser_or_vq) -> str:
    """The test bundle with its config changed (weights are shape-compatible)."""
    b = load_bundle(src)
    vq = {k: v for k, v in denoiser_or_vq.items() if k == "latent_dropout"}
    dn = {k: v for k, v in denoiser_or_vq.items() if k == "prediction"}
    cfg = b.config.replace(vqgan=dataclasses.replace(b.config.vqgan, **vq),
                           denoiser=dataclasses.replace(b.config.denoiser, **dn))
    b.config = cfg
    b.vqgan.config = cfg
    b.denoiser.config = cfg
    return str(save_bundle(dst, b, overwrite=True))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    base = build_test_bundle(root / "eps")
    return {"eps": str(base), "x0": _variant(base, root / "x0", prediction="x0", latent_dropout=0.3),
            "v": _variant(base, root / "v", prediction="v")}


def test_prediction_type_round_trips_and_changes_the_samples(bundles, tile):  # noqa: F811
    assert load_bundle(bundles["x0"]).config.denoiser.prediction == "x0"
    assert load_bundle(bundles["x0"]).config.vqgan.latent_dropout == pytest.approx(0.3)
    eps = run(bundles["eps"], tile, samples=1, seed=3)["s0"]
    x0 = run(bundles["x0"], tile, samples=1, seed=3)["s0"]
    v = run(bundles["v"], tile, samples=1, seed=3)["s0"]
    assert np.isfinite(x0).all() and np.isfinite(v).all()
    # the same weights read as another parameterisation give another (valid) answer
    assert np.abs(eps - x0).mean() > 1e-4 and np.abs(x0 - v).mean() > 1e-4
    np.testing.assert_array_equal(x0, run(bundles["x0"], tile, samples=1, seed=3)["s0"])


def test_mean_mode_is_deterministic_and_equals_the_rgb_only_decoder(bundles, tile):  # noqa: F811
    a = run(bundles["x0"], tile, mode="mean", seed=0)["s0"]
    b = run(bundles["x0"], tile, mode="mean", seed=99)["s0"]
    np.testing.assert_array_equal(a, b)  # no noise is drawn: the seed does not matter
    stats, request = tile
    bundle = load_bundle(bundles["x0"]).eval()
    from hyperldm_engine.io.raster import normalise_rgb
    from hyperldm_engine.tiling.windows import crop_to, pad_to_multiple

    x, shape = pad_to_multiple(np.where(request.mask[None], normalise_rgb(request.rgb, stats), 0.0)
                               .astype(np.float32), 8)
    with torch.inference_mode():
        ref = bundle.vqgan.decode_rgb_only(torch.from_numpy(x)[None], return_abundances=False).hsi
    np.testing.assert_allclose(a, crop_to(ref[0].numpy(), shape), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="mode mean"):
        SamplingOptions(samples=2, mode="mean").validate()
    with pytest.raises(InputError, match="unknown --mode"):
        SamplingOptions(mode="median").validate()


def test_rgb_consistency_reproduces_the_input_rgb(bundles, tile):  # noqa: F811
    stats, request = tile
    response = load_bundle(bundles["eps"]).rgb_response
    response = np.asarray(response, np.float32)
    fn = SynthesisTileFn(bundles["eps"], SamplingOptions(samples=2, steps=3), stats, rgb_response=response)
    out = fn(request)
    plain = run(bundles["eps"], tile, samples=2, seed=0)
    for k in ("s0", "s1"):
        err = reprojection_error(out[k], request.rgb, response, request.mask)
        assert err < 1e-3, err
        assert reprojection_error(plain[k], request.rgb, response, request.mask) > 10 * err
        assert out[k].min() >= 0.0
    assert np.abs(out["s0"] - out["s1"]).mean() > 1e-4  # samples still differ (in the metameric black)


def test_config_keys_added_later_may_be_absent():
    cfg = ModelConfig.small()
    data = cfg.to_dict()
    del data["denoiser"]["prediction"]
    del data["vqgan"]["latent_dropout"]
    old = ModelConfig.from_dict(data)
    assert old.denoiser.prediction == "epsilon" and old.vqgan.latent_dropout == 0.0
    data["denoiser"]["prediction"] = "noise"
    with pytest.raises(InputError, match="prediction"):
        ModelConfig.from_dict(data)


def _main(argv, capsys):
    """The real CLI entry point: (exit code, stderr)."""
    import signal

    from hyperldm_cli.main import main

    previous = signal.getsignal(signal.SIGTERM)  # main installs a SIGTERM handler
    try:
        with pytest.raises(SystemExit) as exc:
            main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return exc.value.code, capsys.readouterr().err


def test_cli_abundance_groups_and_mean_mode(bundles, tmp_path, capsys):
    import rasterio

    from hyperldm_engine.spectral.groups import GROUPS

    from .test_synthesize_pipeline import write_rgb

    rgb = write_rgb(tmp_path / "rgb.tif", 24, 32)
    out, ab = tmp_path / "hsi.tif", tmp_path / "ab.tif"
    code, err = _main(["synthesize", str(rgb), str(out), "--model", bundles["x0"], "--progress",
                       "none", "--abundances", str(ab), "--abundance-groups", "--mode", "mean",
                       "--input-sensor", "nikon-5100"], capsys)
    assert code == 0, err
    with rasterio.open(ab) as ds:
        assert ds.count == len(GROUPS)
        assert [d.removeprefix("abundance ") for d in ds.descriptions] == list(GROUPS)
        a = ds.read(masked=True)
        np.testing.assert_allclose(a.sum(0).compressed(), 1.0, atol=1e-4)  # groups partition the library
    with rasterio.open(out) as ds:
        tags = ds.tags()
        assert tags["HYPERLDM_MODE"] == "mean" and tags["HYPERLDM_RGB_CONSISTENCY"] == "on"
        assert tags["HYPERLDM_INPUT_SENSOR"] == "nikon-5100" and tags["HYPERLDM_INPUT_SENSOR_FROM"] == "option"
        assert tags["HYPERLDM_MEAN_ESTIMATE"] == "rgb-only"
        assert tags["HYPERLDM_STEPS"] == str(DEFAULT_MEAN_STEPS) != str(DEFAULT_STEPS)  # the mean's own default
    # the paper-style bundle has no RGB-only path: its mean mode is the average of --mean-draws samples,
    # exactly the mean of the files --samples writes with the same seed (draw i = sample i)
    mean, files = tmp_path / "mean.tif", tmp_path / "k.tif"
    code, err = _main(["synthesize", str(rgb), str(mean), "--model", bundles["eps"], "--mode", "mean",
                       "--mean-draws", "3", "--steps", "2", "--seed", "5", "--progress", "none"], capsys)
    assert code == 0, err
    code, err = _main(["synthesize", str(rgb), str(files), "--model", bundles["eps"], "--samples", "3",
                       "--steps", "2", "--seed", "5", "--progress", "none"], capsys)
    assert code == 0, err
    draws = []
    for s in range(3):
        with rasterio.open(tmp_path / f"k_s{s}.tif") as ds:
            draws.append(ds.read())
    with rasterio.open(mean) as ds:
        got, tags = ds.read(), ds.tags()
    assert tags["HYPERLDM_MEAN_ESTIMATE"] == "samples" and tags["HYPERLDM_MEAN_DRAWS"] == "3"
    np.testing.assert_allclose(got, np.mean(draws, axis=0), rtol=1e-5, atol=1e-6)
    assert np.abs(draws[0] - draws[1]).mean() > 1e-4  # a real average of different samples
    code, err = _main(["synthesize", str(rgb), str(tmp_path / "x.tif"), "--model", bundles["eps"], "--mode", "mean",
                       "--mean-draws", "0", "--progress", "none"], capsys)
    assert code == 2 and "--mean-draws" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.tif").exists()
    code, err = _main(["synthesize", str(rgb), str(tmp_path / "y.tif"), "--model", bundles["x0"],
                       "--abundance-groups", "--progress", "none"], capsys)
    assert code == 2 and "--abundances" in err

