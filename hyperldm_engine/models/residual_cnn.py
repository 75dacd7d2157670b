"""A small residual CNN from the normalised RGB to the cube (HSCNN+-like, HSCNN-R).

``out = linear(rgb) + tail(blocks(head(rgb)))``: ``linear`` is a 1 x 1 convolution (3 -> bands), which
may start from a degree-1 ridge solution, and the residual branch of 3 x 3 convolutions learns the
spatial context a per-pixel regression cannot use. The quality report trains one as its CNN baseline
(``train.baselines``); a bundle may carry a narrower one as (part of) the anchor of
``--rgb-correction anchored`` (``spectral.fusion.NetworkAnchor``, ``JointAnchor``; not the default model).
Its receptive field is ``2 * (2 + 2 * blocks)`` + 1 px (17 px at 3 blocks), well inside a tile's overlap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class _ResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ResidualCNN(nn.Module):
    """Normalised RGB ``(B, 3, H, W)`` -> cube ``(B, n_bands, H, W)``: a 1 x 1 linear spectral upsampling plus a
    residual 3 x 3 convolution stack (zero-initialised output, so training starts at the linear map)."""

    def __init__(self, n_bands: int = 48, width: int = 48, blocks: int = 6) -> None:
        super().__init__()
        self.width, self.n_blocks = int(width), int(blocks)
        self.linear = nn.Conv2d(3, n_bands, 1)
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.blocks = nn.Sequential(*[_ResBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, n_bands, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.linear(rgb) + self.tail(self.blocks(F.relu(self.head(rgb))))

    def init_linear(self, ridge: Any) -> None:
        """Start the 1 x 1 branch at a degree-1 ridge solution (``ridge.weights`` (4, bands): intercept, r, g, b)."""
        if ridge.degree != 1:
            raise ValueError("the CNN's linear branch takes a degree-1 ridge solution")
        w = torch.as_tensor(np.asarray(ridge.weights), dtype=torch.float32)
        with torch.no_grad():
            self.linear.bias.copy_(w[0])
            self.linear.weight.copy_(w[1:].t()[:, :, None, None])

    @property
    def n_parameters(self) -> int:
        return int(sum(p.numel() for p in self.parameters()))

    def macs_per_pixel(self) -> int:
        """Multiply-accumulates per output pixel (the cost that scales with the scene)."""
        return int(sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Conv2d)))

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Normalised RGB ``(3, h, w)`` -> cube ``(bands, h, w)`` float32 (whole scene at once)."""
        self.eval()
        with torch.inference_mode():
            out = self(torch.from_numpy(np.ascontiguousarray(rgb, np.float32))[None])
        return out[0].numpy().astype(np.float32)
