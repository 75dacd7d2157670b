"""Spectral classifier S for the SD / SDM diversity metrics: four Conv1d layers and one Linear layer.

Maps each pixel spectrum (reflectance 0-1, ``n_bands`` values) to logits over ``n_classes``;
``probabilities`` gives the softmax the metrics use. Spectra are processed in chunks so a whole
cube can be classified with bounded memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hyperldm_engine.models.config import ClassifierConfig

#: spectra per block in ``probabilities_cube``. Small enough that each activation (2048 spectra x 16
#: channels x the bands, 6 MB at 48 bands) stays below glibc's 32 MiB mmap ceiling and is reused from the
#: heap: with 65536 every activation was a fresh mmap, page-faulted in, and a 5-sample 512^2 ``diversity``
#: ran 1.8x slower, sys 62 s of 113 s CPU (benchmarks/RESULTS.md, "Diversity statistics").
CUBE_CHUNK = 2048


class SpectralClassifier(nn.Module):
    """Conv1d x 4 (ReLU; the 2nd and 4th halve the band axis) then Linear to class logits."""

    def __init__(self, n_bands: int, n_classes: int, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        cfg = config or ClassifierConfig()
        cfg.validate()
        self.n_bands = n_bands
        self.n_classes = n_classes
        k, p = cfg.kernel_size, cfg.kernel_size // 2
        c = cfg.channels
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(1, c[0], k, padding=p),
                nn.Conv1d(c[0], c[1], k, stride=2, padding=p),
                nn.Conv1d(c[1], c[2], k, padding=p),
                nn.Conv1d(c[2], c[3], k, stride=2, padding=p),
            ]
        )
        length = n_bands
        for conv in self.convs:
            length = (length + 2 * p - k) // conv.stride[0] + 1
        if length < 1:
            raise ValueError(f"{n_bands} bands are too few for the classifier")
        self.linear = nn.Linear(c[3] * length, n_classes)

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        """Logits (N, n_classes) for spectra (N, n_bands)."""
        if spectra.dim() != 2 or spectra.shape[1] != self.n_bands:
            raise ValueError(f"classifier expects (N, {self.n_bands}) spectra, got {tuple(spectra.shape)}")
        h = spectra.unsqueeze(1)
        for conv in self.convs:
            h = F.relu(conv(h), inplace=True)  # the conv output is not needed again, in training either
        return self.linear(h.flatten(1))

    def probabilities(self, spectra: torch.Tensor) -> torch.Tensor:
        """Softmax over classes (N, n_classes) for spectra (N, n_bands)."""
        return torch.softmax(self(spectra), dim=1)

    def probabilities_cube(self, cube: torch.Tensor) -> torch.Tensor:
        """Softmax (B, n_classes, H, W) for a cube (B, n_bands, H, W), in chunks of CUBE_CHUNK pixels."""
        b, c, h, w = cube.shape
        flat = cube.permute(0, 2, 3, 1).reshape(-1, c)
        parts = [self.probabilities(flat[s : s + CUBE_CHUNK]) for s in range(0, flat.shape[0], CUBE_CHUNK)]
        return torch.cat(parts).view(b, h, w, self.n_classes).permute(0, 3, 1, 2).contiguous()
