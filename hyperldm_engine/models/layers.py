"""Building blocks shared by the VQGAN and the U-Net: norms, residual blocks, resampling.

``PixelNorm`` normalises the channels of each pixel on its own (a channel-wise LayerNorm), so a
network built from it and from local convolutions gives the same values for a pixel whatever the
tile it is computed in (away from the convolutions' reach of the border): tiles agree at seams.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PixelNorm(nn.Module):
    """LayerNorm over channels at every pixel of a ``(B, C, H, W)`` tensor, with affine parameters."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # fused layer_norm on a channels-last view: about 3x faster (forward + backward) than
        # mean / var reductions over dim 1 on CPU; the result keeps channels-last strides.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


def make_norm(kind: str, channels: int) -> nn.Module:
    """``pixel`` (tile-independent), ``group`` (GroupNorm(32), spatial statistics) or ``none``."""
    if kind == "pixel":
        return PixelNorm(channels)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels, eps=1e-6)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters so that a residual branch starts as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """norm - SiLU - conv3x3 - norm - SiLU - conv3x3, plus a (1x1 when widths differ) skip."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "pixel") -> None:
        super().__init__()
        self.norm1 = make_norm(norm, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = make_norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve H and W with a stride-2 3x3 convolution (symmetric padding, so sides must be even)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double H and W: nearest neighbour, then a 3x3 convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
