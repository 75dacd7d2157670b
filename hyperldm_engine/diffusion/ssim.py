"""Differentiable SSIM (Wang et al. 2004) with a Gaussian window, for the diffusion training loss.

Statistics are Gaussian-weighted local means over an 11 x 11 window (sigma 1.5) computed per channel
with separable convolutions, the biased (population) local variances (clamped at 0), and stabilisers
``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` where ``L`` is the data range, i.e. the span of values the signal
may take (for unit-variance latents about 8, not 1). ``padding='reflect'`` (default) reflect-pads the
image by half a window so every pixel gets an SSIM value (small latent tiles keep their borders), as
torchmetrics' ``structural_similarity_index_measure`` does; ``padding='valid'`` uses only windows
wholly inside the image, as scikit-image's ``structural_similarity`` (Gaussian weights) does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_window_1d(kernel_size: int, sigma: float, dtype: torch.dtype,
                       device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian weights of odd length ``kernel_size``."""
    half = (kernel_size - 1) / 2
    x = torch.arange(kernel_size, dtype=dtype, device=device) - half
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float | torch.Tensor, kernel_size: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, reduction: str = "mean",
         padding: str = "reflect") -> torch.Tensor:
    """SSIM between ``x`` and ``y`` of shape ``(B, C, H, W)``.

    H and W must exceed ``kernel_size // 2`` ('reflect') or reach ``kernel_size`` ('valid').
    ``reduction``: 'mean' -> scalar; 'none' -> per-sample ``(B,)`` (mean over channels and pixels);
    'map' -> the SSIM map. Differentiable in both arguments.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim expects two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if kernel_size % 2 == 0 or kernel_size < 1:
        raise ValueError(f"ssim kernel_size must be odd and positive, got {kernel_size}")
    half = kernel_size // 2
    if padding == "reflect":
        if min(x.shape[-2:]) <= half:
            raise ValueError(f"ssim needs images larger than {half} x {half} pixels, got "
                             f"{tuple(x.shape[-2:])}")
        x = F.pad(x, (half, half, half, half), mode="reflect")
        y = F.pad(y, (half, half, half, half), mode="reflect")
    elif padding == "valid":
        if min(x.shape[-2:]) < kernel_size:
            raise ValueError(f"ssim needs images of at least {kernel_size} x {kernel_size} pixels, got "
                             f"{tuple(x.shape[-2:])}")
    else:
        raise ValueError(f"ssim padding must be 'reflect' or 'valid', got {padding!r}")
    B, C = x.shape[:2]
    w = gaussian_window_1d(kernel_size, sigma, x.dtype, x.device)
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (B, 5C, H, W)
    n = stacked.shape[1]
    stats = F.conv2d(stacked, w.view(1, 1, -1, 1).expand(n, 1, kernel_size, 1), groups=n)
    stats = F.conv2d(stats, w.view(1, 1, 1, -1).expand(n, 1, 1, kernel_size), groups=n)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(C, dim=1)
    var_x = (e_xx - mu_x * mu_x).clamp_min(0.0)
    var_y = (e_yy - mu_y * mu_y).clamp_min(0.0)
    cov = e_xy - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    smap = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    if reduction == "map":
        return smap
    per_sample = smap.reshape(B, -1).mean(dim=1)
    if reduction == "none":
        return per_sample
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"ssim reduction must be 'mean', 'none' or 'map', got {reduction!r}")
