"""The correction anchor's two kinds in a bundle (models.correction_anchor): records, tensors, save and load."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import build_tiny_bundle

from hyperldm_engine.errors import BundleError
from hyperldm_engine.models.bundle import load_bundle, save_bundle
from hyperldm_engine.models.correction_anchor import expected_shapes, record_problem
from hyperldm_engine.models.residual_cnn import ResidualCNN
from hyperldm_engine.spectral.fusion import JointAnchor, NetworkAnchor, RegressionAnchor


def test_records_name_their_kind_and_shape_and_older_ridges_need_none():
    assert record_problem({"degree": 2}) is None  # bundles written before the CNN anchor
    assert record_problem({"kind": "ridge", "degree": 1}) is None
    assert record_problem({"kind": "cnn", "width": 24, "blocks": 3}) is None
    assert record_problem({"kind": "ridge+cnn", "degree": 2, "width": 24, "blocks": 3}) is None
    assert "ridge+cnn without degree" in record_problem({"kind": "ridge+cnn", "width": 24, "blocks": 3})
    assert "integer width" in record_problem({"kind": "ridge+cnn", "degree": 2, "blocks": 3})
    assert "degree 1 or 2" in record_problem({"kind": "ridge", "degree": 3})
    assert "kind 'forest'" in record_problem({"kind": "forest"})
    assert "integer width" in record_problem({"kind": "cnn", "width": 24.5, "blocks": 3})
    assert "integer width" in record_problem({"kind": "cnn", "width": 4096, "blocks": 3})
    assert "integer width" in record_problem({"kind": "cnn", "width": True, "blocks": 3})
    assert "not a JSON object" in record_problem([2])
    shapes = expected_shapes({"kind": "cnn", "width": 24, "blocks": 3}, 48)
    assert shapes["gain"] == (48, 48) and shapes["net.head.weight"] == (24, 3, 3, 3)
    assert shapes["net.blocks.2.conv2.weight"] == (24, 24, 3, 3) and "net.blocks.3.conv1.weight" not in shapes
    assert expected_shapes({"degree": 2}, 48)["weights"] == (10, 48)
    joint = expected_shapes({"kind": "ridge+cnn", "degree": 2, "width": 24, "blocks": 3}, 48)
    assert joint["gain"] == (48, 96) and joint["weights"] == (10, 48) and joint["net.tail.weight"] == (48, 24, 3, 3)


@pytest.fixture()
def cnn_bundle(tmp_path):
    """A tiny bundle whose surface anchor is a (random) residual CNN and whose TOA anchor is a ridge."""
    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny"))
    g = np.random.default_rng(0)
    torch.manual_seed(1)
    net = ResidualCNN(48, width=6, blocks=2)
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    bundle.consistency_covariance = np.eye(48) * 1e-3
    bundle.consistency_info = {"source": "test", "anchor": {"source": "a test network"},
                               "anchor_toa": {"source": "a test ridge"}}
    bundle.correction_anchor = NetworkAnchor(net=net.eval(), gain=0.3 * np.eye(48), covariance=np.eye(48) * 2e-3)
    bundle.correction_anchor_toa = RegressionAnchor(weights=0.1 * g.uniform(0, 1, (10, 48)), degree=2,
                                                    gain=0.6 * np.eye(48), covariance=np.eye(48) * 4e-3)
    return bundle, save_bundle(tmp_path / "cnn", bundle)


def test_a_cnn_anchor_survives_save_and_load_beside_a_ridge(cnn_bundle):
    bundle, path = cnn_bundle
    record = json.loads((path / "config.json").read_text())["consistency"]
    assert record["anchor"] == {"source": "a test network", "kind": "cnn", "width": 6, "blocks": 2}
    assert record["anchor_toa"]["kind"] == "ridge" and record["anchor_toa"]["degree"] == 2
    tensors = load_file(path / "weights.safetensors")
    assert "consistency.anchor.net.blocks.1.conv2.weight" in tensors and "consistency.anchor.weights" not in tensors
    again = load_bundle(path)
    assert isinstance(again.correction_anchor, NetworkAnchor)
    assert isinstance(again.correction_anchor_toa, RegressionAnchor)
    rgb = torch.from_numpy(np.random.default_rng(2).uniform(0, 1, (1, 3, 16, 16)))
    np.testing.assert_allclose(again.correction_anchor.predict(rgb).numpy(),
                               bundle.correction_anchor.predict(rgb).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(again.correction_anchor.gain, 0.3 * np.eye(48), atol=1e-7)
    np.testing.assert_allclose(again.correction_anchor_toa.weights, bundle.correction_anchor_toa.weights, rtol=1e-6)
    assert not any(p.requires_grad for p in again.correction_anchor.net.parameters())


def test_a_joint_anchor_survives_save_and_load(cnn_bundle, tmp_path):
    bundle, _ = cnn_bundle
    ridge, net = bundle.correction_anchor_toa, bundle.correction_anchor.net
    gain = np.concatenate([0.2 * np.eye(48), 0.5 * np.eye(48)], 1)
    bundle.correction_anchor_mean = JointAnchor(weights=ridge.weights, degree=2, net=net, gain=gain,
                                                covariance=np.eye(48) * 1e-3)
    path = save_bundle(tmp_path / "joint", bundle)
    record = json.loads((path / "config.json").read_text())["consistency"]["anchor_mean"]
    assert record == {"kind": "ridge+cnn", "degree": 2, "width": 6, "blocks": 2}
    again = load_bundle(path).correction_anchor_mean
    assert isinstance(again, JointAnchor)
    rgb = torch.from_numpy(np.random.default_rng(3).uniform(0, 1, (1, 3, 8, 8)))
    np.testing.assert_allclose(again.predict(rgb).numpy(), bundle.correction_anchor_mean.predict(rgb).numpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(again.gain, gain, atol=1e-7)


def test_a_damaged_cnn_anchor_is_refused_in_one_sentence(cnn_bundle):
    _, path = cnn_bundle
    tensors = load_file(path / "weights.safetensors")
    good = dict(tensors)
    tensors["consistency.anchor.net.head.weight"] = tensors["consistency.anchor.net.head.weight"][:4].contiguous()
    save_file(tensors, path / "weights.safetensors")
    with pytest.raises(BundleError, match=r"consistency\.anchor\.net\.head\.weight has shape"):
        load_bundle(path)
    del good["consistency.anchor.net.tail.bias"]
    save_file(good, path / "weights.safetensors")
    with pytest.raises(BundleError, match="lacks 1 tensor"):
        load_bundle(path)
    config = json.loads((path / "config.json").read_text())
    config["consistency"]["anchor"]["kind"] = "forest"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"consistency\.anchor has kind 'forest'"):
        load_bundle(path)
