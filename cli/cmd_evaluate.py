"""``hyperldm-engine evaluate``: similarity of a synthesized cube to a reference cube."""

from __future__ import annotations

import json
from pathlib import Path

import click
from hyperldm_cli.common import finish, progress_option

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.output_paths import check_outputs, file_output, folder_output

#: the files evaluate writes into its output folder (nothing else in it is touched)
OUTPUT_NAMES = ("metrics.json", "metrics.md", "per_band_error.png")


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
    import rasterio

    from hyperldm_engine.io.atomic import atomic_dir
    from hyperldm_engine.metrics.figures import per_band_error_png
    from hyperldm_engine.metrics.report import metrics_markdown, metrics_table
    from hyperldm_engine.metrics.streaming import evaluate_rasters, window_count
    from hyperldm_engine.progress import Progress

    if out_dir is None:
        out_dir = pred.with_name(f"{pred.stem}_evaluation")
    if not data_range > 0:
        raise InputError(f"--data-range must be positive, got {data_range}")
    # every path written, checked against the inputs before the (long) computation
    check_outputs([folder_output(out_dir), *(file_output(out_dir / name) for name in OUTPUT_NAMES)],
                  [pred, ref, labels], overwrite)
    for path, what in ((pred, "prediction"), (ref, "reference"), (labels, "labels")):
        if path is not None and not path.is_file():
            raise InputError(f"{path}: the {what} raster does not exist")
    try:
        with rasterio.open(ref) as ds:
            n_windows = window_count(ds.width, ds.height, window_size)
    except rasterio.errors.RasterioIOError:
        raise InputError(f"{ref}: cannot read the reference raster") from None
    with Progress(n_windows, "evaluate", mode=progress_mode, unit="window") as progress:
        result = evaluate_rasters(pred, ref, labels, window_size=window_size, progress=progress,
                                  data_range=data_range, resample=resample)
    png = per_band_error_png(result)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        (tmp / "metrics.md").write_text(metrics_markdown(result))
        (tmp / "per_band_error.png").write_bytes(png)
    outputs = {role: str(out_dir / name)
               for role, name in zip(("metrics_json", "metrics_md", "per_band_error"), OUTPUT_NAMES, strict=True)}
    finish("evaluate", progress_mode, outputs, values=result["overall"],
           text=None if progress_mode == "json" else metrics_table(result), note=f"wrote {out_dir}")


COMMANDS = [evaluate]
