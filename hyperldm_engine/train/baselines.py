"""Deterministic RGB-to-HSI maps and their training: closed-form ridge and a residual CNN
(``models.residual_cnn``). The quality report's baselines (``experiments.quality``), and the networks of
the anchored correction (``train.covariance``).

Both map the scene-normalised RGB (``io.raster.normalise_rgb``: one white level per scene, the
model's own input) to reflectance cubes ``(bands, rows, cols)``, pixel by pixel (ridge) or through a
stack of 3 x 3 residual blocks (CNN, HSCNN+-like). They are trained on the same training rows of the
same simulated scenes as the bundle, so the report compares like with like.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from hyperldm_engine.models.residual_cnn import ResidualCNN
from hyperldm_engine.spectral import fusion

# ---- scene-level RGB normalisation -------------------------------------------------------------------

def normalised_rgb(rgb: np.ndarray, valid: np.ndarray | None = None, reflectance: bool = False) -> np.ndarray:
    """``normalise_rgb`` with the statistics of the whole scene, decimated as training does (<= 256 px side);
    ``reflectance``: times the scene's white again, the RGB in reflectance clipped as the model's input is
    (the quality report's reflectance ridge: the brightness that normalisation removes, kept;
    docs/model-diagnosis.md, "The brightness that scene normalisation removes")."""
    from hyperldm_engine.io.raster import normalise_rgb
    from hyperldm_engine.train.data import SAMPLE_SIDE, sample_statistics

    h, w = rgb.shape[-2:]
    ok = np.ones((h, w), bool) if valid is None else valid
    step = max(1, int(np.ceil(max(h, w) / SAMPLE_SIDE)))
    sample = rgb[:, ::step, ::step].reshape(3, -1)
    stats = sample_statistics(sample, ok[::step, ::step].reshape(-1))
    out = normalise_rgb(rgb, stats)
    return out * np.float32(stats.white) if reflectance else out


@dataclass
class PairedScene:
    """Training pairs of one scene: normalised RGB ``(3, h, w)``, cube ``(bands, h, w)``; rows < ``row_end``."""

    rgb: np.ndarray
    hsi: np.ndarray
    row_end: int

    @classmethod
    def from_train_scene(cls, scene: Any, reflectance: bool = False) -> PairedScene:
        """From a ``train.data.TrainScene``: normalised with the whole scene (``reflectance``: and times its
        white again), training rows only."""
        return cls(rgb=normalised_rgb(scene.rgb, scene.valid, reflectance).astype(np.float32),
                   hsi=np.asarray(scene.hsi, np.float32), row_end=int(scene.heldout_row0 or scene.shape[0]))


# ---- (c) ridge regression -----------------------------------------------------------------------------

def poly_features(rgb: np.ndarray, degree: int = 2) -> np.ndarray:
    """Per-pixel features ``(n, F)`` of RGB ``(n, 3)``: 1, r, g, b (degree 1), plus r^2, g^2, b^2, rg, rb, gb (2)
    (``spectral.fusion.poly_features``, the regression anchor's own)."""
    return fusion.poly_features(torch.from_numpy(np.asarray(rgb, np.float64)), degree, dim=1).numpy()


@dataclass
class RidgeRegressor:
    """``cube = features(rgb) @ weights``: closed-form ridge, intercept not penalised."""

    weights: np.ndarray  # (n_features, n_bands)
    degree: int
    lam: float

    @classmethod
    def fit(cls, rgb: np.ndarray, target: np.ndarray, degree: int = 2, lam: float = 1e-6) -> RidgeRegressor:
        """Solve ``(X'X + lam * s * I') W = X'Y`` for pixels ``rgb (n, 3)``, ``target (n, bands)``.

        ``s`` is the mean diagonal of ``X'X`` (so ``lam`` is relative) and ``I'`` the identity
        without the intercept's entry.
        """
        x = poly_features(rgb, degree)
        return cls(weights=fusion.ridge_weights(x.T @ x, x.T @ np.asarray(target, np.float64), lam),
                   degree=degree, lam=lam)

    @classmethod
    def fit_scenes(cls, scenes: Sequence[PairedScene], degree: int = 2, lam: float = 1e-6) -> RidgeRegressor:
        """Fit on every pixel of the training rows of ``scenes`` (normal equations summed scene by scene)."""
        n_f = poly_features(np.zeros((1, 3)), degree).shape[1]
        gram = np.zeros((n_f, n_f))
        xty = np.zeros((n_f, scenes[0].hsi.shape[0]))
        for s in scenes:
            x = poly_features(s.rgb[:, :s.row_end].reshape(3, -1).T, degree)
            gram += x.T @ x
            xty += x.T @ s.hsi[:, :s.row_end].reshape(s.hsi.shape[0], -1).T.astype(np.float64)
        return cls(weights=fusion.ridge_weights(gram, xty, lam), degree=degree, lam=lam)

    def predict_pixels(self, rgb: np.ndarray) -> np.ndarray:
        """``(n, 3)`` -> ``(n, bands)``."""
        return poly_features(rgb, self.degree) @ self.weights

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Normalised RGB ``(3, h, w)`` -> cube ``(bands, h, w)`` float32."""
        h, w = rgb.shape[-2:]
        out = self.predict_pixels(rgb.reshape(3, -1).T)
        return out.T.reshape(-1, h, w).astype(np.float32)


# ---- (d) residual CNN ---------------------------------------------------------------------------------

@dataclass
class CnnTraining:
    """How the CNN was trained (recorded in the report)."""

    iterations: int
    seconds: float
    patch_size: int
    batch_size: int
    lr: float
    n_parameters: int
    width: int
    blocks: int
    final_l1: float
    history: list[float] = field(default_factory=list)


def _patch_batch(scenes: Sequence[PairedScene], rng: np.random.Generator, patch: int,
                 batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for _ in range(batch):
        s = scenes[int(rng.integers(len(scenes)))]
        r = int(rng.integers(s.row_end - patch + 1))
        c = int(rng.integers(s.rgb.shape[-1] - patch + 1))
        k = int(rng.integers(8))
        x, y = s.rgb[:, r:r + patch, c:c + patch], s.hsi[:, r:r + patch, c:c + patch]
        if k >= 4:
            x, y = x[..., ::-1], y[..., ::-1]
        xs.append(np.rot90(x, k % 4, axes=(-2, -1)))
        ys.append(np.rot90(y, k % 4, axes=(-2, -1)))
    t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a), np.float32))  # noqa: E731
    return t(xs), t(ys)


def seconds_per_step(step, probe: int = 3) -> float:
    """Wall seconds per call of ``step()``, timed on ``probe`` throw-away calls after one warm-up."""
    step()
    t = time.perf_counter()
    for _ in range(probe):
        step()
    return max((time.perf_counter() - t) / probe, 1e-6)


def train_residual_cnn(scenes: Sequence[PairedScene], iterations: int | None = None, budget_s: float = 360.0,
                       width: int = 48, blocks: int = 6, patch_size: int = 32, batch_size: int = 8,
                       lr: float = 1e-3, seed: int = 0, init: RidgeRegressor | None = None,
                       progress: Any = None) -> tuple[ResidualCNN, CnnTraining]:
    """Train a :class:`ResidualCNN` with L1 loss, Adam and a cosine learning rate.

    ``iterations`` None: the count that fits ``budget_s`` seconds is measured first on a throw-away
    copy (so the schedule is fixed before training and a run can be repeated with that count).
    """
    n_bands = scenes[0].hsi.shape[0]
    for s in scenes:
        if s.row_end < patch_size or s.rgb.shape[-1] < patch_size:
            raise ValueError(f"scene of {s.row_end} training rows is smaller than the {patch_size}-px patch")

    def build() -> ResidualCNN:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            m = ResidualCNN(n_bands, width, blocks)
        if init is not None:
            m.init_linear(init)
        return m

    if iterations is None:
        probe_model = build()
        probe_opt = torch.optim.Adam(probe_model.parameters(), lr=lr)
        probe_rng = np.random.default_rng(seed + 1)

        def probe_step() -> None:
            x, y = _patch_batch(scenes, probe_rng, patch_size, batch_size)
            loss = F.l1_loss(probe_model(x), y)
            probe_opt.zero_grad()
            loss.backward()
            probe_opt.step()

        t0 = time.perf_counter()
        rate = seconds_per_step(probe_step)
        iterations = max(1, int((budget_s - (time.perf_counter() - t0)) / rate))
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * i / iterations)))
    rng = np.random.default_rng(seed)
    history: list[float] = []
    model.train()
    t = time.perf_counter()
    for _ in range(iterations):
        x, y = _patch_batch(scenes, rng, patch_size, batch_size)
        loss = F.l1_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if progress is not None:
            progress.advance(1, message="residual CNN", l1=round(history[-1], 5))
    seconds = time.perf_counter() - t
    tail = history[-max(1, len(history) // 10):]
    info = CnnTraining(iterations=iterations, seconds=round(seconds, 1), patch_size=patch_size,
                       batch_size=batch_size, lr=lr, n_parameters=model.n_parameters, width=width, blocks=blocks,
                       final_l1=float(np.mean(tail)), history=history)
    return model.eval(), info
