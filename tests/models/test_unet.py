import pytest
import torch

from hyperldm_engine.models.config import ModelConfig
from hyperldm_engine.models.unet import LatentDenoiser, SelfAttention, timestep_embedding


@pytest.mark.parametrize("size", [(4, 4), (6, 10), (16, 8)])
def test_shapes_for_any_aligned_latent(tiny, size):
    model = LatentDenoiser(tiny)
    h, w = size
    rgb = torch.rand(2, 3, 4 * h, 4 * w)
    cond = model.encode_condition(rgb)
    assert cond.shape == (2, 4, h, w)
    eps = model(torch.randn(2, 4, h, w), torch.tensor([0, 99]), cond)
    assert eps.shape == (2, 4, h, w)


def test_rejects_misaligned_latent(tiny):
    model = LatentDenoiser(tiny)
    with pytest.raises(ValueError, match="multiple of 2"):
        model(torch.randn(1, 4, 5, 4), torch.tensor([1]), torch.randn(1, 4, 5, 4))


def test_condition_broadcasts_over_batch_and_scalar_timestep(tiny):
    model = LatentDenoiser(tiny)
    with torch.no_grad():
        for p in model.conv_out.parameters():
            p.normal_()
        cond = model.encode_condition(torch.rand(1, 3, 16, 16))
        x = torch.randn(3, 4, 4, 4)
        a = model(x, torch.tensor(7), cond)
        b = model(x, torch.tensor([7, 7, 7]), cond.expand(3, -1, -1, -1))
    assert torch.allclose(a, b)


def test_timestep_embedding_known_values():
    e = timestep_embedding(torch.tensor([0, 5]), 8)
    assert torch.allclose(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert torch.allclose(e[1, 0], torch.cos(torch.tensor(5.0))) and torch.allclose(
        e[1, 4], torch.sin(torch.tensor(5.0))
    )


def test_denoiser_learns_time_dependent_target(tiny):
    """The eps-loss falls and the output depends on t through FiLM."""
    with torch.random.fork_rng():
        torch.manual_seed(0)  # initial weights only
        model = LatentDenoiser(tiny)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 4, 4, 4, generator=g)
    rgb = torch.rand(4, 3, 16, 16, generator=g)
    t = torch.tensor([0, 30, 60, 90])
    target = x * (t.float() / 90)[:, None, None, None]
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(40):
        loss = torch.mean((model(x, t, model.encode_condition(rgb)) - target) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]


def test_paper_config_places_attention_at_8x8_and_4x4():
    model = LatentDenoiser(ModelConfig.paper())
    kinds = [isinstance(m[0], SelfAttention) for m in model.down_attn]
    assert kinds == [False, False, False, True, True, False]  # 2**3 = 8 and 2**4 = 16 below 64x64
    assert model.time_embed[0].out_features == 512 and model.time_embed[2].out_features == 512
    assert model.conv_in.in_channels == 16 + 32
    assert model.alignment == 32
