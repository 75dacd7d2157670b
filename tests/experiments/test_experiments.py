"""The experiments in --quick mode, and their scoring functions against hand-computed answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hyperldm_cli.main import _register_commands, cli

from hyperldm_engine.experiments.downstream import classification_scores, confusion_matrix, segmentation_net

_register_commands()


def test_scores_known_answer() -> None:
    # 2 classes: 40 + 30 correct of 100; rows (50, 50), cols (60, 40)
    c = np.array([[40, 10], [20, 30]])
    s = classification_scores(c)
    assert s["oa"] == pytest.approx(0.7)
    assert s["aa"] == pytest.approx((40 / 50 + 30 / 50) / 2)
    pe = (50 * 60 + 50 * 40) / 100**2
    assert s["kappa"] == pytest.approx((0.7 - pe) / (1 - pe))
    perfect = classification_scores(np.diag([5, 7, 0]))  # absent class 3 is not averaged in AA
    assert perfect == {"oa": 1.0, "aa": 1.0, "kappa": 1.0}


def test_confusion_matrix_counts() -> None:
    truth = np.array([[0, 1], [2, 2]])
    pred = np.array([[0, 2], [2, 1]])
    c = confusion_matrix(truth, pred, 3)
    assert c.sum() == 4 and c[0, 0] == 1 and c[1, 2] == 1 and c[2, 2] == 1 and c[2, 1] == 1


def test_network_only_input_channels_differ() -> None:
    a, b = segmentation_net(3, 5), segmentation_net(48, 5)
    shapes_a = [tuple(p.shape) for p in a.parameters()]
    shapes_b = [tuple(p.shape) for p in b.parameters()]
    assert shapes_a[1:] == shapes_b[1:] and shapes_a[0][1] == 3 and shapes_b[0][1] == 48


def test_downstream_quick(tiny_bundle: str, tmp_path) -> None:
    out = tmp_path / "ds"
    r = CliRunner().invoke(cli, ["experiment", "downstream", str(out), "--model", tiny_bundle, "--quick",
                                 "--progress", "none"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert [row["input"] for row in res["rows"]] == ["rgb", "synthetic_x1", "synthetic_x5", "reference_hsi"]
    n = len(res["classes"])
    for row in res["rows"]:
        assert 0.0 <= row["oa"] <= 1.0 and 0.0 <= row["aa"] <= 1.0 and -1.0 <= row["kappa"] <= 1.0
        conf = np.array(row["confusion"])
        assert conf.shape == (n, n) and conf.sum() == 32 * 32  # one 32 px test scene
        assert (out / f"confusion_{row['input']}.png").stat().st_size > 1000
    assert [row["channels"] for row in res["rows"]] == [3, 48, 48, 48]
    assert res["rows"][2]["train_inputs_per_rgb"] == 2
    assert "| rgb |" in (out / "results.md").read_text()


def test_noise_sweep_quick_rescale_only(tiny_bundle: str, tmp_path) -> None:
    out = tmp_path / "ns"
    r = CliRunner().invoke(cli, ["experiment", "noise-sweep", str(out), "--model", tiny_bundle, "--quick",
                                 "--no-finetune", "--progress", "none"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    rows = res["rows"]
    assert [row["noise_scale"] for row in rows] == [0.5, 1.0, 2.0]
    assert {row["variant"] for row in rows} == {"sampling-time rescale"}
    for row in rows:
        assert row["sd"] >= 1.0 and row["sdm"] >= 1.0 and row["sdm_is_variant"] >= 1.0
        assert row["sdm"] <= 2.0 + 1e-9  # primary SDM <= K = 2
        assert math.isfinite(row["mpsnr_db"]) and 0.0 <= row["sam_rad"] <= math.pi
    assert (out / "noise_sweep.png").stat().st_size > 1000


@pytest.mark.slow
def test_noise_sweep_quick_finetune(tiny_bundle: str, tmp_path) -> None:
    out = tmp_path / "ns"
    r = CliRunner().invoke(cli, ["experiment", "noise-sweep", str(out), "--model", tiny_bundle, "--quick",
                                 "--progress", "none"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert sorted((r["variant"], r["noise_scale"]) for r in rows if r["variant"] == "fine-tuned") == [
        ("fine-tuned", 0.5), ("fine-tuned", 1.0), ("fine-tuned", 2.0)]
    assert all(r["finetune_s"] > 0 for r in rows if r["variant"] == "fine-tuned")


def test_finetune_changes_only_the_denoiser(tiny_bundle: str, tmp_path) -> None:
    import torch

    from hyperldm_engine.experiments.common import simulated_scenes
    from hyperldm_engine.experiments.noise_sweep import NoiseSweepSettings, finetune_stage2
    from hyperldm_engine.models.bundle import load_bundle

    s = NoiseSweepSettings.quick()
    finetune_stage2(tiny_bundle, tmp_path / "tuned", 2.0, simulated_scenes(1, 32, held_out=False), s)
    a, b = load_bundle(tiny_bundle), load_bundle(tmp_path / "tuned")
    assert b.schedule["noise_scale"] == 2.0 and a.schedule["noise_scale"] == 1.0
    for k, v in a.vqgan.state_dict().items():
        assert torch.equal(v, b.vqgan.state_dict()[k]), k
    assert any(not torch.equal(v, b.denoiser.state_dict()[k]) for k, v in a.denoiser.state_dict().items())
    assert b.latent_scale == a.latent_scale
    assert b.training["finetune"]["noise_scale"] == 2.0
