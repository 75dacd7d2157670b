"""Conditional VQGAN (stage 1): HSI -> quantised latent -> abundances over a spectral library.

Encoder E: HSI (B, n_bands, H, W) -> z (B, n_x, H/f, W/f). Quantiser: L1 nearest code of K.
Condition encoder C: RGB (B, 3, H, W) -> feature pyramid from full resolution down to the latent
grid. Decoder T(z_q, C(RGB)) -> per-pixel abundance logits over the n_g library spectra; softmax
gives abundances A (sum 1, non-negative); one learned positive illumination vector t (n_bands,)
per model (softplus or ReLU of a parameter, as the authors' code). HSI = t * (R @ A), R fixed.

The decoder uses only local operators (3x3 convolutions, per-pixel norm), no GroupNorm over a tile
and no global attention, so overlapping tiles agree on their common pixels. The head runs
channels-last in pixel chunks with t folded into R once per call: ``A @ (t[:, None] * R).T`` equals
``hyperldm_engine.spectral.mixing.mix(R, A, t)`` (checked in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hyperldm_engine.models.config import ModelConfig
from hyperldm_engine.models.layers import Downsample, ResBlock, Upsample, make_norm
from hyperldm_engine.models.quantizer import QuantizeOutput, VectorQuantizer
from hyperldm_engine.timings import timed

#: pixels per block of the abundance head (logits + softmax + mixing): 2048 x 300 logits = 2.4 MiB stay
#: in cache between the three passes; the head is memory-bound, and on a 512 px tile 2048 took 0.28-0.30 s
#: against 0.40-0.45 s for 16384 (2 threads; outputs bit-identical, each pixel is computed alone).
HEAD_CHUNK = 2048


@dataclass
class DecoderOutput:
    """``hsi`` (B, n_bands, H, W); ``abundances`` (B, n_g, H, W) or None; ``illumination`` (n_bands,)."""

    hsi: torch.Tensor
    abundances: torch.Tensor | None
    illumination: torch.Tensor


@dataclass
class VQGANOutput:
    """Reconstruction and everything the stage-1 loss needs."""

    hsi: torch.Tensor
    abundances: torch.Tensor
    z: torch.Tensor
    z_q: torch.Tensor
    vq_loss: torch.Tensor
    indices: torch.Tensor
    illumination: torch.Tensor


class ConditionEncoder(nn.Module):
    """C(RGB): features at full resolution and each /2 step down to the latent grid."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels[0], channels[0], 3, padding=1),
            nn.SiLU(),
        )
        self.down = nn.ModuleList(
            nn.Sequential(
                Downsample(channels[i - 1], channels[i]),
                nn.SiLU(),
                nn.Conv2d(channels[i], channels[i], 3, padding=1),
                nn.SiLU(),
            )
            for i in range(1, len(channels))
        )

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(rgb)]
        for block in self.down:
            feats.append(block(feats[-1]))
        return feats


class Encoder(nn.Module):
    """E: HSI -> z on the latent grid (n_x channels), local operators only."""

    def __init__(
        self, n_bands: int, channels: tuple[int, ...], num_res_blocks: int, latent_channels: int, norm: str
    ) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(n_bands, channels[0], 3, padding=1)
        blocks: list[nn.Module] = []
        for i, ch in enumerate(channels):
            if i > 0:
                blocks.append(Downsample(channels[i - 1], ch))
            blocks.extend(ResBlock(ch, ch, norm) for _ in range(num_res_blocks))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = make_norm(norm, channels[-1])
        self.conv_out = nn.Conv2d(channels[-1], latent_channels, 3, padding=1)

    def forward(self, hsi: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.conv_in(hsi))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """T: z_q (+ condition pyramid) -> full-resolution features for the abundance head."""

    def __init__(
        self,
        latent_channels: int,
        channels: tuple[int, ...],
        cond_channels: tuple[int, ...] | None,
        num_res_blocks: int,
        norm: str,
    ) -> None:
        super().__init__()
        n = len(channels)
        cc = cond_channels if cond_channels is not None else (0,) * n
        self.conv_in = nn.Conv2d(latent_channels + cc[-1], channels[-1], 3, padding=1)
        self.latent_blocks = nn.Sequential(*(ResBlock(channels[-1], channels[-1], norm) for _ in range(num_res_blocks)))
        self.ups = nn.ModuleList()
        self.levels = nn.ModuleList()
        for i in range(n - 2, -1, -1):
            self.ups.append(Upsample(channels[i + 1], channels[i]))
            first = ResBlock(channels[i] + cc[i], channels[i], norm)
            rest = [ResBlock(channels[i], channels[i], norm) for _ in range(max(num_res_blocks - 1, 0))]
            self.levels.append(nn.Sequential(first, *rest))
        self.norm_out = make_norm(norm, channels[0])
        self.use_cond = cond_channels is not None

    def forward(self, z_q: torch.Tensor, cond: list[torch.Tensor] | None) -> torch.Tensor:
        n = len(self.levels) + 1
        h = torch.cat([z_q, cond[n - 1]], dim=1) if self.use_cond else z_q
        h = self.latent_blocks(self.conv_in(h))
        for k, (up, level) in enumerate(zip(self.ups, self.levels, strict=True)):
            i = n - 2 - k
            h = up(h)
            if self.use_cond:
                h = torch.cat([h, cond[i]], dim=1)
            h = level(h)
        return F.silu(self.norm_out(h))


