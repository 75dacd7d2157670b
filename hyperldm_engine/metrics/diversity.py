"""The paper's diversity metrics SD (eq. 26-28) and SDM (eq. 29), from spectral-classifier softmaxes.

Inputs are class-probability vectors v (softmax of the spectral classifier S per pixel), either
``(N, n_s)`` (pixels x classes) or band-first maps ``(n_s, rows, cols)``; SDM takes K samples of one
RGB stacked first: ``(K, N, n_s)`` or ``(K, n_s, rows, cols)``. An optional ``mask`` (``(N,)`` or
``(rows, cols)``, True = valid) selects pixels. numpy arrays or CPU/GPU torch tensors are accepted;
work is float64 numpy. KL is in nats with ``eps`` inside the logs:
``KL(v || p) = sum_j v_j (log(v_j + eps) - log(p_j + eps))``, which is exactly 0 for v = p.

Both metrics are built from additive sufficient statistics, so they run window by window:

- SD: ``KL_i = mean_group[sum_j v_j log(v_j + eps)] - sum_j p_ij log(p_ij + eps)`` because p_i is
  the group's mean v. One pass accumulates per class the count, the sum of v and the sum of
  ``sum_j v_j log(v_j + eps)`` (:class:`SDAccumulator`); the per-pixel map ``KL(v || p_class(v))``
  needs p, so it is a second pass (:meth:`SDAccumulator.pixel_map`).
- SDM (primary, per-pixel p(y) = mean over the K samples) is per pixel, so it streams in one pass;
  the Inception-Score-like variant (p(y) = mean over all pixels of all samples) uses the same
  one-pass identity with a global marginal (:class:`SDMAccumulator`).

Per tile, ``hyperldm-engine diversity`` takes its maps from :func:`spread_maps` (the spread of K cubes:
std and spectral angle to the sample mean) and :func:`softmax_statistics` (the SDM map and the sums
the global scalars need).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

EPS = 1e-12


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _flatten(probs: Any, mask: Any, n_lead: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """To ``(*lead, N, n_s)`` plus a ``(N,)`` mask and the spatial shape for maps.

    ``n_lead`` = 0 for SD inputs, 1 for SDM (the sample axis). 2-D (per lead) inputs are
    ``(N, n_s)``; 3-D are band-first ``(n_s, rows, cols)``.
    """
    v = _as_numpy(probs)
    spatial_ndim = v.ndim - n_lead
    if spatial_ndim == 2:
        spatial = (v.shape[n_lead],)
        flat = v
    elif spatial_ndim == 3:
        spatial = v.shape[n_lead + 1:]
        n_s = v.shape[n_lead]
        flat = np.moveaxis(v.reshape(*v.shape[:n_lead], n_s, -1), -2, -1)
    else:
        want = "(K, N, n_s) or (K, n_s, rows, cols)" if n_lead else "(N, n_s) or (n_s, rows, cols)"
        raise ValueError(f"probabilities must be {want}, got shape {v.shape}")
    if mask is None:
        m = np.ones(int(np.prod(spatial)), dtype=bool)
    else:
        m = np.asarray(_as_numpy(mask) != 0 if hasattr(mask, "detach") else mask, dtype=bool)
        if m.shape != tuple(spatial):
            raise ValueError(f"mask shape {m.shape} does not match the pixels {tuple(spatial)}")
        m = m.reshape(-1)
    # a pixel with non-finite probabilities (e.g. nodata in the classifier input) is not valid
    m = m & np.isfinite(flat).all(axis=(*range(n_lead), -1))
    return flat, m, tuple(spatial)


def neg_entropy(v: np.ndarray, eps: float = EPS) -> np.ndarray:
    """sum_j v_j log(v_j + eps) along the last axis (nats; minus the entropy)."""
    return np.sum(v * np.log(v + eps), axis=-1)


def kl_divergence(v: Any, p: Any, eps: float = EPS) -> np.ndarray:
    """KL(v || p) in nats along the last axis, eps inside the logs, tiny negatives clipped to 0."""
    v, p = _as_numpy(v), _as_numpy(p)
    kl = np.sum(v * (np.log(v + eps) - np.log(p + eps)), axis=-1)
    return np.maximum(kl, 0.0)


@dataclass
class SDResult:
    """SD = (1/n_s) sum_i exp(KL_i); ``sd_present`` = mean of exp(KL_i) over classes with pixels."""

    sd: float
    sd_present: float
    kl_per_class: np.ndarray  # (n_s,) nats, 0 for empty classes
    counts: np.ndarray  # (n_s,) pixels per predicted class
    class_marginals: np.ndarray  # (n_s, n_s) p_i, rows of empty classes are 0
    n_pixels: int
    map: np.ndarray | None = field(default=None, repr=False)  # KL(v || p_class(v)), nan where masked

    def to_dict(self) -> dict[str, Any]:
        return {"sd": self.sd, "sd_present": self.sd_present, "kl_per_class": self.kl_per_class.tolist(),
                "counts": self.counts.astype(int).tolist(), "n_pixels": self.n_pixels,
                "n_classes": len(self.counts), "n_present": int((self.counts > 0).sum())}


class SDAccumulator:
    """Spectral diversity over windows: ``update`` each window (one pass), then ``result``.

    For the per-pixel map call ``pixel_map`` on each window after ``result`` (second pass).
    """

    def __init__(self, n_classes: int, eps: float = EPS) -> None:
        self.n_classes = n_classes
        self.eps = eps
        self.counts = np.zeros(n_classes, dtype=np.float64)
        self.sum_v = np.zeros((n_classes, n_classes), dtype=np.float64)
        self.sum_negent = np.zeros(n_classes, dtype=np.float64)
        self._marginals: np.ndarray | None = None

    def update(self, probs: Any, mask: Any = None) -> None:
        v, m, _ = _flatten(probs, mask, 0)
        if v.shape[-1] != self.n_classes:
            raise ValueError(f"expected {self.n_classes} classes, got {v.shape[-1]}")
        v = v[m]
        if v.size == 0:
            return
        cls = np.argmax(v, axis=-1)
        self.counts += np.bincount(cls, minlength=self.n_classes)
        np.add.at(self.sum_v, cls, v)
        self.sum_negent += np.bincount(cls, weights=neg_entropy(v, self.eps), minlength=self.n_classes)
        self._marginals = None

    def marginals(self) -> np.ndarray:
        """p_i: mean softmax of the pixels predicted as class i, ``(n_s, n_s)``; zero rows if empty."""
        if self._marginals is None:
            n = np.where(self.counts > 0, self.counts, 1.0)
            self._marginals = self.sum_v / n[:, None]
        return self._marginals

    def result(self) -> SDResult:
        p = self.marginals()
        present = self.counts > 0
        n = np.where(present, self.counts, 1.0)
        kl = np.where(present, self.sum_negent / n - neg_entropy(p, self.eps), 0.0)
        kl = np.maximum(kl, 0.0)
        terms = np.exp(kl)
        sd = float(terms.sum() / self.n_classes)
        sd_present = float(terms[present].mean()) if present.any() else float("nan")
        return SDResult(sd, sd_present, kl, self.counts.copy(), p.copy(), int(self.counts.sum()))

    def pixel_map(self, probs: Any, mask: Any = None) -> np.ndarray:
        """KL(v || p_class(v)) in nats, shaped like the input pixels; nan where masked."""
        v, m, spatial = _flatten(probs, mask, 0)
        out = np.full(v.shape[0], np.nan)
        if m.any():
            vv = v[m]
            out[m] = kl_divergence(vv, self.marginals()[np.argmax(vv, axis=-1)], self.eps)
        return out.reshape(spatial)


def spectral_diversity(probs: Any, mask: Any = None, eps: float = EPS, with_map: bool = True) -> SDResult:
    """SD (eq. 26-28) of one set of softmax vectors; ``n_s`` is their length.

    Pixels are grouped by argmax class i; p_i = mean softmax of the group; KL_i = mean over the
    group of KL(v || p_i); SD = (1/n_s) sum_i exp(KL_i), an empty class contributing exp(0) = 1.
    """
    v, _, _ = _flatten(probs, mask, 0)
    acc = SDAccumulator(v.shape[-1], eps)
    acc.update(probs, mask)
    res = acc.result()
    if with_map:
        res.map = acc.pixel_map(probs, mask)
    return res


@dataclass
class SDMResult:
    """SDM (primary, per-pixel p(y)) and the Inception-Score-like variant (global p(y)).

    ``sdm = exp(mean_kl)``; ``sdm_global = exp(mean_kl_global)``; ``map`` = per pixel, the mean
    over samples of KL(v_k || p(y)) in nats (the generalised Jensen-Shannon divergence of the K
    softmaxes; exp(map) is a per-pixel SDM), nan where masked.
    """

    sdm: float
    mean_kl: float
    sdm_global: float
    mean_kl_global: float
    n_pixels: int
    n_samples: int
    map: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"sdm": self.sdm, "mean_kl": self.mean_kl, "sdm_global": self.sdm_global,
                "mean_kl_global": self.mean_kl_global, "n_pixels": self.n_pixels,
                "n_samples": self.n_samples}


class SDMAccumulator:
    """SDM over windows in one pass: ``update`` returns the window's per-pixel map; ``result`` at the end."""

    def __init__(self, n_classes: int, eps: float = EPS) -> None:
        self.n_classes = n_classes
        self.eps = eps
        self.n_samples: int | None = None
        self.kl_sum = 0.0  # sum over pixels of mean_k KL(v_k || mean_k v_k)
        self.n_pixels = 0
        self.sum_v = np.zeros(n_classes, dtype=np.float64)  # over samples and pixels
        self.sum_negent = 0.0  # sum over samples and pixels of sum_j v log(v + eps)

    def update(self, probs: Any, mask: Any = None) -> np.ndarray:
        v, m, spatial = _flatten(probs, mask, 1)
        k, _, n_s = v.shape
        if n_s != self.n_classes:
            raise ValueError(f"expected {self.n_classes} classes, got {n_s}")
        if self.n_samples is None:
            self.n_samples = k
        elif k != self.n_samples:
            raise ValueError(f"expected {self.n_samples} samples, got {k}")
        out = np.full(v.shape[1], np.nan)
        vv = v[:, m]  # (K, n, n_s)
        if vv.shape[1]:
            p = vv.mean(axis=0)
            same = np.all(vv == vv[:1], axis=(0, 2))  # identical samples: p is exactly v (no rounding)
            p[same] = vv[0, same]
            per_pixel = np.maximum(kl_divergence(vv, p[None], self.eps).mean(axis=0), 0.0)
            out[m] = per_pixel
            self.kl_sum += float(per_pixel.sum())
            self.n_pixels += vv.shape[1]
            self.sum_v += vv.sum(axis=(0, 1))
            self.sum_negent += float(neg_entropy(vv, self.eps).sum())
        return out.reshape(spatial)

    def result(self) -> SDMResult:
        k = self.n_samples or 0
        if self.n_pixels == 0:
            nan = float("nan")
            return SDMResult(nan, nan, nan, nan, 0, k)
        mean_kl = self.kl_sum / self.n_pixels
        total = self.n_pixels * k
        p_all = self.sum_v / total
        mean_kl_global = max(self.sum_negent / total - float(neg_entropy(p_all, self.eps)), 0.0)
        return SDMResult(float(np.exp(mean_kl)), mean_kl, float(np.exp(mean_kl_global)), mean_kl_global,
                         self.n_pixels, k)


