"""Report pages (Markdown and HTML with PNG figures in the same folder) for diversity and experiments.

Figures are rendered off-screen (matplotlib's Agg canvas, no global backend). HTML pages are
self-contained apart from the PNGs, which are linked by relative file name.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.io.jsonable import jsonable  # noqa: F401  (the experiments import it from here)


def _figure(width: float = 7.0, height: float = 5.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: Path, dpi: int = 100) -> str:
    fig.savefig(path, format="png", dpi=dpi)
    return path.name


def fmt(v: Any, spec: str = "{:.4f}") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if isinstance(v, int | np.integer):
        return str(int(v))
    try:
        if not math.isfinite(float(v)):
            return "n/a" if math.isnan(float(v)) else str(v)
    except (TypeError, ValueError):
        return str(v)
    return spec.format(float(v))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(title: str, sections: Sequence[str]) -> str:
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;"
             "text-align:right}th{background:#eee}img{max-width:100%;border:1px solid #ddd}"
             "code{background:#f4f4f4;padding:0 3px}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(sections)
            + "\n</body></html>\n")


# ---- diversity -------------------------------------------------------------------------------


def _read(path: Path, bands: list[int] | None = None, max_side: int = 800) -> np.ndarray:
    from hyperldm_engine.io.preview import read_decimated

    return read_decimated(path, bands, max_side)


def diversity_figures(folder: Path, tc_path: Path, spread_path: Path, sd_path: Path, sdm_path: Path,
                      picks: Any, wavelengths_nm: np.ndarray, classes: list[str], report: dict[str, Any]) -> dict:
    """Write the diversity PNGs into ``folder``; returns {figure key: file name}."""
    from hyperldm_engine.contract import DIVERSITY_FIGURES
    from hyperldm_engine.io.preview import stretch

    FIG_TRUE_COLOUR, FIG_SPREAD, FIG_SPECTRA, FIG_MAPS = DIVERSITY_FIGURES
    out: dict[str, str] = {}
    tc = _read(tc_path)
    fig = _figure(6, 6)
    ax = fig.subplots()
    ax.imshow(stretch(np.moveaxis(tc, 0, -1)))
    for name, (_, r, c, _) in sorted(picks.best.items()):
        f = max(1.0, max(report["width"], report["height"]) / 800)
        ax.plot(c / f, r / f, "o", mfc="none", mec="yellow", ms=8)
        ax.annotate(name, (c / f, r / f), color="yellow", fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_title(f"sample 0 true colour ({', '.join(f'{w:.0f}' for w in _tc_nm(wavelengths_nm))} nm)")
    ax.set_axis_off()
    out["true_colour"] = save_figure(fig, folder / FIG_TRUE_COLOUR)

    sp = _read(spread_path)
    fig = _figure(11, 4.6)
    for ax, band, title in zip(fig.subplots(1, 2), sp, ("spectral std (reflectance)", "angular spread (rad)"),
                               strict=True):
        im = ax.imshow(band, cmap="magma")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(f"{title}, mean {np.nanmean(band):.4g}")
        ax.set_axis_off()
    out["spread"] = save_figure(fig, folder / FIG_SPREAD)

    fig = _figure(11, 4.6)
    maps = ((_read(sd_path)[0], f"SD map KL(v || p_class) nats; SD = {report['sd']:.4f}"),
            (_read(sdm_path)[0], f"SDM map mean_k KL nats; SDM = {report['sdm']:.4f}"))
    for ax, (band, title) in zip(fig.subplots(1, 2), maps, strict=True):
        im = ax.imshow(band, cmap="viridis")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    out["maps"] = save_figure(fig, folder / FIG_MAPS)

    items = sorted(picks.best.items(), key=lambda kv: (not kv[0].endswith("spread"), kv[0]))[:8]
    if items:
        ncol = min(4, len(items))
        nrow = math.ceil(len(items) / ncol)
        fig = _figure(3.2 * ncol, 2.8 * nrow)
        axes = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True, squeeze=False)).ravel()
        for ax, (name, (_, r, c, spectra)) in zip(axes, items, strict=False):
            label = name
            if name.startswith("class "):
                i = int(name.split()[1])
                label = f"class {classes[i] if i < len(classes) else i}"
            ax.fill_between(wavelengths_nm, spectra.min(axis=0), spectra.max(axis=0), color="tab:blue",
                            alpha=0.3, label=f"min-max of {spectra.shape[0]}")
            ax.plot(wavelengths_nm, spectra.mean(axis=0), color="tab:blue", lw=1.2, label="mean")
            ax.plot(wavelengths_nm, spectra[0], color="k", lw=0.6, ls="--", label="sample 0")
            ax.set_title(f"{label}\n(row {r}, col {c})", fontsize=8)
            ax.grid(alpha=0.3)
        for ax in axes[len(items):]:
            ax.set_axis_off()
        axes[0].legend(fontsize=7)
        fig.supxlabel("wavelength (nm)")
        fig.supylabel("reflectance")
        out["spectra"] = save_figure(fig, folder / FIG_SPECTRA)
    return out


def _tc_nm(wl: np.ndarray) -> list[float]:
    from hyperldm_engine.io.preview import true_colour_bands

    return [float(wl[b]) for b in true_colour_bands(wl)]


def _diversity_rows(report: dict[str, Any]) -> list[list[Any]]:
    return [["SD (eq. 26-28)", report["sd"]], ["SD, mean over present classes", report["sd_present_mean"]],
            ["SDM primary (per-pixel p(y))", report["sdm"]],
            ["SDM Inception-Score-like variant", report["sdm_is_variant"]]]


def diversity_markdown(report: dict[str, Any]) -> str:
    """report.md of a diversity run."""
    figs = report.get("figures", {})
    t = report.get("timings", {})
    lines = [
        "# Diversity report", "",
        f"- input: `{report['input']}` ({report['width']} x {report['height']} px, {report['n_pixels']} valid)",
        f"- model: `{report['model']}`; classes (n_s = {len(report['classes'])}): {', '.join(report['classes'])}",
        f"- K = {report['samples']} samples, seed {report['seed']}, {report['sampler']} {report['steps']} steps",
        f"- time: {fmt(t.get('total_s'), '{:.1f}')} s (tiles {fmt(t.get('tiles_s'), '{:.1f}')} s)", "",
        markdown_table(["metric", "value"], _diversity_rows(report)), "",
        "SD uses sample 0's softmax; SDM uses all K samples. Definitions: docs/metrics.md.", "",
    ]
    for key, title in (("true_colour", "Sample 0, true colour (picked pixels marked)"),
                       ("spread", "Spread across samples"), ("maps", "SD and SDM maps"),
                       ("spectra", "Spectra of picked pixels: mean, sample 0 and min-max of the K samples")):
        if key in figs:
            lines += [f"## {title}", "", f"![{title}]({figs[key]})", ""]
    return "\n".join(lines)


def diversity_html(report: dict[str, Any]) -> str:
    """report.html of a diversity run (PNGs linked from the same folder)."""
    figs = report.get("figures", {})
    t = report.get("timings", {})
    info = (f"<p>Input <code>{html.escape(report['input'])}</code> ({report['width']} x {report['height']} px); "
            f"model <code>{html.escape(report['model'])}</code>; K = {report['samples']} samples, seed "
            f"{report['seed']}, {report['sampler']} {report['steps']} steps; n_s = {len(report['classes'])} "
            f"classes; {fmt(t.get('total_s'), '{:.1f}')} s.</p>")
    sections = [info, html_table(["metric", "value"], _diversity_rows(report)),
                "<p>SD uses sample 0's softmax; SDM uses all K samples (see docs/metrics.md).</p>"]
    for key, title in (("true_colour", "Sample 0, true colour"), ("spread", "Spread across samples"),
                       ("maps", "SD and SDM maps"), ("spectra", "Spectra of picked pixels")):
        if key in figs:
            sections.append(f"<h2>{title}</h2><img src=\"{html.escape(figs[key])}\" alt=\"{title}\">")
    return html_page("Diversity report", sections)