class ConditionalVQGAN(nn.Module):
    """The paper's conditional VQGAN with a fixed linear-mixing output layer.

    ``library`` is R, (n_bands, n_library) reflectance 0-1, stored as a non-trainable buffer that is
    not part of ``state_dict`` (the bundle stores it once, as ``library.R``).
    """

    def __init__(self, config: ModelConfig, library: torch.Tensor) -> None:
        super().__init__()
        cfg = config.vqgan
        library = torch.as_tensor(library, dtype=torch.float32)
        if tuple(library.shape) != (config.n_bands, config.n_library):
            raise ValueError(
                f"library R has shape {tuple(library.shape)}, config expects ({config.n_bands}, {config.n_library})"
            )
        if not torch.isfinite(library).all():
            raise ValueError("library R contains non-finite values")
        self.config = config
        self.factor = cfg.downsample_factor
        self.register_buffer("library", library.clone(), persistent=False)
        self.encoder = Encoder(config.n_bands, cfg.encoder_channels, cfg.num_res_blocks, cfg.latent_channels, cfg.norm)
        self.quantizer = VectorQuantizer(
            cfg.codebook_size, cfg.latent_channels, cfg.beta, cfg.usage_decay, cfg.dead_code_threshold
        )
        self.condition_encoder = ConditionEncoder(cfg.condition_channels) if cfg.use_rgb_condition else None
        self.decoder = Decoder(
            cfg.latent_channels,
            cfg.decoder_channels,
            cfg.condition_channels if cfg.use_rgb_condition else None,
            max(cfg.num_res_blocks, 1),
            cfg.norm,
        )
        self.abundance_head = nn.Linear(cfg.decoder_channels[0], config.n_library)
        # t = act(param); softplus(0.5413) = 1 and relu(1) = 1: start from flat illumination.
        init = 0.5413248546129181 if cfg.illumination_activation == "softplus" else 1.0
        self.illumination_param = nn.Parameter(torch.full((config.n_bands,), init))

    # ---- parts ---------------------------------------------------------------------------------
    def illumination(self) -> torch.Tensor:
        """The learned positive illumination spectrum t, (n_bands,)."""
        if self.config.vqgan.illumination_activation == "softplus":
            return F.softplus(self.illumination_param)
        return F.relu(self.illumination_param)

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the decoder's last trainable layer (for the adaptive adversarial weight)."""
        return self.abundance_head.weight

    def _check_hw(self, x: torch.Tensor, what: str) -> None:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"{what} size {h}x{w} is not a multiple of the latent factor {self.factor}")

    def encode(self, hsi: torch.Tensor) -> torch.Tensor:
        """HSI (B, n_bands, H, W), H and W multiples of f -> z (B, n_x, H/f, W/f), not quantised."""
        self._check_hw(hsi, "HSI")
        return self.encoder(hsi)

    def quantize(self, z: torch.Tensor) -> QuantizeOutput:
        return self.quantizer(z)

    def encode_condition(self, rgb: torch.Tensor | None) -> list[torch.Tensor] | None:
        """C(RGB) feature pyramid; None when the model was trained without the RGB condition."""
        if self.condition_encoder is None:
            return None
        if rgb is None:
            raise ValueError("this VQGAN is conditioned on RGB; pass rgb to decode")
        self._check_hw(rgb, "RGB")
        return self.condition_encoder(rgb)

    def decode(self, z_q: torch.Tensor, rgb: torch.Tensor | None, return_abundances: bool = True) -> DecoderOutput:
        """z_q (B, n_x, h, w) and RGB (B, 3, f*h, f*w) -> HSI = t * (R @ A), reflectance-like units.

        ``return_abundances=False`` skips keeping A (saves n_g floats per pixel at synthesis).
        """
        cond = self.encode_condition(rgb)
        if cond is not None and tuple(cond[-1].shape[-2:]) != tuple(z_q.shape[-2:]):
            raise ValueError(
                f"RGB {tuple(rgb.shape[-2:])} does not match latent {tuple(z_q.shape[-2:])} x {self.factor}"
            )
        feats = self.decoder(z_q, cond)
        hsi, abundances = self.mix_head(feats, return_abundances)
        return DecoderOutput(hsi=hsi, abundances=abundances, illumination=self.illumination())

    def decode_rgb_only(self, rgb: torch.Tensor, return_abundances: bool = True) -> DecoderOutput:
        """The deterministic estimate from the RGB alone: the decoder given a zero latent.

        Meaningful for models trained with ``latent_dropout > 0`` (the mean mode); others were never
        shown a zero latent and give a poor cube (the diagnosis measures both).
        """
        f = self.factor
        z = rgb.new_zeros(rgb.shape[0], self.config.vqgan.latent_channels, rgb.shape[-2] // f, rgb.shape[-1] // f)
        return self.decode(z, rgb, return_abundances)

    def decode_indices(self, indices: torch.Tensor, rgb: torch.Tensor | None) -> DecoderOutput:
        return self.decode(self.quantizer.lookup(indices), rgb)

    def forward(self, hsi: torch.Tensor, rgb: torch.Tensor | None,
                latent_keep: torch.Tensor | None = None) -> VQGANOutput:
        """Reconstruct ``hsi``; ``latent_keep`` (B,) bool zeroes the latent of the False samples
        (latent dropout: those are decoded from the RGB condition alone)."""
        z = self.encode(hsi)
        q = self.quantize(z)
        z_q = q.z_q
        if latent_keep is not None:
            z_q = z_q * latent_keep.to(z_q.dtype).reshape(-1, 1, 1, 1)
        dec = self.decode(z_q, rgb, return_abundances=True)
        assert dec.abundances is not None
        return VQGANOutput(
            hsi=dec.hsi,
            abundances=dec.abundances,
            z=z,
            z_q=q.z_q,
            vq_loss=q.loss,
            indices=q.indices,
            illumination=dec.illumination,
        )

    # ---- head ----------------------------------------------------------------------------------
    def mix_head(self, feats: torch.Tensor, return_abundances: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decoder features -> abundance logits -> softmax -> ``t * (R @ A)`` (the cube, and the
        abundances when asked), channels-last in blocks of HEAD_CHUNK pixels. Public so that a caller
        that runs the decoder itself (:func:`decode_shared_condition`) finishes the same way."""
        b, c, h, w = feats.shape
        pixels = feats.permute(0, 2, 3, 1).reshape(-1, c)
        t = self.illumination()
        rt = (t[:, None] * self.library).t()  # (n_g, n_bands): t folded into R once
        hsi_parts, ab_parts = [], []
        for start in range(0, pixels.shape[0], HEAD_CHUNK):
            logits = self.abundance_head(pixels[start : start + HEAD_CHUNK])
            a = torch.softmax(logits, dim=1)
            hsi_parts.append(a @ rt)
            if return_abundances:
                ab_parts.append(a)
        n_bands = rt.shape[1]
        hsi = torch.cat(hsi_parts).view(b, h, w, n_bands).permute(0, 3, 1, 2).contiguous()
        abundances = None
        if return_abundances:
            abundances = torch.cat(ab_parts).view(b, h, w, -1).permute(0, 3, 1, 2)
        return hsi, abundances


def repeat_per_tile(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, ...) -> (B*K, ...), each tile's row repeated K times in a row (tile b, sample s at b*K + s).

    One tile is broadcast (expand, no copy), as before batching; several are copied.
    """
    if k == 1:
        return x
    if x.shape[0] == 1:
        return x.expand(k, *x.shape[1:])
    return x.repeat_interleave(k, dim=0)


@timed("tile: decode")
def decode_shared_condition(vqgan: Any, z_q: torch.Tensor, rgb: torch.Tensor,
                            abundances: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``vqgan.decode(z_q, rgb repeated K times per tile)`` with each RGB condition pyramid computed once.

    ``z_q`` is (B*K, n_x, h, w) with tile b's K samples at rows b*K .. b*K+K-1, ``rgb`` (B, 3, f*h, f*w);
    returns (hsi (B*K, n_bands, f*h, f*w), abundances (B*K, n_g, f*h, f*w) or None). Identical values:
    the condition encoder sees the same RGB for all K samples of a tile, so its features are
    repeated (broadcast without a copy when B = 1) instead of recomputed.
    """
    n, b = z_q.shape[0], rgb.shape[0]
    if n % b:
        raise ValueError(f"{n} latents for {b} RGB conditions: expected K latents per condition")
    cond = vqgan.encode_condition(rgb)
    if cond is not None:
        if tuple(cond[-1].shape[-2:]) != tuple(z_q.shape[-2:]):
            raise ValueError(f"RGB {tuple(rgb.shape[-2:])} does not match latent {tuple(z_q.shape[-2:])}")
        cond = [repeat_per_tile(c, n // b) for c in cond]
    feats = vqgan.decoder(z_q, cond)
    return vqgan.mix_head(feats, abundances)
