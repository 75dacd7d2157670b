"""Exact RGB consistency: make a cube reproduce the RGB it was synthesized from.

With the input sensor's response S (3 x n_bands, rows summing to 1 as ``rgb.camera_response``
gives), any cube I splits into a fundamental metamer in the row space of S, which the RGB fixes,
and a metameric black in its null space, which the RGB cannot see (Cohen 1964; Lin and
Finlayson, Sensors 2020). Replacing each sample's row-space part by the one the input RGB
dictates, ``I' = I + S^T (S S^T)^-1 (rgb - S I)``, reproduces the RGB exactly and keeps every
sample's diversity, which lives in the black. Reflectance cannot be negative, so the projection
alternates with clipping at 0 (projections onto convex sets; a few rounds bring the RGB error to
the order of 1e-5 reflectance where a non-negative solution exists).

That smallest change (``--rgb-correction minimum``) only moves the bands the sensor sees, so a
sample's near infrared stays whatever the model drew. With a prior covariance C of the spectra's
errors (``--rgb-correction spectral``), the update ``I' = I + C S^T (S C S^T)^-1 (rgb - S I)`` is the
Gaussian posterior mean given the sample as prior mean and the RGB as an exact observation (a Kalman
update): it still reproduces the RGB exactly (S C S^T (S C S^T)^-1 = 1), and spreads the correction over
every band the way the training spectra co-vary, the near infrared included. It is more accurate and
less diverse (docs/model-diagnosis.md, "Covariance-weighted RGB correction"): the update pulls every
sample's invisible bands towards what its visible error implies, so samples converge.
``--rgb-correction ensemble`` does what ensemble square-root filters do (Whitaker and Hamill 2002): the
mean of the K samples gets the covariance-weighted update, each sample's deviation from that mean the
smallest change, so the centre of the samples moves to the better estimate and their spread is kept.
With K = 1 it is the covariance-weighted update.
``--rgb-correction anchored`` is ``ensemble`` about a better centre: the samples' mean fused with a
regression from the RGB by gains measured on training patches (``spectral.fusion``), updated with the
fused centre's own error covariance.

When the RGB is itself an estimate with error covariance R (3 x 3; top-of-atmosphere input, whose
surface RGB is estimated by an average atmospheric map), the posterior mean is
``I + C S^T (S C S^T + R)^-1 (rgb - S I)``: :func:`uncertain_target` gives the RGB ``S I + S C S^T
(S C S^T + R)^-1 (rgb - S I)`` that the exact projection then reproduces, so every correction above
stays as it is and meets the estimate only as far as its error allows.

Pure functions on torch tensors (any device) and numpy arrays.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_ROUNDS = 6
#: ``--rgb-correction``: how the RGB residual is spread over the bands (see the module docstring)
RGB_CORRECTIONS = ("minimum", "spectral", "ensemble", "anchored")
#: the option's choices: "auto" is "anchored" on surface reflectance ("ensemble" for bundles without a
#: measured anchor); on top-of-atmosphere input, whose residual is mostly path radiance, which a
#: surface-reflectance prior would read as a material, "anchored" only when the anchor was measured on TOA
#: scenes too, else "minimum"
RGB_CORRECTION_CHOICES = ("auto", *RGB_CORRECTIONS)


def choose_rgb_correction(choice: str, radiometry: str, anchored: bool = False, anchored_toa: bool = False) -> str:
    """The correction ``--rgb-correction choice`` means for an input of ``radiometry`` ("surface", "toa",
    ...) with a bundle that has (``anchored``) or lacks a measured anchor, and whose anchor was measured
    on top-of-atmosphere scenes too (``anchored_toa``: its prior has seen path radiance, so it may correct
    TOA input); ValueError for an unknown choice."""
    if choice not in RGB_CORRECTION_CHOICES:
        raise ValueError(f"--rgb-correction must be one of {', '.join(RGB_CORRECTION_CHOICES)}, got {choice!r}")
    if choice != "auto":
        return choice
    if radiometry == "toa":
        return "anchored" if anchored and anchored_toa else "minimum"
    return "anchored" if anchored else "ensemble"


def row_space_projector(response: np.ndarray | torch.Tensor,
                        covariance: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """``C S^T (S C S^T)^-1`` (n_bands, 3) in float64: maps an RGB residual to a cube change that
    removes it; C = identity (None) gives the smallest change, ``S^T (S S^T)^-1``."""
    S = torch.as_tensor(np.asarray(response, dtype=np.float64))
    if S.ndim != 2 or S.shape[0] != 3:
        raise ValueError(f"RGB response must be (3, n_bands), got {tuple(S.shape)}")
    C = None if covariance is None else check_covariance(covariance, S.shape[1])
    gain = S.T if C is None else C @ S.T
    gram = S @ gain
    if torch.linalg.matrix_rank(gram) < 3:
        raise ValueError("RGB response has linearly dependent channels; RGB consistency is undefined")
    return gain @ torch.linalg.inv(gram)


def check_covariance(covariance: np.ndarray | torch.Tensor, n_bands: int) -> torch.Tensor:
    """``covariance`` as a float64 tensor, refused unless it is a finite, symmetric, positive
    semi-definite ``(n_bands, n_bands)`` matrix."""
    C = torch.as_tensor(np.asarray(covariance, dtype=np.float64))
    if C.shape != (n_bands, n_bands):
        raise ValueError(f"spectral covariance must be ({n_bands}, {n_bands}), got {tuple(C.shape)}")
    if not bool(torch.isfinite(C).all()) or not torch.allclose(C, C.T, rtol=1e-6, atol=1e-12):
        raise ValueError("spectral covariance must be finite and symmetric")
    if float(torch.linalg.eigvalsh(C).min()) < -1e-6 * max(float(C.diagonal().max()), 1e-30):
        raise ValueError("spectral covariance must be positive semi-definite")
    return C


def second_moment(residuals: np.ndarray, jitter: float = 1e-6) -> np.ndarray:
    """``E[e e^T]`` (n_bands, n_bands) of residual spectra ``(n, n_bands)`` (uncentred: a bias counts as
    error), plus ``jitter`` x its mean diagonal on the diagonal so that ``S C S^T`` stays invertible."""
    e = np.asarray(residuals, np.float64)
    e = e[np.all(np.isfinite(e), axis=1)]
    if len(e) == 0:
        raise ValueError("no finite residual spectra to estimate a covariance from")
    return with_jitter(e.T @ e / len(e), jitter)


def with_jitter(moment: np.ndarray, jitter: float) -> np.ndarray:
    """``moment`` plus ``jitter`` x its mean diagonal on the diagonal (keeps ``S C S^T`` invertible)."""
    return moment + np.eye(moment.shape[0]) * jitter * float(np.mean(np.diag(moment)))


def library_covariance(library: np.ndarray, jitter: float = 1e-6) -> np.ndarray:
    """Covariance over a spectral library's spectra ``(n_bands, n_library)``: the fallback prior for
    bundles that carry no error covariance of their own."""
    r = np.asarray(library, np.float64)
    return second_moment((r - r.mean(axis=1, keepdims=True)).T, jitter)


def project_to_rgb(cube: torch.Tensor, rgb: torch.Tensor, response: np.ndarray | torch.Tensor,
                   rounds: int = DEFAULT_ROUNDS, nonnegative: bool = True,
                   covariance: np.ndarray | torch.Tensor | None = None,
                   offset: torch.Tensor | None = None) -> torch.Tensor:
    """Cube(s) ``(..., n_bands, H, W)`` changed so that ``S @ cube == rgb``: only in S's row space
    (``covariance`` None, the smallest change), or along ``C S^T`` (the covariance-weighted update).
    ``offset`` (broadcast like ``rgb``; in S's null space, ``S @ offset == 0``) is added before clipping.

    ``rgb`` is ``(..., 3, H, W)`` in the cube's units (broadcast over leading sample axes). With
    ``nonnegative`` the projection alternates with clipping at 0 for ``rounds`` rounds and ends
    with a clip, so the result is a valid reflectance and the RGB error is the last round's. After
    the first round only the pixels that were clipped can still be off (the others reproduce their
    RGB already), so the later rounds run on those spectra alone: a few percent of the pixels, where
    six passes over the whole cube took ~30 % of a tile's time.
    """
    S = torch.as_tensor(np.asarray(response, dtype=np.float32), device=cube.device, dtype=cube.dtype)
    P = row_space_projector(response, covariance).to(device=cube.device, dtype=cube.dtype)
    out = cube + torch.einsum("bc,...chw->...bhw", P, rgb - torch.einsum("cb,...bhw->...chw", S, cube))
    if offset is not None:
        out += offset
    if not nonnegative:
        return out
    clipped = (out < 0).any(dim=-3)  # (..., H, W)
    out = out.clamp_min_(0.0)
    if int(rounds) <= 1 or not bool(clipped.any()):
        return out
    spectra = out.movedim(-3, -1)  # (..., H, W, n_bands), a view: writing it writes ``out``
    targets = torch.broadcast_to(rgb, (*out.shape[:-3], *rgb.shape[-3:])).movedim(-3, -1)[clipped]
    x = spectra[clipped]  # (n, n_bands): the clipped pixels only
    for _ in range(int(rounds) - 1):
        x = (x + (targets - x @ S.T) @ P.T).clamp_min_(0.0)
    spectra[clipped] = x
    return out


def project_ensemble(cubes: torch.Tensor, rgb: torch.Tensor, response: np.ndarray | torch.Tensor,
                     covariance: np.ndarray | torch.Tensor, axis: int = 0,
                     rounds: int = DEFAULT_ROUNDS, centre: torch.Tensor | None = None) -> torch.Tensor:
    """K samples (``axis``, the others as :func:`project_to_rgb`) made to reproduce ``rgb``: their mean by
    the ``covariance``-weighted update, each deviation from the mean by the smallest change, then a
    clip at 0 with its repair (the smallest change again). Without clipping the mean of the result is
    the covariance-weighted update of the mean, and the differences between samples are those that
    the smallest change leaves; one sample gets the covariance-weighted update.

    Computed as the smallest change of every sample plus one offset per pixel, the covariance-weighted
    update of the mean minus its smallest change (in S's null space), so that the K-sized work is that
    of ``minimum``.

    ``centre`` (shaped like the mean, ``axis`` kept) replaces the mean as the point that gets the
    covariance-weighted update (``anchored``: the mean fused with the anchor); the samples are moved
    by the same null-space offset, so their mean becomes the updated centre and their spread is kept."""
    mean = cubes.mean(dim=axis, keepdim=True)
    start = mean if centre is None else centre
    if cubes.shape[axis] == 1:
        return project_to_rgb(start, rgb, response, rounds=rounds, covariance=covariance)
    offset = (project_to_rgb(start, rgb, response, rounds=rounds, covariance=covariance)
              - project_to_rgb(mean, rgb, response, nonnegative=False))
    return project_to_rgb(cubes, rgb, response, rounds=rounds, offset=offset)


def uncertain_target(start: torch.Tensor, rgb: torch.Tensor, response: np.ndarray | torch.Tensor,
                     covariance: np.ndarray | torch.Tensor | None, noise: np.ndarray) -> torch.Tensor:
    """The RGB ``(..., 3, H, W)`` that cube(s) ``start`` ``(..., n_bands, H, W)`` should reproduce when
    ``rgb`` is an estimate with error covariance ``noise`` (3, 3): ``S x + A (rgb - S x)``,
    ``A = S C S^T (S C S^T + R)^-1`` (C the prior ``covariance``, identity when None). Projecting ``start``
    exactly onto it along ``C S^T`` is the Kalman update with that observation noise; ``noise`` 0 gives
    ``rgb`` back, a large ``noise`` leaves ``start``'s own RGB."""
    S = torch.as_tensor(np.asarray(response, dtype=np.float64))
    C = torch.eye(S.shape[1], dtype=torch.float64) if covariance is None else check_covariance(covariance, S.shape[1])
    scs = S @ C @ S.T
    gain = scs @ torch.linalg.inv(scs + torch.as_tensor(np.asarray(noise, np.float64)))
    S, gain = (t.to(device=start.device, dtype=start.dtype) for t in (S, gain))
    seen = torch.einsum("cb,...bhw->...chw", S, start)
    return seen + torch.einsum("dc,...chw->...dhw", gain, rgb - seen)


def reprojection_error(cube: np.ndarray, rgb: np.ndarray, response: np.ndarray,
                       valid: np.ndarray | None = None) -> float:
    """Mean absolute difference between ``S @ cube`` and ``rgb`` over valid pixels (reflectance)."""
    pred = np.einsum("cb,bhw->chw", np.asarray(response, np.float64), np.asarray(cube, np.float64))
    diff = np.abs(pred - np.asarray(rgb, np.float64))
    if valid is not None:
        diff = diff[:, np.asarray(valid, bool)]
    return float(diff.mean()) if diff.size else float("nan")
