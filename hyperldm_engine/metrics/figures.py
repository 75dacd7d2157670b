"""Figures of an evaluation result, rendered off-screen (matplotlib's Agg canvas, no global backend)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def _values(seq: list[Any]) -> np.ndarray:
    out = []
    for v in seq:
        out.append(np.nan if v is None else np.inf if v == "inf" else float(v))
    return np.asarray(out, dtype=np.float64)


def per_band_error_png(result: dict[str, Any], dpi: int = 110) -> bytes:
    """PNG bytes: RMSE and MRAE per band against wavelength (nm), or band number if unknown."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    per_band = result["per_band"]
    rmse = _values(per_band["rmse"])
    mrae = _values(per_band["mrae"])
    wl = result["bands"].get("wavelengths_nm")
    x = np.asarray(wl, dtype=np.float64) if wl else np.arange(1, len(rmse) + 1)
    xlabel = "wavelength (nm)" if wl else "band"
    fig = Figure(figsize=(7.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.plot(x, rmse, marker="o", ms=3, color="tab:blue")
    ax1.set_ylabel(f"RMSE (data range {result['data_range']:g})")
    ax1.grid(alpha=0.3)
    ax2.plot(x, mrae, marker="o", ms=3, color="tab:red")
    ax2.set_ylabel("MRAE")
    ax2.set_xlabel(xlabel)
    ax2.grid(alpha=0.3)
    overall = result["overall"]
    fig.suptitle(f"per-band error: RMSE {overall.get('rmse') or float('nan'):.4g}, "
                 f"MRAE {overall.get('mrae') or float('nan'):.4f}", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