def sample_diversity(probs: Any, mask: Any = None, eps: float = EPS, with_map: bool = True) -> SDMResult:
    """SDM (eq. 29) of K samples synthesised from one RGB; probs ``(K, N, n_s)`` or ``(K, n_s, rows, cols)``.

    Primary: p(y) at each pixel = mean over the K samples' softmax; SDM = exp(mean over samples
    and pixels of KL(v_k || p(y))); identical samples give exactly 1. ``sdm_global``: p(y) = mean
    over all pixels of all samples (Inception-Score-like, closer to the paper's magnitudes).
    """
    v = _as_numpy(probs)
    n_s = v.shape[-1] if v.ndim == 3 else v.shape[1]
    acc = SDMAccumulator(n_s, eps)
    pixel_map = acc.update(v, mask)
    res = acc.result()
    if with_map:
        res.map = pixel_map
    return res


def spectral_angle(a: np.ndarray, b: np.ndarray, axis: int = 0) -> np.ndarray:
    """Angle (radians) between spectra along ``axis``: 2 atan2(|a^ - b^|, |a^ + b^|), 0 for zero spectra."""
    na = np.linalg.norm(a, axis=axis, keepdims=True)
    nb = np.linalg.norm(b, axis=axis, keepdims=True)
    au = a / np.where(na > 0, na, 1.0)
    bu = b / np.where(nb > 0, nb, 1.0)
    ang = 2.0 * np.arctan2(np.linalg.norm(au - bu, axis=axis), np.linalg.norm(au + bu, axis=axis))
    ok = (np.squeeze(na, axis) > 0) & (np.squeeze(nb, axis) > 0)
    return np.where(ok, ang, 0.0)


