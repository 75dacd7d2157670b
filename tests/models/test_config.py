import json

import pytest
from model_fixtures import tiny_config

from hyperldm_engine.models.config import ConfigError, ModelConfig


@pytest.mark.parametrize("name", ["small", "paper"])
def test_presets_round_trip_through_json(name):
    cfg = ModelConfig.preset_named(name, n_bands=48, n_library=100, n_classes=7)
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.n_library == 100 and again.preset == name


def test_paper_numbers():
    cfg = ModelConfig.paper()
    assert cfg.vqgan.downsample_factor == 4 and cfg.vqgan.latent_channels == 16
    assert cfg.vqgan.codebook_size == 1024
    assert cfg.denoiser.channels == (128, 128, 256, 256, 512, 512)
    assert cfg.denoiser.attention_downsample == (8, 16)  # 8x8 and 4x4 of a 64x64 latent
    assert cfg.denoiser.time_embed_dim == 512 and cfg.denoiser.cond_channels == 32
    assert cfg.denoiser.alignment == 32


def test_from_dict_refuses_missing_extra_and_bad_types():
    d = tiny_config().to_dict()
    bad = json.loads(json.dumps(d))
    del bad["vqgan"]["codebook_size"]
    with pytest.raises(ConfigError, match="lacks key"):
        ModelConfig.from_dict(bad)
    bad = json.loads(json.dumps(d))
    bad["denoiser"]["surprise"] = 1
    with pytest.raises(ConfigError, match="unknown key"):
        ModelConfig.from_dict(bad)
    bad = json.loads(json.dumps(d))
    bad["n_bands"] = "48"
    with pytest.raises(ConfigError, match="integer"):
        ModelConfig.from_dict(bad)
    bad = json.loads(json.dumps(d))
    bad["vqgan"]["norm"] = "batch"
    with pytest.raises(ConfigError, match="must be one of"):
        ModelConfig.from_dict(bad)


def test_invalid_values_refused():
    with pytest.raises(ConfigError, match="downsample_factor"):
        tiny_config(downsample_factor=3)
    with pytest.raises(ConfigError, match="needs 3 entries"):
        tiny_config(encoder_channels=(8, 8))


def test_parameter_estimate_is_close_and_absurd_sizes_are_refused_before_building():
    import torch

    from hyperldm_engine.models.bundle import build_modules
    from hyperldm_engine.models.config import ConfigError, ModelConfig

    for cfg in (ModelConfig.small(n_library=300), ModelConfig.paper()):
        modules = build_modules(cfg, torch.rand(cfg.n_bands, cfg.n_library))
        actual = sum(p.numel() for m in modules for p in m.parameters())
        assert abs(cfg.estimated_parameters() - actual) / actual < 0.15
    data = ModelConfig.small().to_dict()
    data["vqgan"]["codebook_size"], data["vqgan"]["latent_channels"] = 10**6, 4096
    with pytest.raises(ConfigError, match="GiB of weights"):
        ModelConfig.from_dict(data)
