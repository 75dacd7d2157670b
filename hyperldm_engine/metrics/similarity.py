"""One-to-one similarity of a predicted cube to a reference cube: RMSE, MRAE, SAM, MPSNR, MSSIM.

Cubes are band-first ``(bands, rows, cols)``; an optional ``mask`` ``(rows, cols)`` marks valid
pixels (True). A pixel is used only where the mask is True and every band of both cubes is finite.
``data_range`` (the span of valid values, default 1.0 for reflectance 0-1) sets the PSNR peak and the
SSIM constants; to compare with numbers computed on a 0-4095 scale pass ``data_range=4095`` (PSNR and
SSIM are then unchanged if the cubes were simply divided by 4095) and multiply RMSE by 4095.

Every metric is built from additive sufficient statistics (:class:`ErrorSums`), so
:mod:`hyperldm_engine.metrics.streaming` gets exactly the same numbers window by window.

SSIM (Wang et al. 2004) per band: Gaussian window 11 x 11, sigma 1.5, K1 0.01, K2 0.03, population
(co)variances, as scikit-image ``gaussian_weights=True`` and torchmetrics. Centres within 5 px of the
image border are not scored (as both references). The mask enters by normalised convolution: local
means and (co)variances are Gaussian-weighted over *valid* neighbours only (weights renormalised), and
a centre is scored if it is valid and at least ``min_valid_weight`` (0.5) of its window weight is
valid. With no invalid pixels this is exactly the reference SSIM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11 x 11 window
SSIM_K1 = 0.01
SSIM_K2 = 0.03
MIN_VALID_WEIGHT = 0.5


@dataclass
class ErrorSums:
    """Additive sufficient statistics of the similarity metrics over a set of pixels.

    Per band (arrays of length ``n_bands``): ``sq_err`` = sum (p - r)^2, ``abs_rel_err`` = sum
    |p - r| / r over r > 0, ``rel_count`` = number of r > 0, ``ssim_sum`` = sum of the SSIM map over
    scored centres. Scalars: ``n_pixels`` (valid pixels), ``sam_sum`` / ``sam_count`` (angles in
    radians over pixels whose two spectra are non-zero), ``ssim_count`` (scored SSIM centres).
    """

    n_bands: int
    sq_err: np.ndarray = field(default=None)  # type: ignore[assignment]
    abs_rel_err: np.ndarray = field(default=None)  # type: ignore[assignment]
    rel_count: np.ndarray = field(default=None)  # type: ignore[assignment]
    ssim_sum: np.ndarray = field(default=None)  # type: ignore[assignment]
    n_pixels: int = 0
    sam_sum: float = 0.0
    sam_count: int = 0
    ssim_count: int = 0

    def __post_init__(self) -> None:
        for name in ("sq_err", "abs_rel_err", "rel_count", "ssim_sum"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(self.n_bands, dtype=np.float64))

    def __iadd__(self, other: ErrorSums) -> ErrorSums:
        self.sq_err += other.sq_err
        self.abs_rel_err += other.abs_rel_err
        self.rel_count += other.rel_count
        self.ssim_sum += other.ssim_sum
        self.n_pixels += other.n_pixels
        self.sam_sum += other.sam_sum
        self.sam_count += other.sam_count
        self.ssim_count += other.ssim_count
        return self

    # --- metrics from the sums (nan where no pixel contributed) ---
    def band_mse(self) -> np.ndarray:
        return _safe_div(self.sq_err, np.full(self.n_bands, float(self.n_pixels)))

    def band_rmse(self) -> np.ndarray:
        return np.sqrt(self.band_mse())

    def band_mrae(self) -> np.ndarray:
        return _safe_div(self.abs_rel_err, self.rel_count)

    def band_psnr(self, data_range: float = 1.0) -> np.ndarray:
        return psnr_from_mse(self.band_mse(), data_range)

    def band_ssim(self) -> np.ndarray:
        return _safe_div(self.ssim_sum, np.full(self.n_bands, float(self.ssim_count)))

    def rmse(self) -> float:
        n = self.n_pixels * self.n_bands
        return float(np.sqrt(self.sq_err.sum() / n)) if n else float("nan")

    def mrae(self) -> float:
        n = self.rel_count.sum()
        return float(self.abs_rel_err.sum() / n) if n else float("nan")

    def sam(self) -> float:
        return self.sam_sum / self.sam_count if self.sam_count else float("nan")

    def mpsnr(self, data_range: float = 1.0) -> float:
        return float(np.mean(self.band_psnr(data_range))) if self.n_pixels else float("nan")

    def mssim(self) -> float:
        return float(np.mean(self.band_ssim())) if self.ssim_count else float("nan")

    def summary(self, data_range: float = 1.0, with_ssim: bool = True) -> dict[str, float | int]:
        out: dict[str, float | int] = {"n_pixels": int(self.n_pixels), "rmse": self.rmse(),
                                       "mrae": self.mrae(), "sam": self.sam(),
                                       "mpsnr": self.mpsnr(data_range)}
        if with_ssim:
            out["mssim"] = self.mssim()
            out["n_ssim_centres"] = int(self.ssim_count)
        return out


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def psnr_from_mse(mse: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """PSNR in dB = 10 log10(data_range^2 / MSE); +inf where MSE is 0 (identical band)."""
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


def valid_mask(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``(rows, cols)`` True where the mask allows and every band of both cubes is finite."""
    _check_shapes(pred, ref, mask)
    valid = np.isfinite(pred).all(axis=0) & np.isfinite(ref).all(axis=0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    return valid


def _check_shapes(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None) -> None:
    if pred.ndim != 3 or pred.shape != ref.shape:
        raise ValueError(f"pred and ref must be (bands, rows, cols) of one shape, got {pred.shape}, "
                         f"{ref.shape}")
    if mask is not None and np.shape(mask) != pred.shape[1:]:
        raise ValueError(f"mask must be (rows, cols) = {pred.shape[1:]}, got {np.shape(mask)}")


def _group_index(valid: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Group index per valid pixel and the group values (one group, value 0, without labels)."""
    if labels is None:
        return np.zeros(int(valid.sum()), dtype=np.intp), np.zeros(1, dtype=np.int64)
    values, inverse = np.unique(np.asarray(labels)[valid], return_inverse=True)
    return inverse.reshape(-1), values.astype(np.int64)


def error_sums(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
               labels: np.ndarray | None = None) -> dict[int, ErrorSums]:
    """Pixel-wise sums (squared, relative errors; spectral angles) per label value.

    Without ``labels`` the result has one key, 0, holding all valid pixels. With ``labels``
    ``(rows, cols)`` ints, pixels are grouped by label; exclude unlabelled pixels through ``mask``.
    Work is done band by band in float64 so memory stays a few copies of one band.
    """
    pred = np.asarray(pred)
    ref = np.asarray(ref)
    valid = valid_mask(pred, ref, mask)
    groups, values = _group_index(valid, labels)
    n_groups, n_bands = len(values), pred.shape[0]
    sums = {int(v): ErrorSums(n_bands) for v in values}
    if groups.size == 0:
        return sums if labels is not None else {0: ErrorSums(n_bands)}

    def gsum(x: np.ndarray) -> np.ndarray:
        return np.bincount(groups, weights=x, minlength=n_groups)

    counts = np.bincount(groups, minlength=n_groups)
    sq = np.zeros((n_groups, n_bands))
    rel = np.zeros((n_groups, n_bands))
    rel_n = np.zeros((n_groups, n_bands))
    p_norm2 = np.zeros(groups.size)
    r_norm2 = np.zeros(groups.size)
    for b in range(n_bands):
        p = pred[b][valid].astype(np.float64)
        r = ref[b][valid].astype(np.float64)
        d = p - r
        sq[:, b] = gsum(d * d)
        pos = r > 0
        rel[:, b] = gsum(np.where(pos, np.abs(d) / np.where(pos, r, 1.0), 0.0))
        rel_n[:, b] = gsum(pos.astype(np.float64))
        p_norm2 += p * p
        r_norm2 += r * r
    # spectral angle, 2 atan2(|p^ - r^|, |p^ + r^|): accurate for small angles, unlike arccos
    p_norm = np.sqrt(p_norm2)
    r_norm = np.sqrt(r_norm2)
    ok = (p_norm > 0) & (r_norm > 0)
    diff2 = np.zeros(groups.size)
    summ2 = np.zeros(groups.size)
    pn = np.where(ok, p_norm, 1.0)
    rn = np.where(ok, r_norm, 1.0)
    for b in range(n_bands):
        p = pred[b][valid].astype(np.float64) / pn
        r = ref[b][valid].astype(np.float64) / rn
        diff2 += (p - r) ** 2
        summ2 += (p + r) ** 2
    angle = 2.0 * np.arctan2(np.sqrt(diff2), np.sqrt(summ2))
    sam_sum = gsum(np.where(ok, angle, 0.0))
    sam_n = np.bincount(groups[ok], minlength=n_groups)
    for g, v in enumerate(values):
        s = sums[int(v)]
        s.sq_err[:] = sq[g]
        s.abs_rel_err[:] = rel[g]
        s.rel_count[:] = rel_n[g]
        s.n_pixels = int(counts[g])
        s.sam_sum = float(sam_sum[g])
        s.sam_count = int(sam_n[g])
    return sums


def gaussian_kernel(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> np.ndarray:
    """Normalised 1-D Gaussian taps, length 2 radius + 1 (11 for the SSIM default)."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    out = ndimage.correlate1d(img, kernel, axis=0, mode="constant", cval=0.0)
    return ndimage.correlate1d(out, kernel, axis=1, mode="constant", cval=0.0)


def ssim_scored(valid: np.ndarray, core: tuple[slice, slice] | None = None,
                min_valid_weight: float = MIN_VALID_WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """Which centres are scored, and the Gaussian valid weight per pixel.

    A centre is scored if it is valid, lies at least 5 px inside the array, inside ``core`` when
    given, and at least ``min_valid_weight`` of its window weight falls on valid pixels.
    """
    valid = np.asarray(valid, dtype=bool)
    kernel = gaussian_kernel()
    weight = _blur(valid.astype(np.float64), kernel)
    scored = valid & (weight >= min_valid_weight - 1e-12)
    inner = np.zeros_like(scored)
    r = SSIM_RADIUS
    inner[r:valid.shape[0] - r, r:valid.shape[1] - r] = True
    scored &= inner
    if core is not None:
        in_core = np.zeros_like(scored)
        in_core[core] = True
        scored &= in_core
    return scored, weight


def ssim_band_map(pred_band: np.ndarray, ref_band: np.ndarray, valid: np.ndarray, weight: np.ndarray,
                  data_range: float = 1.0) -> np.ndarray:
    """Local SSIM of one band ``(rows, cols)`` by normalised Gaussian convolution over valid pixels.

    ``weight`` is the blurred valid mask from :func:`ssim_scored`. Values are meaningful only at
    scored centres; elsewhere they may be anything (including nan).
    """
    kernel = gaussian_kernel()
    all_valid = bool(valid.all())
    x = np.where(valid, pred_band, 0.0).astype(np.float64)
    y = np.where(valid, ref_band, 0.0).astype(np.float64)
    w = np.where(weight > 0, weight, 1.0)
    if all_valid:  # w == 1 inside, identical to the references
        w = 1.0
    mx = _blur(x, kernel) / w
    my = _blur(y, kernel) / w
    sxx = _blur(x * x, kernel) / w - mx * mx
    syy = _blur(y * y, kernel) / w - my * my
    sxy = _blur(x * y, kernel) / w - mx * my
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return num / den


def ssim_sums(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
              data_range: float = 1.0, labels: np.ndarray | None = None,
              core: tuple[slice, slice] | None = None) -> dict[int, tuple[np.ndarray, int]]:
    """Per label: (sum of the SSIM map per band over scored centres, number of scored centres).

    ``core`` restricts scored centres to a sub-window (the streaming code reads a 5 px margin
    around each window and scores only its core, which makes the windowed mean exact).
    """
    pred = np.asarray(pred)
    ref = np.asarray(ref)
    valid = valid_mask(pred, ref, mask)
    scored, weight = ssim_scored(valid, core)
    groups, values = _group_index(scored, labels)
    counts = np.bincount(groups, minlength=len(values))
    out = {int(v): (np.zeros(pred.shape[0]), int(counts[g])) for g, v in enumerate(values)}
    if groups.size == 0:
        return out if labels is not None else {0: (np.zeros(pred.shape[0]), 0)}
    for b in range(pred.shape[0]):
        smap = ssim_band_map(pred[b], ref[b], valid, weight, data_range)
        band_sums = np.bincount(groups, weights=smap[scored], minlength=len(values))
        for g, v in enumerate(values):
            out[int(v)][0][b] = band_sums[g]
    return out


def similarity_sums(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
                    data_range: float = 1.0, labels: np.ndarray | None = None,
                    core: tuple[slice, slice] | None = None, with_ssim: bool = True) -> dict[int, ErrorSums]:
    """All sufficient statistics per label (key 0 without labels); pixel sums restricted to ``core``."""
    valid = valid_mask(pred, ref, mask)
    pix_mask = valid
    if core is not None:
        pix_mask = np.zeros_like(valid)
        pix_mask[core] = valid[core]
    sums = error_sums(pred, ref, pix_mask, labels)
    if with_ssim:
        for key, (band_sum, count) in ssim_sums(pred, ref, valid, data_range, labels, core).items():
            s = sums.setdefault(key, ErrorSums(pred.shape[0]))
            s.ssim_sum += band_sum
            s.ssim_count += count
    return sums


# --- the public one-call metrics -------------------------------------------------------------------

def rmse(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean squared error over all valid pixels and bands, in the cubes' units."""
    return error_sums(pred, ref, mask)[0].rmse()


def mrae(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean relative absolute error, mean |p - r| / r over valid entries with r > 0 (unitless)."""
    return error_sums(pred, ref, mask)[0].mrae()


def sam(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean spectral angle in radians over valid pixels whose two spectra are non-zero."""
    return error_sums(pred, ref, mask)[0].sam()


def psnr_per_band(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
                  data_range: float = 1.0) -> np.ndarray:
    """PSNR per band in dB with peak ``data_range`` (1.0 for reflectance 0-1)."""
    return error_sums(pred, ref, mask)[0].band_psnr(data_range)


def mpsnr(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
          data_range: float = 1.0) -> float:
    """Mean over bands of the per-band PSNR (dB); +inf if a band is reproduced exactly."""
    return float(np.mean(psnr_per_band(pred, ref, mask, data_range)))


def ssim_per_band(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
                  data_range: float = 1.0) -> np.ndarray:
    """Mean SSIM per band over scored centres (see the module docstring for the mask rule)."""
    band_sum, count = ssim_sums(pred, ref, mask, data_range)[0]
    return band_sum / count if count else np.full(pred.shape[0], np.nan)


def mssim(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
          data_range: float = 1.0) -> float:
    """Mean over bands of the per-band SSIM."""
    return float(np.mean(ssim_per_band(pred, ref, mask, data_range)))


def similarity_metrics(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
                       data_range: float = 1.0) -> dict[str, float | int]:
    """All five metrics in one pass: rmse, mrae, sam, mpsnr, mssim (+ pixel counts)."""
    return similarity_sums(pred, ref, mask, data_range)[0].summary(data_range)
