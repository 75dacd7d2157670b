import pytest
import torch

from hyperldm_engine.models.classifier import SpectralClassifier
from hyperldm_engine.models.config import ClassifierConfig


def test_layers_and_shapes():
    clf = SpectralClassifier(48, 6)
    convs = [m for m in clf.modules() if isinstance(m, torch.nn.Conv1d)]
    linears = [m for m in clf.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 4 and len(linears) == 1
    p = clf.probabilities(torch.rand(10, 48))
    assert p.shape == (10, 6) and torch.allclose(p.sum(1), torch.ones(10))
    with pytest.raises(ValueError, match="expects"):
        clf(torch.rand(10, 47))


def test_cube_helper_matches_per_pixel():
    clf = SpectralClassifier(8, 3, ClassifierConfig(channels=(4, 4, 8, 8), kernel_size=3)).eval()
    cube = torch.rand(2, 8, 5, 7)
    with torch.no_grad():
        maps = clf.probabilities_cube(cube)
        one = clf.probabilities(cube[1, :, 3, 4][None])[0]
    assert maps.shape == (2, 3, 5, 7)
    assert torch.allclose(maps[1, :, 3, 4], one, atol=1e-6)


def test_learns_separable_spectra():
    g = torch.Generator().manual_seed(0)
    protos = torch.rand(3, 16, generator=g)
    labels = torch.randint(0, 3, (120,), generator=g)
    spectra = protos[labels] + 0.03 * torch.randn(120, 16, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # initial weights only
        clf = SpectralClassifier(16, 3, ClassifierConfig(channels=(8, 8, 16, 16), kernel_size=3))
    opt = torch.optim.Adam(clf.parameters(), lr=2e-2)
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(clf(spectra), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = (clf(spectra).argmax(1) == labels).float().mean()
    assert acc > 0.95
