"""Latent anchor: bundle round trip, the mean mode decodes it, anchored sampling starts from it."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import train_tiny_through_cli

from hyperldm_engine.diffusion.samplers import DDIMSampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import BundleError, InputError
from hyperldm_engine.models.anchor import AnchorConfig, LatentAnchor
from hyperldm_engine.models.bundle import load_bundle, save_bundle
from hyperldm_engine.pipeline.synthesize import SamplingOptions, anchor_start

from .test_synthesize_pipeline import build_test_bundle, run, tile  # noqa: F401  (tile is a fixture)


def _with_anchor(src: Path, dst: Path, strength: float = 0.3) -> str:
    b = load_bundle(src)
    cfg = b.config.vqgan
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        anchor = LatentAnchor(AnchorConfig(channels=(4, 8, 8), latent_blocks=1, strength=strength),
                              cfg.latent_channels, cfg.downsample_factor)
        with torch.no_grad():  # the output layer starts at zero; give it weights so the anchor matters
            anchor.conv_out.weight.normal_(0.0, 0.5)
    b.anchor = anchor.eval()
    b.anchor_info = {"config": anchor.config.to_dict(), "training": {"note": "test"}}
    return str(save_bundle(dst, b, overwrite=True))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("anchor")
    base = build_test_bundle(root / "plain")
    return {"plain": str(base), "anchor": _with_anchor(base, root / "anchor")}


def test_anchor_round_trips_through_the_bundle(bundles):
    b = load_bundle(bundles["anchor"])
    assert b.anchor is not None and b.anchor.config.strength == pytest.approx(0.3)
    assert b.anchor_info["training"] == {"note": "test"}
    again = load_bundle(bundles["anchor"])
    for (k, v), (k2, v2) in zip(b.anchor.state_dict().items(), again.anchor.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    assert load_bundle(bundles["plain"]).anchor is None


def test_bundle_with_a_bad_anchor_strength_is_refused(bundles, tmp_path):
    import json
    import shutil

    dst = tmp_path / "bad"
    shutil.copytree(bundles["anchor"], dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["anchor"]["config"]["strength"] = 1.5
    (dst / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="strength"):
        load_bundle(dst)


def test_ddim_from_a_start_step():
    s = NoiseSchedule.linear()
    sampler = DDIMSampler(s, 5, eta=1.0, start=40)
    assert sampler.timesteps[0] == 40 and sampler.timesteps[-1] == 0 and len(sampler.timesteps) == 5
    with pytest.raises(InputError):
        DDIMSampler(s, 12, start=10)  # more steps than timesteps 10..0


def test_anchor_start_steps(bundles):
    b = load_bundle(bundles["anchor"])
    assert anchor_start(b, 100, None) == round(0.3 * 99)
    assert anchor_start(b, 100, 1.0) is None  # pure noise: the paper's sampling
    assert anchor_start(load_bundle(bundles["plain"]), 100, 0.3) is None
    with pytest.raises(InputError, match="anchor-strength"):
        SamplingOptions(anchor_strength=0.0).validate()


def test_mean_mode_decodes_the_anchor(bundles, tile):  # noqa: F811
    from hyperldm_engine.io.raster import normalise_rgb
    from hyperldm_engine.models.vqgan import decode_shared_condition
    from hyperldm_engine.tiling.windows import crop_to, pad_to_multiple

    got = run(bundles["anchor"], tile, mode="mean")["s0"]
    stats, request = tile
    b = load_bundle(bundles["anchor"]).eval()
    align = b.config.vqgan.downsample_factor * b.config.denoiser.alignment
    rgb, shape = pad_to_multiple(normalise_rgb(request.rgb, stats).astype(np.float32), align, mode="reflect")
    x = torch.from_numpy(np.ascontiguousarray(rgb))[None]
    with torch.inference_mode():
        want = decode_shared_condition(b.vqgan, b.anchor(x) / b.latent_scale, x, False)[0][0].numpy()
    np.testing.assert_allclose(got, crop_to(want, shape), atol=1e-5)
    # the plain bundle has no mean mode (no anchor, no latent dropout): a different, zero-latent cube
    assert np.abs(got - run(bundles["plain"], tile, mode="mean")["s0"]).mean() > 1e-4


def test_strength_one_is_the_papers_sampling_and_low_strength_stays_near_the_anchor(bundles, tile):  # noqa: F811
    plain = run(bundles["plain"], tile, samples=2, seed=5)
    full = run(bundles["anchor"], tile, samples=2, seed=5, anchor_strength=1.0)
    for k in plain:
        np.testing.assert_array_equal(plain[k], full[k])  # strength 1 ignores the anchor exactly
    mean = run(bundles["anchor"], tile, mode="mean")["s0"]
    near = run(bundles["anchor"], tile, samples=2, seed=5, anchor_strength=0.05, steps=3)
    far = run(bundles["anchor"], tile, samples=2, seed=5, anchor_strength=0.9, steps=3)
    d_near = np.mean([np.abs(near[k] - mean).mean() for k in near])
    d_far = np.mean([np.abs(far[k] - mean).mean() for k in far])
    assert d_near < d_far
    assert np.abs(near["s0"] - near["s1"]).mean() > 0  # still two different samples
    again = run(bundles["anchor"], tile, samples=2, seed=5, anchor_strength=0.05, steps=3)
    np.testing.assert_array_equal(near["s0"], again["s0"])


def test_anchor_is_tile_local():
    """Local operators only: a pixel's latent does not depend on content beyond the receptive field."""
    a = LatentAnchor(AnchorConfig(channels=(4, 8, 8), latent_blocks=1), 4, 4)
    with torch.no_grad():
        a.conv_out.weight.normal_()
    x = torch.rand(1, 3, 64, 64)
    y = x.clone()
    y[..., 48:, 48:] = 0.0
    with torch.inference_mode():
        za, zb = a(x), a(y)
    assert torch.equal(za[..., :4, :4], zb[..., :4, :4])
    assert not torch.equal(za, zb)
    assert dataclasses.asdict(a.config)["latent_blocks"] == 1


def test_train_attaches_an_anchor_when_asked(tmp_path):
    out = train_tiny_through_cli(tmp_path, "--anchor-iterations", "2")
    b = load_bundle(out)
    assert b.anchor is not None and b.anchor_info["training"]["iterations_done"] == 2
    assert b.anchor_info["config"]["strength"] == pytest.approx(AnchorConfig().strength)
