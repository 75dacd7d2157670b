"""Latent denoiser (stage 2): a U-Net that predicts the noise eps from x_t, t and the RGB condition.

ResBlocks (``num_res_blocks`` per level) with FiLM from the timestep embedding,
``h = (1 + scale) * norm(h) + shift``; the embedding is sinusoidal then two linear layers of width
``time_embed_dim``. Self-attention at the levels listed in ``attention_downsample`` (factors below
the latent grid). The RGB condition encoder maps (B, 3, f*h, f*w) to ``cond_channels`` on the latent
grid; it runs once per tile (``encode_condition``) and its output is concatenated with x_t at every
step (``forward``). Latent sides must be multiples of ``config.denoiser.alignment``
(2 ** (levels - 1): 4 for ``small``, 32 for ``paper``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hyperldm_engine.models.config import ModelConfig
from hyperldm_engine.models.layers import Downsample, Upsample, make_norm, zero_module


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of integer or real timesteps t (B,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class FiLMResBlock(nn.Module):
    """norm - SiLU - conv - norm - FiLM((1 + scale) h + shift) - SiLU - dropout - conv, plus skip."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, norm: str, dropout: float) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(embed_dim, 2 * out_channels)
        self.norm2 = make_norm(norm, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the h*w positions of one tile, residual."""

    def __init__(self, channels: int, head_channels: int, norm: str) -> None:
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = make_norm(norm, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_module(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # (b, heads, hw, d)
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class RGBConditionEncoder(nn.Module):
    """RGB (B, 3, f*h, f*w) -> (B, cond_channels, h, w) with log2(f) stride-2 steps."""

    def __init__(self, factor: int, hidden: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        steps = int(math.log2(factor))
        widths = [hidden[min(i, len(hidden) - 1)] for i in range(steps + 1)]
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1), nn.SiLU()]
        for i in range(steps):
            layers += [Downsample(widths[i], widths[i + 1]), nn.SiLU()]
        layers.append(nn.Conv2d(widths[-1], out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(rgb)


class LatentDenoiser(nn.Module):
    """eps-prediction U-Net on the VQGAN latent grid, conditioned on RGB and the timestep."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        cfg = config.denoiser
        self.config = config
        self.factor = config.vqgan.downsample_factor
        self.latent_channels = config.vqgan.latent_channels
        self.alignment = cfg.alignment
        ch = cfg.channels
        emb = cfg.time_embed_dim
        self.time_freq_dim = ch[0]
        self.time_embed = nn.Sequential(nn.Linear(ch[0], emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond_encoder = RGBConditionEncoder(self.factor, cfg.cond_hidden, cfg.cond_channels)
        self.conv_in = nn.Conv2d(self.latent_channels + cfg.cond_channels, ch[0], 3, padding=1)

        def block(cin: int, cout: int) -> FiLMResBlock:
            return FiLMResBlock(cin, cout, emb, cfg.norm, cfg.dropout)

        def attn(c: int, level: int) -> nn.Module:
            if 2**level in cfg.attention_downsample:
                return SelfAttention(c, cfg.head_channels, cfg.norm)
            return nn.Identity()

        self.down_blocks = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        prev = ch[0]
        for level, c in enumerate(ch):
            self.down_blocks.append(nn.ModuleList(block(prev if j == 0 else c, c) for j in range(cfg.num_res_blocks)))
            self.down_attn.append(nn.ModuleList(attn(c, level) for _ in range(cfg.num_res_blocks)))
            prev = c
            if level < len(ch) - 1:
                self.downsamplers.append(Downsample(c, c))
        deepest = len(ch) - 1
        self.mid1 = block(ch[-1], ch[-1])
        self.mid_attn = attn(ch[-1], deepest)
        self.mid2 = block(ch[-1], ch[-1])

        self.up_blocks = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        prev = ch[-1]
        for level in range(deepest, -1, -1):
            c = ch[level]
            self.up_blocks.append(nn.ModuleList(block(prev + c if j == 0 else c, c) for j in range(cfg.num_res_blocks)))
            self.up_attn.append(nn.ModuleList(attn(c, level) for _ in range(cfg.num_res_blocks)))
            prev = c
            if level > 0:
                self.upsamplers.append(Upsample(c, ch[level - 1]))
                prev = ch[level - 1]
        self.norm_out = make_norm(cfg.norm, ch[0])
        self.conv_out = zero_module(nn.Conv2d(ch[0], self.latent_channels, 3, padding=1))

    def encode_condition(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB (B, 3, f*h, f*w) -> condition (B, cond_channels, h, w); compute once per tile."""
        hh, ww = rgb.shape[-2:]
        if hh % self.factor or ww % self.factor:
            raise ValueError(f"RGB size {hh}x{ww} is not a multiple of the latent factor {self.factor}")
        return self.cond_encoder(rgb)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predicted noise (B, n_x, h, w) for x_t (B, n_x, h, w), timesteps t (B,) or scalar, cond."""
        h_, w_ = x_t.shape[-2:]
        if h_ % self.alignment or w_ % self.alignment:
            raise ValueError(f"latent size {h_}x{w_} is not a multiple of {self.alignment} (2 ** (levels - 1))")
        if tuple(cond.shape[-2:]) != (h_, w_):
            raise ValueError(f"condition grid {tuple(cond.shape[-2:])} does not match latent {(h_, w_)}")
        t = torch.as_tensor(t, device=x_t.device)
        if t.dim() == 0:
            t = t.expand(x_t.shape[0])
        emb = self.time_embed(timestep_embedding(t, self.time_freq_dim).to(x_t.dtype))
        if cond.shape[0] != x_t.shape[0]:
            cond = cond.expand(x_t.shape[0], -1, -1, -1)
        h = self.conv_in(torch.cat([x_t, cond], dim=1))
        skips = []
        for level, (blocks, attns) in enumerate(zip(self.down_blocks, self.down_attn, strict=True)):
            for blk, att in zip(blocks, attns, strict=True):
                h = att(blk(h, emb))
            skips.append(h)
            if level < len(self.downsamplers):
                h = self.downsamplers[level](h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for k, (blocks, attns) in enumerate(zip(self.up_blocks, self.up_attn, strict=True)):
            h = torch.cat([h, skips.pop()], dim=1)
            for blk, att in zip(blocks, attns, strict=True):
                h = att(blk(h, emb))
            if k < len(self.upsamplers):
                h = self.upsamplers[k](h)
        return self.conv_out(F.silu(self.norm_out(h)))
