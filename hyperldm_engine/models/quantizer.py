"""Vector quantiser of the conditional VQGAN: K codes of n_x channels, nearest code by L1 distance.

Loss (paper eq., with the commitment weight ``beta`` made explicit; the paper uses beta = 1):
``mean((sg[z] - z_q)^2) + beta * mean((sg[z_q] - z)^2)``. Gradients pass straight through the
quantisation to the encoder (``z + sg[z_q - z]``). Code usage is tracked as an EMA of assignment
counts so that the trainer can re-seed dead codes from encoder outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

#: latent vectors per block of the distance computation; the block's distance matrix is
#: ``chunk x K`` floats (4096 x 1024 -> 16 MiB), whatever the latent size.
DISTANCE_CHUNK = 4096


@dataclass
class QuantizeOutput:
    """``z_q`` (B, n_x, h, w) with straight-through gradient, scalar ``loss``, ``indices`` (B, h, w)."""

    z_q: torch.Tensor
    loss: torch.Tensor
    indices: torch.Tensor


def nearest_code_l1(vectors: torch.Tensor, codebook: torch.Tensor, chunk: int = DISTANCE_CHUNK) -> torch.Tensor:
    """Index of the L1-nearest code for each row of ``vectors`` (N, D) in ``codebook`` (K, D).

    Computed in blocks of ``chunk`` rows, so memory is ``chunk * K`` floats for any N. Ties go to
    the lowest index (``argmin``).
    """
    vectors = vectors.detach()
    codebook = codebook.detach()
    out = torch.empty(vectors.shape[0], dtype=torch.long, device=vectors.device)
    for start in range(0, vectors.shape[0], chunk):
        block = vectors[start : start + chunk]
        dist_l1 = torch.cdist(block.unsqueeze(0), codebook.unsqueeze(0), p=1.0).squeeze(0)
        out[start : start + chunk] = dist_l1.argmin(dim=1)
    return out


class VectorQuantizer(nn.Module):
    """Codebook of ``codebook_size`` vectors of ``dim`` channels, L1 nearest-code assignment."""

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        beta: float = 1.0,
        usage_decay: float = 0.99,
        dead_code_threshold: float = 0.01,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.dim = dim
        self.beta = beta
        self.usage_decay = usage_decay
        self.dead_code_threshold = dead_code_threshold
        self.embedding = nn.Embedding(codebook_size, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        # EMA of per-step assignment counts; starts at 1 so no code is "dead" before it had a chance.
        self.register_buffer("usage", torch.ones(codebook_size))

    def forward(self, z: torch.Tensor) -> QuantizeOutput:
        """Quantise ``z`` (B, n_x, h, w); updates the usage EMA in training mode."""
        b, c, h, w = z.shape
        if c != self.dim:
            raise ValueError(f"quantizer expects {self.dim} channels, got {c}")
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        indices = nearest_code_l1(flat, self.embedding.weight)
        z_q = self.embedding(indices).view(b, h, w, c).permute(0, 3, 1, 2)
        loss = torch.mean((z.detach() - z_q) ** 2) + self.beta * torch.mean((z_q.detach() - z) ** 2)
        if self.training:
            with torch.no_grad():
                counts = torch.bincount(indices, minlength=self.codebook_size).to(self.usage.dtype)
                self.usage.mul_(self.usage_decay).add_(counts, alpha=1.0 - self.usage_decay)
        z_q = z + (z_q - z).detach()  # straight-through estimator
        return QuantizeOutput(z_q=z_q, loss=loss, indices=indices.view(b, h, w))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes for integer ``indices`` (B, h, w) as a (B, n_x, h, w) latent."""
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()

    def dead_codes(self, threshold: float | None = None) -> torch.Tensor:
        """Boolean mask (K,) of codes whose usage EMA is below ``threshold``."""
        threshold = self.dead_code_threshold if threshold is None else threshold
        return self.usage < threshold

    @torch.no_grad()
    def reseed_dead_codes(
        self, z: torch.Tensor, threshold: float | None = None, generator: torch.Generator | None = None
    ) -> int:
        """Replace dead codes by randomly chosen encoder outputs ``z`` ((B, n_x, h, w) or (N, n_x)).

        ``threshold=float('inf')`` re-seeds the whole codebook (data-dependent initialisation).
        Re-seeded codes get usage 1 again. Under torch.distributed the result of rank 0 is broadcast,
        so all ranks keep the same codebook. Returns the number of codes replaced.
        """
        flat = z.detach().permute(0, 2, 3, 1).reshape(-1, self.dim) if z.dim() == 4 else z.detach()
        dead = self.dead_codes(threshold)
        n_dead = int(dead.sum())
        if n_dead and flat.shape[0]:
            device = generator.device if generator is not None else flat.device
            pick = torch.randint(0, flat.shape[0], (n_dead,), generator=generator, device=device)
            weight = self.embedding.weight
            weight[dead] = flat[pick.to(flat.device)].to(weight)
            self.usage[dead] = 1.0
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(self.embedding.weight.data, src=0)
            dist.broadcast(self.usage, src=0)
        return n_dead
