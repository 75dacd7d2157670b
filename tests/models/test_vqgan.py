import pytest
import torch
from model_fixtures import make_scene, tiny_config

from hyperldm_engine.models.vqgan import ConditionalVQGAN


def test_shapes_and_physical_output(tiny, library):
    model = ConditionalVQGAN(tiny, library)
    hsi, rgb = make_scene(library, n=2, size=16)
    out = model(hsi, rgb)
    assert out.z.shape == (2, 4, 4, 4) and out.z_q.shape == (2, 4, 4, 4)
    assert out.indices.shape == (2, 4, 4) and out.indices.dtype == torch.long
    assert out.hsi.shape == hsi.shape and out.abundances.shape == (2, 5, 16, 16)
    assert torch.allclose(out.abundances.sum(1), torch.ones(2, 16, 16), atol=1e-5)
    assert (out.abundances >= 0).all() and (out.hsi >= 0).all() and (out.illumination > 0).all()
    assert out.vq_loss.ndim == 0 and torch.isfinite(out.vq_loss)


def test_output_is_t_times_r_at_a(tiny, library):
    from hyperldm_engine.spectral.mixing import mix

    model = ConditionalVQGAN(tiny, library)
    with torch.no_grad():
        model.illumination_param.copy_(torch.linspace(-1, 2, 8))
        hsi, rgb = make_scene(library, n=1, size=8)
        dec = model.decode(model.quantize(model.encode(hsi)).z_q, rgb)
    expected = mix(library, dec.abundances, dec.illumination)
    assert torch.allclose(dec.hsi, expected, atol=1e-6)
    assert torch.allclose(dec.illumination, torch.nn.functional.softplus(torch.linspace(-1, 2, 8)))


def test_straight_through_gradient_reaches_encoder(tiny, library):
    model = ConditionalVQGAN(tiny, library)
    hsi, rgb = make_scene(library, n=1, size=8)
    out = model(hsi, rgb)
    (out.hsi - hsi).abs().mean().backward()  # reconstruction only, no VQ loss
    g = model.encoder.conv_in.weight.grad
    assert g is not None and g.abs().sum() > 0
    assert model.illumination_param.grad.abs().sum() > 0


def test_without_rgb_condition(library):
    cfg = tiny_config(use_rgb_condition=False)
    model = ConditionalVQGAN(cfg, library)
    assert model.condition_encoder is None
    hsi, _ = make_scene(library, n=1, size=8)
    out = model(hsi, None)
    assert out.hsi.shape == hsi.shape


def test_decoder_is_tile_independent(tiny, library):
    """Local operators only: a crop of the latent decodes to the same interior pixels."""
    with torch.random.fork_rng():
        torch.manual_seed(3)  # initial weights only
        model = ConditionalVQGAN(tiny, library).eval()
    g = torch.Generator().manual_seed(3)
    z_q = torch.randn(1, 4, 32, 32, generator=g)
    rgb = torch.rand(1, 3, 128, 128, generator=g)
    with torch.no_grad():
        full = model.decode(z_q, rgb, return_abundances=False).hsi
        crop = model.decode(z_q[..., 8:24, 8:24], rgb[..., 32:96, 32:96], return_abundances=False).hsi
    # latent cells 6..10 of the crop are 6 cells from its border: pixels 24..40 of the crop
    diff = (crop[..., 24:40, 24:40] - full[..., 56:72, 56:72]).abs().max()
    assert diff < 1e-4, float(diff)  # float rounding of different conv blockings only
    far = (crop[..., :4, :4] - full[..., 32:36, 32:36]).abs().max()
    assert far > 1e-3  # sanity: at the crop border the missing context does show


def test_rejects_bad_library_and_sizes(tiny, library):
    with pytest.raises(ValueError, match="library R"):
        ConditionalVQGAN(tiny, library[:, :4])
    model = ConditionalVQGAN(tiny, library)
    with pytest.raises(ValueError, match="multiple of the latent factor"):
        model.encode(torch.rand(1, 8, 10, 12))


def test_reconstruction_loss_falls_on_tiny_data(tiny, library):
    from hyperldm_engine.models.losses import VQGANLoss

    with torch.random.fork_rng():
        torch.manual_seed(0)  # initial weights only; the global state is restored
        model = ConditionalVQGAN(tiny, library)
    loss_fn = VQGANLoss()
    hsi, rgb = make_scene(library, n=4, size=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        out = model(hsi, rgb)
        loss, log = loss_fn.generator_loss(hsi, out.hsi, out.vq_loss, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(log["train/rec_loss"])
        if step == 0:
            model.quantizer.reseed_dead_codes(out.z, threshold=float("inf"), generator=torch.Generator().manual_seed(0))
    assert min(losses[-5:]) < 0.5 * losses[0]
