"""The anchored RGB correction: the samples' centre fused with a regression from the RGB.

A diffusion sample is a plausible cube for *some* scene with these colours (the denoiser cannot place
the scene's own latent, docs/model-diagnosis.md), and a per-pixel regression from the RGB is the
best cube a fixed map can give; their errors are far from fully correlated, so a weighted
combination beats both. This is the "deterministic anchor with the diffusion modelling the residual
around it" of residual-shift super-resolution, done on the output: the anchor
``a = features(rgb) @ W`` (a degree-2 polynomial ridge on the normalised RGB the model sees) sets
the centre, the samples keep their spread around it. A bundle may carry instead a small residual CNN as the anchor
(:class:`NetworkAnchor`, ``models.residual_cnn``): the same fusion, around a map that also sees each
pixel's neighbours.

With ``m`` the mean of the K samples, ``d = a - m`` is observable and ``e = truth - m`` is not; the
linear estimate of ``e`` from ``d`` is ``G d`` with the gain ``G = E[e d^T] E[d d^T]^-1`` (a
regression of the error on the disagreement, i.e. the best linear fusion of the two estimates), and
what is left, ``E[(e - G d)(e - G d)^T]``, is the prior covariance of the fused centre for the RGB
update (``spectral.consistency``). Both are measured on training patches with the anchor cross-fitted
(``train.covariance.anchor_fusion``), so the gain trusts the anchor as much as it generalises.

Pure functions on torch tensors and numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: polynomial degree of the anchor's features (the quality report's strongest ridge baseline)
ANCHOR_DEGREE = 2
#: ridge on the fusion gain, relative to the mean variance of the disagreement (:func:`fusion_gain`): numerical
#: safety only; on the default model 1e-6 and 1e-3 cost a one-sample run 0.16 and 0.25 dB on held-out scenes
GAIN_SHRINKAGE = 1e-9


def poly_features(rgb: torch.Tensor, degree: int = ANCHOR_DEGREE, dim: int = -3) -> torch.Tensor:
    """Features of RGB along ``dim`` (3 entries there): 1, r, g, b (degree 1), plus r^2, g^2, b^2, rg, rb,
    gb (degree 2), stacked along ``dim``."""
    if degree not in (1, 2):
        raise ValueError(f"polynomial degree must be 1 or 2, got {degree}")
    r, g, b = rgb.unbind(dim)
    cols = [torch.ones_like(r), r, g, b]
    if degree == 2:
        cols += [r * r, g * g, b * b, r * g, r * b, g * b]
    return torch.stack(cols, dim)


def n_features(degree: int) -> int:
    """How many :func:`poly_features` a degree gives (4 or 10)."""
    return 4 if degree == 1 else 10


def fusion_gain(ee: np.ndarray, ed: np.ndarray, dd: np.ndarray, shrinkage: float = GAIN_SHRINKAGE
                ) -> tuple[np.ndarray, np.ndarray]:
    """Gain ``G = E[e d^T] (E[d d^T] + lam I)^-1`` and the second moment of what it leaves,
    ``E[(e - G d)(e - G d)^T]``, from the joint second moments of ``e = truth - centre`` and
    ``d = anchor - centre``; ``lam`` is ``shrinkage`` x the mean diagonal of ``E[d d^T]`` (a ridge on the
    gain: at the default a singular ``E[d d^T]`` still solves, but gains from few training pixels are not
    tamed; a bundle trained on a small scene records its pixel count)."""
    ee, ed, dd = (np.asarray(m, np.float64) for m in (ee, ed, dd))
    lam = shrinkage * max(float(np.trace(dd)) / len(dd), 1e-12)
    gain = np.linalg.solve(dd + lam * np.eye(len(dd)), ed.T).T
    residual = ee - gain @ ed.T - ed @ gain.T + gain @ dd @ gain.T
    return gain, 0.5 * (residual + residual.T)


def fused_centre(gain: np.ndarray, mean: torch.Tensor, anchor_cube: torch.Tensor) -> torch.Tensor:
    """The fused centre ``mean + G (anchor - mean)`` of cubes ``(..., n_bands, H, W)``; ``anchor_cube`` may stack
    several maps of the cube (``(..., k n_bands, H, W)``, ``G`` then (n_bands, k n_bands)), each compared with
    the mean. It is used as scratch space (overwritten), so that a tile holds two cubes' worth of temporaries,
    not four."""
    n = mean.shape[-3]
    for first in range(0, anchor_cube.shape[-3], n):
        anchor_cube[..., first:first + n, :, :].sub_(mean)
    return _per_pixel(np.asarray(gain), anchor_cube).add_(mean)


def _check_arrays(arrays: dict[str, tuple[np.ndarray, tuple[int, ...]]]) -> None:
    for name, (value, shape) in arrays.items():
        a = np.asarray(value)
        if a.shape != shape:
            raise ValueError(f"anchor {name} has shape {a.shape}, expected {shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"anchor {name} contains NaN or infinite values")


@dataclass(frozen=True)
class RegressionAnchor:
    """``weights`` (n_features, n_bands) of the degree-``degree`` anchor; ``gain`` (n_bands, n_bands) and
    ``covariance`` (n_bands, n_bands, the fused centre's error second moment) of the fusion."""

    weights: np.ndarray
    degree: int
    gain: np.ndarray
    covariance: np.ndarray
    kind = "ridge"

    def check(self, n_bands: int) -> None:
        """ValueError unless the shapes fit ``n_bands`` and every value is finite."""
        _check_arrays({"weights": (self.weights, (n_features(self.degree), n_bands)),
                       "gain": (self.gain, (n_bands, n_bands)), "covariance": (self.covariance, (n_bands, n_bands))})

    def describe(self) -> str:
        return f"degree-{self.degree} ridge"

    def predict(self, rgb: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(..., 3, H, W)`` -> anchor cube ``(..., n_bands, H, W)``."""
        return predict_cube(self.weights, rgb, self.degree)

    def centre(self, mean: torch.Tensor, anchor_cube: torch.Tensor) -> torch.Tensor:
        """:func:`fused_centre` with this anchor's gain."""
        return fused_centre(self.gain, mean, anchor_cube)


@dataclass(frozen=True)
class NetworkAnchor:
    """A residual CNN from the normalised RGB to the cube (``models.residual_cnn.ResidualCNN``) as the anchor,
    with the fusion's ``gain`` and ``covariance`` (n_bands, n_bands) as in :class:`RegressionAnchor`."""

    net: torch.nn.Module
    gain: np.ndarray
    covariance: np.ndarray
    kind = "cnn"

    def check(self, n_bands: int) -> None:
        """ValueError unless the shapes fit ``n_bands`` and every value, the network's too, is finite."""
        _check_arrays({"gain": (self.gain, (n_bands, n_bands)), "covariance": (self.covariance, (n_bands, n_bands))})
        _check_network(self.net)

    def describe(self) -> str:
        return f"residual CNN (width {self.net.width}, {self.net.n_blocks} blocks)"

    def predict(self, rgb: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(..., 3, H, W)`` -> anchor cube ``(..., n_bands, H, W)`` (:func:`network_cube`)."""
        return network_cube(self.net, rgb)

    def centre(self, mean: torch.Tensor, anchor_cube: torch.Tensor) -> torch.Tensor:
        """:func:`fused_centre` with this anchor's gain."""
        return fused_centre(self.gain, mean, anchor_cube)


def predict_cube(weights: np.ndarray, rgb: torch.Tensor, degree: int = ANCHOR_DEGREE) -> torch.Tensor:
    """The polynomial ridge ``features(rgb) @ weights`` of normalised RGB ``(..., 3, H, W)``: ``(..., n, H, W)``."""
    return _per_pixel(np.asarray(weights).T, poly_features(rgb, degree))


@dataclass(frozen=True)
class JointAnchor:
    """The ridge and the residual CNN fused with the samples together: the anchor cube stacks both maps
    ``(2 n_bands)``, and ``gain`` (n_bands, 2 n_bands) regresses the samples' error on both disagreements at
    once, so that each band leans on the map that is right there (on the quality report's held-out scenes the
    network for the visible bands, the ridge and the samples in the near infrared); ``covariance`` as in
    :class:`RegressionAnchor`."""

    weights: np.ndarray
    degree: int
    net: torch.nn.Module
    gain: np.ndarray
    covariance: np.ndarray
    kind = "ridge+cnn"

    def check(self, n_bands: int) -> None:
        """ValueError unless the shapes fit ``n_bands`` and every value, the network's too, is finite."""
        _check_arrays({"weights": (self.weights, (n_features(self.degree), n_bands)),
                       "gain": (self.gain, (n_bands, 2 * n_bands)),
                       "covariance": (self.covariance, (n_bands, n_bands))})
        _check_network(self.net)

    def describe(self) -> str:
        return (f"degree-{self.degree} ridge and residual CNN (width {self.net.width}, {self.net.n_blocks} blocks), "
                "fused jointly")

    def predict(self, rgb: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(..., 3, H, W)`` -> both anchor cubes stacked, ``(..., 2 n_bands, H, W)``."""
        return torch.cat([predict_cube(self.weights, rgb, self.degree), network_cube(self.net, rgb)], dim=-3)

    def centre(self, mean: torch.Tensor, anchor_cube: torch.Tensor) -> torch.Tensor:
        """:func:`fused_centre` of :meth:`predict`'s stacked cube: ``mean + G [ridge - mean; cnn - mean]``."""
        return fused_centre(self.gain, mean, anchor_cube)


def _check_network(net: torch.nn.Module) -> None:
    for name, value in net.state_dict().items():
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"anchor network tensor {name} contains NaN or infinite values")


def network_cube(net: torch.nn.Module, rgb: torch.Tensor) -> torch.Tensor:
    """``net`` applied to normalised RGB ``(..., 3, H, W)``: ``(..., n_bands, H, W)`` in ``rgb``'s dtype and
    device, computed without gradients in float32 on the network's device (zero padding at the edges, as in
    training). The input goes in channels-last, the layout in which CPU convolutions of a few channels run
    fastest (a 576 x 576 tile through a width-24, 3-block network: 0.36 s against 0.59 s, 2 threads, with the
    network's weights channels-last too, as the bundle loader makes them); the output comes back contiguous."""
    lead, (c, h, w) = rgb.shape[:-3], rgb.shape[-3:]
    weight = next(net.parameters())
    x = rgb.reshape(-1, c, h, w).to(weight.device, torch.float32).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = net(x).contiguous()
    return out.reshape(*lead, out.shape[1], h, w).to(rgb.device, rgb.dtype)


def _per_pixel(matrix: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """``matrix`` (out, in) applied to every pixel of ``x`` (..., in, H, W), as a 1 x 1 convolution (no
    permuted copies of the cube, unlike an einsum over a channel axis that is not last)."""
    w = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)[:, :, None, None]
    lead, (c, h, wd) = x.shape[:-3], x.shape[-3:]
    y = torch.nn.functional.conv2d(x.reshape(-1, c, h, wd), w)
    return y.reshape(*lead, w.shape[0], h, wd)


def ridge_weights(gram: np.ndarray, xty: np.ndarray, lam: float = 1e-6) -> np.ndarray:
    """Closed-form ridge ``(X'X + lam * s * I') W = X'Y`` from the normal equations, ``s`` the mean diagonal
    of ``X'X`` (so ``lam`` is relative) and ``I'`` the identity without the intercept's (first) entry."""
    gram = np.asarray(gram, np.float64)
    reg = np.eye(len(gram)) * (lam * np.trace(gram) / len(gram))
    reg[0, 0] = 0.0
    return np.linalg.solve(gram + reg, np.asarray(xty, np.float64))


def anchor_sees_toa(record: dict | None) -> bool:
    """Whether an anchor's record (``consistency.anchor`` of config.json) says it was measured on
    top-of-atmosphere scenes too (radiometry "toa", or "mixed": surface and TOA drawn per scene)."""
    return bool({"toa", "mixed"} & set((record or {}).get("radiometries", [])))


#: an anchor of ``--rgb-correction anchored``, of any kind (``models.correction_anchor``)
CorrectionAnchor = RegressionAnchor | NetworkAnchor | JointAnchor
