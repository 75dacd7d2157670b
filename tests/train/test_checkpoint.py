"""Checkpoints: exact round trips of nested optimiser/RNG state, atomic files, no unpickling."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from hyperldm_engine.errors import BundleError
from hyperldm_engine.train.checkpoint import (
    default_checkpoint_dir,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_checkpoints,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)


def _optimiser_state():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.9))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    sched.step()
    return net, opt, sched


def test_round_trip_restores_optimiser_scheduler_and_rng(tmp_path):
    net, opt, sched = _optimiser_state()
    g = torch.Generator().manual_seed(5)
    rng = np.random.default_rng(7)
    state = {"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
             "rng": rng_state({"g": g}, {"rng": rng}), "iteration": 3, "losses": [1.5, float("nan")]}
    path = save_checkpoint(tmp_path, 3, state)
    expect_torch, expect_np = torch.rand(4, generator=g), rng.random(4)

    back = load_checkpoint(path)
    net2, opt2, sched2 = _optimiser_state()
    net2.load_state_dict(back["model"])
    opt2.load_state_dict(back["opt"])
    sched2.load_state_dict(back["sched"])
    assert opt2.param_groups[0]["betas"] == (0.5, 0.9)
    assert opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert sched2.state_dict() == sched.state_dict()
    g2, rng2 = torch.Generator().manual_seed(0), np.random.default_rng(0)
    restore_rng_state(back["rng"], {"g": g2}, {"rng": rng2})
    assert torch.equal(torch.rand(4, generator=g2), expect_torch)
    assert np.array_equal(rng2.random(4), expect_np)
    assert back["iteration"] == 3 and np.isnan(back["losses"][1])


def test_file_is_safetensors_with_json_metadata_and_only_newest_kept(tmp_path):
    for it in (1, 2, 3):
        save_checkpoint(tmp_path, it, {"w": torch.arange(3.0), "it": it}, keep=2)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["ckpt-000000002.safetensors", "ckpt-000000003.safetensors"]
    with safe_open(str(tmp_path / names[-1]), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["state"])["it"] == 3
    assert latest_checkpoint(tmp_path)["it"] == 3


def test_corrupt_newest_falls_back_and_stray_temporaries_ignored(tmp_path):
    save_checkpoint(tmp_path, 1, {"it": 1})
    (tmp_path / "ckpt-000000009.safetensors").write_bytes(b"\x00garbage")
    (tmp_path / ".ckpt-000000010.safetensors.hyperldm-tmp-1-ab").write_bytes(b"partial")
    with pytest.raises(BundleError):
        load_checkpoint(tmp_path / "ckpt-000000009.safetensors")
    assert latest_checkpoint(tmp_path)["it"] == 1
    remove_checkpoints(tmp_path)
    assert not tmp_path.exists()


def test_default_folder_beside_bundle(tmp_path):
    assert default_checkpoint_dir(tmp_path / "model") == tmp_path / "model.checkpoints"
