"""``hyperldm-engine evaluate``: similarity of a synthesized cube to a reference cube (``pipeline.evaluate``)."""

from __future__ import annotations

from pathlib import Path

import click
from hyperldm_cli.common import finish, progress_option


@click.command("evaluate")
@click.argument("pred", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ref", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="One-band integer class raster on the same grid: adds per-class rows.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for metrics.json, metrics.md, per_band_error.png "
                   "[default: <PRED stem>_evaluation beside PRED].")
@click.option("--resample", is_flag=True,
              help="Interpolate the prediction's spectra onto the reference wavelengths "
                   "when band sets differ.")
@click.option("--data-range", type=float, default=1.0, show_default=True,
              help="Span of valid values: PSNR peak and SSIM constants "
                   "(1.0 for reflectance, 4095 for 12-bit).")
@click.option("--window-size", type=click.IntRange(min=20), default=1024, show_default=True,
              help="Pixels per side of the windows read at a time (memory ~ window^2 x bands x 8 bytes).")
@progress_option
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
def evaluate(pred: Path, ref: Path, labels: Path | None, out_dir: Path | None, resample: bool,
             data_range: float, window_size: int, progress_mode: str, overwrite: bool) -> None:
    """RMSE, MRAE, SAM, MPSNR and MSSIM of PRED against REF (overall, per band, per class).

    \b
    Example:
      hyperldm-engine evaluate synth.tif hsi.tif --labels labels.tif --out eval/
    """
    from hyperldm_engine.metrics.report import metrics_table
    from hyperldm_engine.pipeline.evaluate import default_out_dir, evaluate_to_folder

    out_dir = out_dir or default_out_dir(pred)
    result, outputs = evaluate_to_folder(pred, ref, labels, out_dir, resample=resample, data_range=data_range,
                                         window_size=window_size, overwrite=overwrite, progress_mode=progress_mode)
    finish("evaluate", progress_mode, outputs, values=result["overall"],
           text=None if progress_mode == "json" else metrics_table(result), note=f"wrote {out_dir}")


COMMANDS = [evaluate]
