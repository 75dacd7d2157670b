"""Text forms of an evaluation result (from :func:`~hyperldm_engine.metrics.streaming.evaluate_rasters`)."""

from __future__ import annotations

from typing import Any

COLUMNS = (("rmse", "RMSE", "{:.5g}"), ("mrae", "MRAE", "{:.4f}"), ("sam", "SAM (rad)", "{:.4f}"),
           ("mpsnr", "MPSNR (dB)", "{:.3f}"), ("mssim", "MSSIM", "{:.4f}"), ("n_pixels", "pixels", "{:d}"))


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return fmt.format(value)


def metrics_table(result: dict[str, Any]) -> str:
    """A Markdown table: one row for all valid pixels, then one per class when labels were given."""
    head = "| region | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|---|" + "|".join("---:" for _ in COLUMNS) + "|"
    rows = [head, rule]

    def row(name: str, values: dict[str, Any]) -> str:
        return f"| {name} | " + " | ".join(_cell(values.get(k), f) for k, _, f in COLUMNS) + " |"

    rows.append(row("all", result["overall"]))
    for c in result.get("per_class", []):
        name = f"{c['class']} {c['name']}" if c.get("name") else f"class {c['class']}"
        rows.append(row(name, c))
    return "\n".join(rows)


def metrics_markdown(result: dict[str, Any]) -> str:
    """The metrics.md document: inputs, data range, band matching, the table."""
    bands = result["bands"]
    wl = bands.get("wavelengths_nm")
    band_text = f"{bands['count']} bands" + (f", {wl[0]:.1f}-{wl[-1]:.1f} nm" if wl else "")
    if bands.get("resampled"):
        band_text += " (prediction linearly interpolated onto the reference wavelengths"
        dropped = bands.get("dropped_ref_wavelengths_nm") or []
        band_text += f"; {len(dropped)} reference bands outside its range left out)" if dropped else ")"
    lines = [
        "# Evaluation",
        "",
        f"- prediction: `{result['pred']}`",
        f"- reference: `{result['ref']}`",
    ]
    if result.get("labels"):
        lines.append(f"- labels: `{result['labels']}` ({result.get('unlabelled_pixels', 0)} valid pixels "
                     "without a class count only in *all*)")
    lines += [
        f"- bands: {band_text}",
        f"- data range: {result['data_range']:g} (PSNR peak and SSIM constants; RMSE is in the data's units)",
        "- SAM in radians; MPSNR and MSSIM are per-band values averaged over bands; SSIM: Gaussian "
        "11 x 11, sigma 1.5, centres within 5 px of the raster border not scored.",
        "",
        metrics_table(result),
        "",
    ]
    return "\n".join(lines)