#: rows per block in :func:`spread_maps`: its float64 copy of K cubes is a block, not the tile (5 samples x 48
#: bands x 512^2 px were 500 MB at once)
SPREAD_ROWS = 64


def spread_maps(cubes: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel statistics of K cubes ``(K, bands, h, w)`` (reflectance).

    ``mean`` (bands, h, w); ``std`` (h, w) = mean over bands of the population std across the K
    samples (reflectance units); ``angle`` (h, w) = mean over k of the spectral angle between
    sample k and the sample mean (radians). Identical samples give exactly 0 for both.
    """
    cubes = np.asarray(cubes)
    k, bands, h, w = cubes.shape
    out = {"mean": np.empty((bands, h, w), np.float32), "std": np.empty((h, w), np.float32),
           "angle": np.empty((h, w), np.float32)}
    for r0 in range(0, h, SPREAD_ROWS):  # per pixel, so blocks of rows give the same values
        rows = slice(r0, r0 + SPREAD_ROWS)
        c = cubes[:, :, rows].astype(np.float64)
        mean = c.mean(axis=0)
        out["mean"][:, rows] = mean
        out["std"][rows] = c.std(axis=0).mean(axis=0)
        out["angle"][rows] = np.mean([spectral_angle(c[i], mean, axis=0) for i in range(k)], axis=0)
    return out


def softmax_statistics(probs: np.ndarray, eps: float = EPS) -> dict[str, np.ndarray]:
    """From K softmax maps ``(K, n_s, h, w)``: the SDM map (nats), the sample-mean softmax, mean neg-entropy.

    ``sdm`` = mean_k KL(v_k || mean_k v_k) (``metrics.diversity.sample_diversity``'s map; exactly 0
    for identical samples); ``pmean`` (n_s, h, w); ``negent`` (h, w) = mean_k sum_j v_kj log(v_kj + eps).
    """
    p = np.asarray(probs, dtype=np.float64)
    sdm = sample_diversity(p, with_map=True).map
    negent = neg_entropy(np.moveaxis(p, 1, -1), eps).mean(axis=0)
    return {"sdm": np.nan_to_num(sdm, nan=0.0), "pmean": p.mean(axis=0), "negent": negent}
