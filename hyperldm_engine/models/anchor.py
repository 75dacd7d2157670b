"""Latent anchor: a small deterministic network that predicts the scaled latent from the RGB alone.

Why: the diagnosis (docs/model-diagnosis.md) found that the sampled latents, not the decoder, lose
most of the quality: the denoiser's estimate of the clean latent from pure noise is far from the
encoder's latent. A regression from RGB to the (scaled, quantised) encoder latent is an easy,
well-posed problem; decoding it gives the deterministic ``--mode mean`` cube, and starting the
reverse diffusion from the anchor noised to an intermediate step (``anchor_strength``; SDEdit,
Meng et al. 2022; the residual-shift idea of ResShift, Yue et al. 2023, in its simplest form)
keeps the denoiser's diversity around a good centre instead of asking it to find the centre from
noise. Local operators only (3x3 convolutions, per-pixel norm), so overlapping tiles agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hyperldm_engine.models.layers import Downsample, ResBlock, make_norm, zero_module


@dataclass(frozen=True)
class AnchorConfig:
    """Widths per /2 level (the last is the latent grid's), residual blocks at the latent grid, and
    the default strength: the fraction of the diffusion's T steps the sampler starts from (1 = pure
    noise, the paper's sampling; 0 = the anchor itself, decoded)."""

    channels: tuple[int, ...] = (16, 48, 64)
    latent_blocks: int = 3
    strength: float = 0.5

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, d: dict) -> AnchorConfig:
        return cls(channels=tuple(int(c) for c in d["channels"]), latent_blocks=int(d["latent_blocks"]),
                   strength=float(d["strength"]))


class LatentAnchor(nn.Module):
    """Normalised RGB (B, 3, H, W) -> predicted scaled latent (B, n_x, H/f, W/f), f = 2^(levels-1)."""

    def __init__(self, config: AnchorConfig, latent_channels: int, factor: int) -> None:
        super().__init__()
        ch = config.channels
        if 2 ** (len(ch) - 1) != factor:
            raise ValueError(f"anchor: {len(ch)} levels give factor {2 ** (len(ch) - 1)}, the VQGAN's is {factor}")
        self.config = config
        self.stem = nn.Sequential(nn.Conv2d(3, ch[0], 3, padding=1), nn.SiLU(), nn.Conv2d(ch[0], ch[0], 3, padding=1))
        self.down = nn.ModuleList(
            nn.Sequential(nn.SiLU(), Downsample(ch[i - 1], ch[i]), ResBlock(ch[i], ch[i])) for i in range(1, len(ch))
        )
        self.blocks = nn.Sequential(*(ResBlock(ch[-1], ch[-1]) for _ in range(config.latent_blocks)))
        self.norm_out = make_norm("pixel", ch[-1])
        self.conv_out = zero_module(nn.Conv2d(ch[-1], latent_channels, 3, padding=1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        h = self.stem(rgb)
        for block in self.down:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(self.blocks(h))))
