import torch

from hyperldm_engine.models.discriminators import SpatialDiscriminator, SpectralDiscriminator
from hyperldm_engine.models.losses import VQGANLoss, hinge_d_loss, spectral_angle_loss, vanilla_d_loss


def test_discriminator_shapes():
    spatial = SpatialDiscriminator(8, width=8, n_layers=2)
    out = spatial(torch.rand(2, 8, 32, 32))
    assert out.shape == (2, 1, 6, 6)
    spectral = SpectralDiscriminator(8, width=4)
    assert spectral(torch.rand(2, 8, 4, 5)).shape == (40,)
    assert spectral(torch.rand(2, 8, 4, 5), max_pixels=7, generator=torch.Generator().manual_seed(0)).shape == (7,)


def test_spectral_discriminator_is_per_pixel():
    d = SpectralDiscriminator(8, width=4).eval()
    cube = torch.rand(1, 8, 3, 3)
    with torch.no_grad():
        a = d(cube)
        b = d(cube[:, :, 1, 2][None, :, :, None].reshape(1, 8, 1, 1))
    assert torch.allclose(a[1 * 3 + 2], b[0])


def test_known_values():
    assert float(hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0
    assert abs(float(hinge_d_loss(torch.zeros(4), torch.zeros(4))) - 1.0) < 1e-7
    assert abs(float(vanilla_d_loss(torch.zeros(4), torch.zeros(4))) - float(torch.log(torch.tensor(2.0)))) < 1e-6
    x = torch.rand(2, 5, 3, 3) + 0.1
    assert float(spectral_angle_loss(2 * x, x)) < 1e-6
    y = torch.zeros(1, 2, 1, 1)
    y[0, 0] = 1.0
    z = torch.zeros(1, 2, 1, 1)
    z[0, 1] = 1.0
    assert abs(float(spectral_angle_loss(y, z)) - 1.0) < 1e-6  # orthogonal spectra


def test_generator_loss_weights_and_disc_start():
    target = torch.rand(1, 8, 16, 16) + 0.1
    recon = (2 * target).requires_grad_(True)
    vq = torch.tensor(0.5)
    loss_fn = VQGANLoss(disc_start=10)
    spatial, spectral = SpatialDiscriminator(8, 8, 2), SpectralDiscriminator(8, 4)
    loss, log = loss_fn.generator_loss(target, recon, vq, step=3, spatial_disc=spatial, spectral_disc=spectral)
    expected = 100 * float(target.abs().mean()) + 0.5  # angle term is 0 for a scaled spectrum
    assert abs(float(loss.detach()) - expected) < 1e-3 * expected
    assert log["train/disc_factor"] == 0.0 and "train/rec_loss" in log

    last = torch.nn.Parameter(torch.ones(3))
    recon2 = target * last.mean() * 1.5
    loss2, log2 = loss_fn.generator_loss(target, recon2, vq, step=10, spatial_disc=spatial,
                                         spectral_disc=spectral, last_layer=last)  # fmt: skip
    assert log2["train/disc_factor"] == 1.0 and log2["train/d_weight"] > 0
    loss2.backward()
    assert last.grad is not None


def test_discriminator_loss_trains_discriminators():
    loss_fn = VQGANLoss(disc_start=0)
    spatial, spectral = SpatialDiscriminator(8, 8, 2), SpectralDiscriminator(8, 4)
    target, recon = torch.rand(2, 8, 16, 16), torch.rand(2, 8, 16, 16) * 0.2
    loss, log = loss_fn.discriminator_loss(target, recon, 0, spatial, spectral, generator=torch.Generator())
    assert set(log) >= {"train/disc_loss", "train/disc_spatial_loss", "train/disc_spectral_loss"}
    loss.backward()
    assert spatial.net[0].weight.grad.abs().sum() > 0 and spectral.head.weight.grad.abs().sum() > 0
    zero, _ = VQGANLoss(disc_start=5).discriminator_loss(target, recon, 0, spatial, spectral)
    assert float(zero.detach()) == 0.0
