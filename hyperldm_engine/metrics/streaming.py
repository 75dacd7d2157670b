"""Similarity metrics of two rasters larger than memory, accumulated window by window.

Each window is read with a 5 px margin (the SSIM window radius) and only its core is scored, so
every metric is a ratio of additive sums (:class:`~hyperldm_engine.metrics.similarity.ErrorSums`):
squared and relative errors and spectral angles per band, PSNR per band from the accumulated MSE,
and the SSIM map summed over scored centres and divided by their count (a mean weighted by valid
pixels). Because the margin covers the whole SSIM window, the streamed values equal the in-memory
ones up to floating-point summation order: the approximation is only that, plus the image-border
rule (centres within 5 px of the *raster* border are not scored, as in scikit-image).

Memory: two float32 cubes of ``(window_size + 10)^2 x bands`` plus a few float64 band planes
(about 0.5 GB for 1024 px windows of 48 bands).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.raster import block_windows, grid_mismatch
from hyperldm_engine.metrics.similarity import SSIM_RADIUS, ErrorSums, similarity_sums

UNLABELLED = int(np.iinfo(np.int64).min)  # key of valid pixels without a class (labels nodata)
WAVELENGTH_TOLERANCE_NM = 0.5


def read_band_wavelengths(path: str | os.PathLike[str]) -> np.ndarray | None:
    """Band centres in nm via ``hyperldm_engine.io.wavelengths`` when available, else None."""
    try:
        from hyperldm_engine.io.wavelengths import read_wavelengths
    except ImportError:
        return None
    try:
        found = read_wavelengths(path)
    except InputError:
        return None
    centers = found[0] if isinstance(found, tuple) else found
    if centers is None or len(centers) == 0:
        return None
    return np.asarray(centers, dtype=np.float64)


def interpolation_matrix(src_nm: np.ndarray, dst_nm: np.ndarray) -> np.ndarray:
    """``(len(dst), len(src))`` matrix W with W @ spectrum = linear interpolation onto ``dst_nm``."""
    order = np.argsort(src_nm)
    eye = np.eye(len(src_nm))
    w_sorted = np.stack([np.interp(dst_nm, src_nm[order], eye[j]) for j in range(len(src_nm))], axis=1)
    w = np.zeros_like(w_sorted)
    w[:, order] = w_sorted
    return w


def read_class_names(ds: rasterio.io.DatasetReader) -> dict[int, str]:
    """Class names from a labels raster's tags, if any.

    Recognised (dataset or band-1 tags): ``class_names`` / ``CLASS_NAMES`` as a JSON list (index =
    class value) or JSON object ``{"value": "name"}`` or a comma-separated list; ``class_<value>``
    keys.
    """
    names: dict[int, str] = {}
    for tags in (ds.tags(), ds.tags(1)):
        for key, value in tags.items():
            low = key.lower()
            if low == "class_names":
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parsed = [v.strip() for v in value.split(",")]
                if isinstance(parsed, dict):
                    for k, v in parsed.items():
                        try:
                            names[int(k)] = str(v)
                        except ValueError:
                            continue
                elif isinstance(parsed, list):
                    names.update({i: str(v) for i, v in enumerate(parsed)})
            elif low.startswith("class_") and low[6:].lstrip("-").isdigit():
                names[int(low[6:])] = value
    return names


def _band_plan(pred_path: str, ref_path: str, pred_count: int, ref_count: int,
               resample: bool) -> dict[str, Any]:
    """Decide how pred bands map to ref bands: identity, or interpolation onto ref wavelengths."""
    pred_wl = read_band_wavelengths(pred_path)
    ref_wl = read_band_wavelengths(ref_path)
    if pred_wl is not None and len(pred_wl) != pred_count:
        pred_wl = None
    if ref_wl is not None and len(ref_wl) != ref_count:
        ref_wl = None
    same = pred_count == ref_count and (
        pred_wl is None or ref_wl is None
        or bool(np.all(np.abs(pred_wl - ref_wl) <= WAVELENGTH_TOLERANCE_NM)))
    if same:
        return {"matrix": None, "ref_bands": list(range(1, ref_count + 1)),
                "wavelengths": ref_wl if ref_wl is not None else pred_wl, "dropped": [], "resampled": False}
    if pred_wl is None or ref_wl is None:
        missing = pred_path if pred_wl is None else ref_path
        raise InputError(f"{pred_path} has {pred_count} bands and {ref_path} has {ref_count}; cannot match "
                         f"them because {missing} has no band wavelengths")

    def describe(path: str, wl: np.ndarray) -> str:
        return f"{path} has {len(wl)} bands {wl.min():.1f}-{wl.max():.1f} nm"

    if not resample:
        raise InputError(f"band sets differ: {describe(pred_path, pred_wl)}, {describe(ref_path, ref_wl)}; "
                         "pass --resample to interpolate the prediction onto the reference wavelengths")
    lo, hi = pred_wl.min() - WAVELENGTH_TOLERANCE_NM, pred_wl.max() + WAVELENGTH_TOLERANCE_NM
    keep = np.flatnonzero((ref_wl >= lo) & (ref_wl <= hi))
    if keep.size == 0:
        raise InputError(f"no overlap of wavelengths: {describe(pred_path, pred_wl)}, "
                         f"{describe(ref_path, ref_wl)}")
    dropped = [float(w) for w in ref_wl[np.setdiff1d(np.arange(ref_count), keep)]]
    return {"matrix": interpolation_matrix(pred_wl, ref_wl[keep]), "ref_bands": [int(i) + 1 for i in keep],
            "wavelengths": ref_wl[keep], "dropped": dropped, "resampled": True}


def _windows(width: int, height: int, size: int) -> list[tuple[Window, Window, tuple[slice, slice]]]:
    """(core window, padded window, core slice inside the padded block) covering the raster: the
    core blocks of :func:`~hyperldm_engine.io.raster.block_windows`, padded by the SSIM radius."""
    out = []
    m = SSIM_RADIUS
    for core in block_windows(width, height, size):
        r0, c0, h, w = int(core.row_off), int(core.col_off), int(core.height), int(core.width)
        pr0, pc0 = max(0, r0 - m), max(0, c0 - m)
        pr1, pc1 = min(height, r0 + h + m), min(width, c0 + w + m)
        padded = Window(pc0, pr0, pc1 - pc0, pr1 - pr0)
        out.append((core, padded, (slice(r0 - pr0, r0 - pr0 + h), slice(c0 - pc0, c0 - pc0 + w))))
    return out


def _open(path: str, what: str) -> rasterio.io.DatasetReader:
    if not os.path.exists(path):
        raise InputError(f"{path}: the {what} raster does not exist")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{path}: cannot read the {what} raster ({str(exc).splitlines()[0]})") from None


def evaluate_rasters(pred_path: str | os.PathLike[str], ref_path: str | os.PathLike[str],
                     labels_path: str | os.PathLike[str] | None = None, window_size: int = 1024,
                     progress: Any = None, data_range: float = 1.0, resample: bool = False) -> dict[str, Any]:
    """RMSE, MRAE, SAM, MPSNR, MSSIM of ``pred`` against ``ref``, overall, per band and per class.

    Both rasters must share CRS, transform and size. Bands are matched by wavelength when both
    files carry wavelengths (else by count); differing band sets raise InputError unless
    ``resample`` (pred spectra linearly interpolated onto the ref wavelengths inside pred's range;
    ref bands outside it are dropped and listed). A pixel counts where both datasets' masks
    (nodata, alpha, internal masks) are valid and all values are finite. ``labels_path``: a one-band
    integer raster on the same grid; its nodata pixels count overall but in no class.
    ``progress``: a :class:`hyperldm_engine.progress.Progress` (advanced once per window) or None.
    """
    if window_size < 4 * SSIM_RADIUS:
        raise InputError(f"window size {window_size} is too small; use at least {4 * SSIM_RADIUS} px")
    if not data_range > 0:
        raise InputError(f"data range must be positive, got {data_range}")
    pred_path, ref_path = os.fspath(pred_path), os.fspath(ref_path)
    labels_path = None if labels_path is None else os.fspath(labels_path)
    with _open(pred_path, "prediction") as pred, _open(ref_path, "reference") as ref:
        diff = grid_mismatch(pred, ref)
        if diff:
            raise InputError(f"{pred_path} and {ref_path} are not on the same grid ({diff}); "
                             "warp one onto the other first")
        plan = _band_plan(pred_path, ref_path, pred.count, ref.count, resample)
        labels_ds = None
        class_names: dict[int, str] = {}
        if labels_path is not None:
            labels_ds = _open(labels_path, "labels")
            ldiff = grid_mismatch(labels_ds, ref)
            if ldiff:
                labels_ds.close()
                raise InputError(f"{labels_path} and {ref_path} are not on the same grid ({ldiff})")
            if labels_ds.count != 1 or not np.issubdtype(np.dtype(labels_ds.dtypes[0]), np.integer):
                labels_ds.close()
                raise InputError(f"{labels_path}: labels must be one band of integer class values")
            class_names = read_class_names(labels_ds)
        try:
            sums = _accumulate(pred, ref, labels_ds, plan, window_size, data_range, progress)
        finally:
            if labels_ds is not None:
                labels_ds.close()
    return _result(sums, plan, pred_path, ref_path, labels_path, class_names, data_range, window_size)


def _accumulate(pred: Any, ref: Any, labels_ds: Any, plan: dict[str, Any], window_size: int,
                data_range: float, progress: Any) -> dict[int, ErrorSums]:
    n_bands = len(plan["ref_bands"])
    total: dict[int, ErrorSums] = {}
    for _, padded, core in _windows(ref.width, ref.height, window_size):
        r = ref.read(plan["ref_bands"], window=padded, out_dtype=np.float32)
        p = pred.read(window=padded, out_dtype=np.float32)
        if plan["matrix"] is not None:
            p = np.tensordot(plan["matrix"].astype(np.float32), p, axes=(1, 0))
        mask = (pred.dataset_mask(window=padded) > 0) & (ref.dataset_mask(window=padded) > 0)
        labels = None
        if labels_ds is not None:
            lab = labels_ds.read(1, window=padded, masked=True)
            labels = np.asarray(lab.filled(0), dtype=np.int64)
            labels[np.ma.getmaskarray(lab)] = UNLABELLED
        if mask[core].any():
            for key, s in similarity_sums(p, r, mask, data_range, labels, core).items():
                total.setdefault(key, ErrorSums(n_bands))
                total[key] += s
        if progress is not None:
            progress.advance(1)
    return total


def _finite(x: Any) -> Any:
    """Floats as JSON-safe values: nan -> None, +inf -> "inf"."""
    if isinstance(x, float | np.floating):
        if np.isnan(x):
            return None
        if np.isinf(x):
            return "inf" if x > 0 else "-inf"
        return float(x)
    return x


def _result(sums: dict[int, ErrorSums], plan: dict[str, Any], pred_path: str, ref_path: str,
            labels_path: str | None, class_names: dict[int, str], data_range: float,
            window_size: int) -> dict[str, Any]:
    n_bands = len(plan["ref_bands"])
    overall = ErrorSums(n_bands)
    for s in sums.values():
        overall += s
    wl = plan["wavelengths"]
    per_class = []
    if labels_path is not None:
        for key in sorted(k for k in sums if k != UNLABELLED):
            row = {"class": key, "name": class_names.get(key)}
            row.update({k: _finite(v) for k, v in sums[key].summary(data_range).items()})
            per_class.append(row)
    return {
        "pred": pred_path,
        "ref": ref_path,
        "labels": labels_path,
        "data_range": data_range,
        "window_size": window_size,
        "bands": {"count": n_bands, "ref_band_indices": plan["ref_bands"],
                  "wavelengths_nm": None if wl is None else [float(w) for w in wl],
                  "resampled": plan["resampled"], "dropped_ref_wavelengths_nm": plan["dropped"]},
        "overall": {k: _finite(v) for k, v in overall.summary(data_range).items()},
        "per_band": {
            "rmse": [_finite(v) for v in overall.band_rmse()],
            "mrae": [_finite(v) for v in overall.band_mrae()],
            "psnr_db": [_finite(v) for v in overall.band_psnr(data_range)],
            "ssim": [_finite(v) for v in overall.band_ssim()],
        },
        "per_class": per_class,
        "unlabelled_pixels": int(sums[UNLABELLED].n_pixels) if UNLABELLED in sums else 0,
    }


def window_count(width: int, height: int, window_size: int) -> int:
    """Number of windows :func:`evaluate_rasters` reads (for a progress total)."""
    return -(-width // window_size) * -(-height // window_size)
