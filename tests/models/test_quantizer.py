import torch

from hyperldm_engine.models.quantizer import VectorQuantizer, nearest_code_l1


def test_l1_nearest_code_matches_brute_force_across_chunks():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1000, 6, generator=g)
    codes = torch.randn(37, 6, generator=g)
    brute = (z[:, None, :] - codes[None]).abs().sum(-1).argmin(1)
    assert torch.equal(nearest_code_l1(z, codes, chunk=64), brute)
    # L1 differs from L2 here: a point closer in L1 to one code and in L2 to another
    codes2 = torch.tensor([[1.0, 1.0], [1.6, 0.0]])
    assert int(nearest_code_l1(torch.zeros(1, 2), codes2)) == 1  # L1: 2 vs 1.6 -> code 1 (L2 picks 0)


def test_quantize_outputs_codes_loss_and_straight_through():
    q = VectorQuantizer(8, 3, beta=0.5)
    z = torch.randn(2, 3, 4, 5, requires_grad=True)
    out = q(z)
    assert out.indices.shape == (2, 4, 5) and out.z_q.shape == z.shape
    codes = q.embedding.weight[out.indices].permute(0, 3, 1, 2)
    assert torch.allclose(out.z_q, codes, atol=1e-6)
    mse = torch.mean((z.detach() - codes.detach()) ** 2)
    assert torch.allclose(out.loss, mse * 1.5, rtol=1e-5)
    (out.z_q * 3.0).sum().backward()
    assert torch.allclose(z.grad, torch.full_like(z, 3.0))  # gradient passes straight through


def test_usage_tracking_and_dead_code_reseeding():
    q = VectorQuantizer(8, 2, usage_decay=0.5, dead_code_threshold=0.1)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.arange(16, dtype=torch.float32).view(8, 2) * 10)
    z = torch.zeros(1, 2, 2, 2)  # all hit code 0
    q.train()
    for _ in range(6):
        q(z)
    dead = q.dead_codes()
    assert not dead[0] and dead[1:].all()
    samples = torch.randn(50, 2)
    n = q.reseed_dead_codes(samples, generator=torch.Generator().manual_seed(0))
    assert n == 7
    w = q.embedding.weight.detach()
    for k in range(1, 8):
        assert (w[k] == samples).all(dim=1).any()
    assert not q.dead_codes().any()
    assert torch.equal(w[0], torch.tensor([0.0, 10.0]))  # the live code is kept
