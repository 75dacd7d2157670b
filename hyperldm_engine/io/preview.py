"""PNG previews of a cube: a true-colour composite beside the spectra of a few pixels.

Drawn with matplotlib's Agg canvas directly (no pyplot state, safe in worker threads) and
written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hyperldm_engine.io.atomic import atomic_path

TRUE_COLOUR_NM = (640.0, 550.0, 460.0)  # red, green, blue centres for the composite


def true_colour_bands(wavelengths_nm: Sequence[float] | np.ndarray) -> tuple[int, int, int]:
    """0-based band indexes nearest to 640, 550 and 460 nm (any sensor range)."""
    wl = np.asarray(wavelengths_nm, float)
    return tuple(int(np.argmin(np.abs(wl - t))) for t in TRUE_COLOUR_NM)  # type: ignore[return-value]


def stretch(image: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Per-channel linear stretch of ``(h, w, c)`` between its low/high percentiles to [0, 1].

    Non-finite values become 0; a flat channel maps to 0.
    """
    img = np.asarray(image, dtype=np.float64)
    out = np.zeros_like(img)
    for c in range(img.shape[-1]):
        ch = img[..., c]
        fin = np.isfinite(ch)
        if not fin.any():
            continue
        lo, hi = np.percentile(ch[fin], [low, high])
        if hi > lo:
            out[..., c] = np.where(fin, np.clip((ch - lo) / (hi - lo), 0.0, 1.0), 0.0)
    return out


def true_colour(cube: np.ndarray, wavelengths_nm: Sequence[float] | np.ndarray,
                rgb_bands: Sequence[int] | None = None) -> np.ndarray:
    """``(h, w, 3)`` float 0-1 composite of a ``(bands, h, w)`` cube, 2-98% stretched.

    ``rgb_bands`` are 0-based indexes; default the bands nearest 640/550/460 nm.
    """
    bands = tuple(rgb_bands) if rgb_bands is not None else true_colour_bands(wavelengths_nm)
    return stretch(np.stack([cube[b] for b in bands], axis=-1))


def read_decimated(path: Path, bands: list[int] | None = None, max_side: int = 800) -> np.ndarray:
    """A raster (``bands`` 1-based, default all) read at most ``max_side`` px on its long side, by
    nearest neighbour, masked values as nan (figures of whole scenes in flat memory)."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        f = max(1, int(np.ceil(max(ds.width, ds.height) / max_side)))
        idx = bands or list(range(1, ds.count + 1))
        a = ds.read(idx, out_shape=(len(idx), max(1, ds.height // f), max(1, ds.width // f)),
                    resampling=Resampling.nearest, masked=True)
    return a.astype(np.float64).filled(np.nan)


def default_pixels(height: int, width: int, n: int = 4) -> list[tuple[int, int]]:
    """``n`` pixels spread along the diagonal, away from the edges."""
    fr = np.linspace(0.2, 0.8, n)
    return [(int(f * (height - 1)), int(f * (width - 1))) for f in fr]


def save_preview_png(
    path: str | os.PathLike[str],
    cube: np.ndarray,
    wavelengths_nm: Sequence[float] | np.ndarray,
    rgb_bands: Sequence[int] | None = None,
    pixels: Sequence[tuple[int, int]] | None = None,
    title: str = "HyperLDM preview",
    overwrite: bool = False,
    dpi: int = 100,
) -> Path:
    """Write a PNG: composite (left) with marked pixels, their spectra (right, reflectance vs nm)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cube = np.asarray(cube)
    wl = np.asarray(wavelengths_nm, float)
    if cube.ndim != 3 or cube.shape[0] != len(wl):
        raise ValueError(f"cube {cube.shape} does not match {len(wl)} wavelengths")
    _, h, w = cube.shape
    pix = list(pixels) if pixels is not None else default_pixels(h, w)
    fig = Figure(figsize=(10, 4.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax_img, ax_spec = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    ax_img.imshow(true_colour(cube, wl, rgb_bands), interpolation="nearest")
    ax_img.set_title("true colour (2-98% stretch)", fontsize=9)
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    colours = [f"C{i % 10}" for i in range(len(pix))]
    for (r, c), col in zip(pix, colours, strict=True):
        ax_img.plot([c], [r], marker="o", mfc="none", mec=col, mew=2, ms=8)
        ax_spec.plot(wl, cube[:, r, c], color=col, lw=1.2, label=f"row {r}, col {c}")
    ax_spec.set_xlabel("wavelength (nm)")
    ax_spec.set_ylabel("reflectance")
    ax_spec.grid(alpha=0.3)
    if pix:
        ax_spec.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    final = Path(path)
    with atomic_path(final, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png")
    return final
