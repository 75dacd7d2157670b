"""The linear mixing model of HyperLDM's decoder: I = t * (R @ A)."""

from __future__ import annotations

from typing import Any

import numpy as np


def mix(R: Any, A: Any, t: Any = 1.0) -> Any:
    """Mix endmembers: ``t[:, None] * (R @ A)``, for numpy arrays or torch tensors.

    R: library ``(n_bands, n_g)``. A: abundances with the endmember axis first after an optional
    batch axis: ``(n_g,)``, ``(n_g, n_pix)``, ``(n_g, H, W)`` or ``(B, n_g, H, W)``.
    t: illumination, a scalar, ``(n_bands,)`` or per batch ``(B, n_bands)``.
    Returns the cube with the band axis where A had the endmember axis. The illumination is
    folded into R once (``n_bands x n_g`` products), then one matmul runs over all pixels.
    """
    if _is_torch(R) or _is_torch(A):
        return _mix_torch(R, A, t)
    R = np.asarray(R)
    A = np.asarray(A)
    t = np.asarray(t, dtype=R.dtype)
    Rt = R * t[..., :, None] if t.ndim else R * t  # (n_bands, n_g) or (B, n_bands, n_g)
    if A.ndim == 1:
        return Rt @ A
    if A.ndim == 2:
        return Rt @ A
    if A.ndim == 3:
        g, h, w = A.shape
        return (Rt @ A.reshape(g, h * w)).reshape(-1, h, w)
    if A.ndim == 4:
        b, g, h, w = A.shape
        return (Rt @ A.reshape(b, g, h * w)).reshape(b, -1, h, w)
    raise ValueError(f"abundances must have 1 to 4 dimensions, not {A.ndim}")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _mix_torch(R: Any, A: Any, t: Any) -> Any:
    import torch

    A = torch.as_tensor(A)
    R = torch.as_tensor(R, dtype=A.dtype, device=A.device)
    t = torch.as_tensor(t, dtype=A.dtype, device=A.device)
    Rt = R * t.unsqueeze(-1) if t.ndim else R * t
    if A.ndim <= 2:
        return Rt @ A
    if A.ndim == 3:
        g, h, w = A.shape
        return (Rt @ A.reshape(g, h * w)).reshape(-1, h, w)
    if A.ndim == 4:
        b, g, h, w = A.shape
        return torch.matmul(Rt, A.reshape(b, g, h * w)).reshape(b, -1, h, w)
    raise ValueError(f"abundances must have 1 to 4 dimensions, not {A.ndim}")
