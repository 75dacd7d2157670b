"""Discriminators of stage 1: a spatial PatchGAN on the HSI and a spectral 1D net on pixel spectra.

Both return raw logits (real > fake); the losses in ``models.losses`` apply hinge or
non-saturating objectives. They only run in training, so GroupNorm / strided layers are fine here.
"""

from __future__ import annotations

import torch
from torch import nn


class SpatialDiscriminator(nn.Module):
    """PatchGAN: 4x4 stride-2 convolutions, LeakyReLU(0.2), GroupNorm; one logit per patch."""

    def __init__(self, n_bands: int, width: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(n_bands, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(1, n_layers + 1):
            nxt = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(ch, nxt, 4, stride=stride, padding=1, bias=False),
                nn.GroupNorm(min(32, nxt), nxt),
                nn.LeakyReLU(0.2),
            ]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, hsi: torch.Tensor) -> torch.Tensor:
        """Logits (B, 1, h', w') for HSI (B, n_bands, H, W); H, W >= 2 ** (n_layers + 2) or so."""
        return self.net(hsi)


class SpectralDiscriminator(nn.Module):
    """1D convolutions along the band axis of each pixel spectrum; one logit per pixel."""

    def __init__(self, n_bands: int, width: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        self.n_bands = n_bands
        layers: list[nn.Module] = []
        ch, length = 1, n_bands
        for i in range(n_layers):
            nxt = width * 2**i
            layers += [nn.Conv1d(ch, nxt, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
            ch, length = nxt, (length - 1) // 2 + 1
        self.convs = nn.Sequential(*layers)
        self.head = nn.Linear(ch * length, 1)

    def forward(
        self, hsi: torch.Tensor, max_pixels: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Logits (N,) for the spectra of HSI (B, n_bands, H, W) or spectra (N, n_bands).

        ``max_pixels`` draws that many pixels at random (with ``generator``) to bound the cost;
        use the same generator state for real and fake to compare the same pixels.
        """
        spectra = hsi.permute(0, 2, 3, 1).reshape(-1, hsi.shape[1]) if hsi.dim() == 4 else hsi
        if spectra.shape[1] != self.n_bands:
            raise ValueError(f"spectral discriminator expects {self.n_bands} bands, got {spectra.shape[1]}")
        if max_pixels is not None and spectra.shape[0] > max_pixels:
            device = generator.device if generator is not None else spectra.device
            pick = torch.randperm(spectra.shape[0], generator=generator, device=device)[:max_pixels]
            spectra = spectra[pick.to(spectra.device)]
        h = self.convs(spectra.unsqueeze(1))
        return self.head(h.flatten(1)).squeeze(1)
