"""Linear mixing t * (R @ A) in numpy and torch."""

import numpy as np
import pytest

from hyperldm_engine.spectral.mixing import mix


def _data(rng):
    R = rng.random((6, 4)).astype(np.float32)
    A = rng.random((2, 4, 3, 5)).astype(np.float32)
    t = rng.random(6).astype(np.float32) + 0.5
    return R, A, t


def test_numpy_matches_definition():
    R, A, t = _data(np.random.default_rng(0))
    expected = np.einsum("b,bg,ngyx->nbyx", t, R, A)
    np.testing.assert_allclose(mix(R, A, t), expected, rtol=1e-5)
    np.testing.assert_allclose(mix(R, A[0], t), expected[0], rtol=1e-5)
    flat = A[0].reshape(4, -1)
    np.testing.assert_allclose(mix(R, flat, t), t[:, None] * (R @ flat), rtol=1e-5)
    np.testing.assert_allclose(mix(R, A[0, :, 0, 0], 2.0), 2.0 * R @ A[0, :, 0, 0], rtol=1e-6)


def test_torch_matches_numpy_and_backpropagates():
    torch = pytest.importorskip("torch")
    R, A, t = _data(np.random.default_rng(1))
    At = torch.tensor(A, requires_grad=True)
    tt = torch.tensor(t, requires_grad=True)
    out = mix(torch.tensor(R), At, tt)
    assert out.shape == (2, 6, 3, 5)
    np.testing.assert_allclose(out.detach().numpy(), mix(R, A, t), rtol=1e-5)
    out.sum().backward()
    assert At.grad is not None and tt.grad is not None
    per_batch = torch.tensor(np.stack([t, t * 2]))
    out2 = mix(torch.tensor(R), torch.tensor(A), per_batch)
    np.testing.assert_allclose(out2[1].numpy(), 2 * out.detach().numpy()[1], rtol=1e-5)
