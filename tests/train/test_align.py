"""Decoder alignment (train.align): the objective, what it trains and what it leaves frozen, the CLI."""

import math

import numpy as np
import pytest
import torch
from tiny_models import build_tiny_bundle, train_tiny_through_cli

from hyperldm_engine.models.bundle import load_bundle
from hyperldm_engine.train.align import AlignSettings, align_decoder, energy_score, group_nll


def test_group_nll_is_minus_log_of_the_mass_in_the_wanted_group():
    groups = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # spectra 0, 1 in group 0; spectrum 2 in group 1
    a = torch.tensor([0.25, 0.25, 0.5]).reshape(1, 3, 1, 1).expand(1, 3, 1, 2).contiguous()
    want = torch.tensor([[[0, 1]]])
    ok = torch.tensor([[[True, True]]])
    assert float(group_nll(a, groups, want, ok)) == pytest.approx(math.log(2.0), abs=1e-6)
    only_first = torch.tensor([[[True, False]]])
    assert float(group_nll(a, groups, want, only_first)) == pytest.approx(math.log(2.0), abs=1e-6)
    pure = torch.tensor([0.0, 0.0, 1.0]).reshape(1, 3, 1, 1)
    assert float(group_nll(pure, groups, torch.tensor([[[1]]]), torch.tensor([[[True]]]))) == pytest.approx(0.0)
    assert float(group_nll(pure, groups, torch.tensor([[[0]]]), torch.tensor([[[True]]]))) == pytest.approx(
        -math.log(1e-6), rel=1e-4)  # no mass: clamped, not infinite


def test_energy_score_rewards_the_right_spread_not_collapse():
    truth = torch.zeros(1, 2, 1, 1)
    valid = torch.ones(1, 1, 1, dtype=torch.bool)
    spread = torch.zeros(2, 1, 2, 1, 1)
    spread[0, 0, 0], spread[1, 0, 0] = 1.0, -1.0  # both 1 away from the truth, 2 apart
    collapsed = torch.zeros(2, 1, 2, 1, 1)
    collapsed[:, 0, 0] = 1.0  # both 1 away, 0 apart
    assert float(energy_score(spread, truth, valid)) == pytest.approx(0.0, abs=1e-5)
    assert float(energy_score(collapsed, truth, valid)) == pytest.approx(1.0, abs=1e-5)
    exact = torch.zeros(3, 1, 2, 1, 1)
    assert float(energy_score(exact, truth, valid)) == pytest.approx(0.0, abs=1e-5)
    # a Euclidean norm over bands: (3, 4) is 5 away
    far = torch.tensor([3.0, 4.0]).reshape(1, 1, 2, 1, 1).expand(2, 1, 2, 1, 1)
    assert float(energy_score(far, truth, valid)) == pytest.approx(5.0, abs=1e-4)
    with pytest.raises(ValueError, match="two samples"):
        energy_score(far[:1], truth, valid)


@pytest.fixture(scope="module")
def scenes():
    from hyperldm_engine.simulate.scene import simulate_scene
    from hyperldm_engine.train.data import scene_from_simulation

    sim = simulate_scene(64, 64, seed=5, gsd_m=2.0, held_out=False)
    scene = scene_from_simulation(sim, "simulate_scene(seed=5)")
    scene.heldout_row0 = 64
    return [scene]


def test_align_trains_the_decoder_side_and_leaves_latents_and_sampler_frozen(tmp_path, scenes):
    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", random_denoiser=True))
    frozen = {name: p.detach().clone() for name, p in
              [*bundle.vqgan.encoder.named_parameters(prefix="enc"),
               *bundle.vqgan.quantizer.named_parameters(prefix="vq"),
               *bundle.denoiser.named_parameters(prefix="unet")]}
    trained = {name: p.detach().clone() for name, p in
               [*bundle.vqgan.decoder.named_parameters(prefix="dec"),
                *bundle.vqgan.abundance_head.named_parameters(prefix="head")]}
    info = align_decoder(bundle, scenes, AlignSettings(iterations=3, patch_size=32, batch_size=2, lr=1e-3))
    now = dict([*bundle.vqgan.encoder.named_parameters(prefix="enc"),
                *bundle.vqgan.quantizer.named_parameters(prefix="vq"),
                *bundle.denoiser.named_parameters(prefix="unet"),
                *bundle.vqgan.decoder.named_parameters(prefix="dec"),
                *bundle.vqgan.abundance_head.named_parameters(prefix="head")])
    assert all(torch.equal(now[k], v) for k, v in frozen.items())
    assert sum(not torch.equal(now[k], v) for k, v in trained.items()) >= len(trained) // 2
    assert info["iterations_done"] == 3
    first = info["history"][0]
    assert {"rec", "sample", "group"} <= set(first)
    assert all(np.isfinite(first[k]) and first[k] > 0 for k in ("rec", "sample", "group"))
    assert not bundle.vqgan.training and not bundle.denoiser.training


def test_without_labels_there_is_no_group_term_and_the_budget_stops_the_run(tmp_path, scenes):
    import dataclasses

    unlabelled = [dataclasses.replace(s, labels=None) for s in scenes]
    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", random_denoiser=True))
    info = align_decoder(bundle, unlabelled, AlignSettings(iterations=1000, budget_minutes=0.0, patch_size=32,
                                                           batch_size=2))
    assert info["iterations_done"] == 0
    info = align_decoder(bundle, unlabelled, AlignSettings(iterations=1, patch_size=32, batch_size=2, mean_of=1,
                                                           sample_loss="paper"))
    assert "group" not in info["history"][0] and info["history"][0]["sample"] > 0
    info = align_decoder(bundle, scenes, AlignSettings(iterations=1, patch_size=32, batch_size=2))  # energy, K 3
    assert np.isfinite(info["history"][0]["sample"]) and info["history"][0]["group"] > 0
    with pytest.raises(ValueError, match="sample_loss"):
        align_decoder(bundle, scenes, AlignSettings(iterations=1, patch_size=32, batch_size=2, sample_loss="l2"))


def test_train_aligns_the_decoder_when_asked(tmp_path):
    out = train_tiny_through_cli(tmp_path, "--labels", str(tmp_path / "s" / "labels.tif"),
                                 "--classifier-iterations", "1", "--align-iterations", "2")
    record = load_bundle(out).training["decoder_alignment"]
    assert record["iterations_done"] == 2 and record["settings"]["patch_size"] == 32
    assert record["frozen"].startswith("encoder")
