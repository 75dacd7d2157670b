"""Evaluate a synthesized cube against a reference cube: metrics streamed window by window, written
atomically into one folder (``metrics.json``, ``metrics.md``, ``per_band_error.png``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hyperldm_engine import contract
from hyperldm_engine.errors import InputError
from hyperldm_engine.io.output_paths import check_outputs, file_output, folder_output

#: the files evaluate writes into its output folder, by the contract's role (nothing else is touched)
OUTPUT_FILES = dict(zip(contract.OUTPUT_ROLES["evaluate"], ("metrics.json", "metrics.md", "per_band_error.png"),
                        strict=True))


def default_out_dir(pred: str | Path) -> Path:
    """``<PRED stem>_evaluation`` beside PRED."""
    pred = Path(pred)
    return pred.with_name(f"{pred.stem}_evaluation")


def evaluate_to_folder(pred: Path, ref: Path, labels: Path | None, out_dir: Path, *, resample: bool = False,
                       data_range: float = 1.0, window_size: int = 1024, overwrite: bool = False,
                       progress_mode: str = "bar") -> tuple[dict[str, Any], dict[str, str]]:
    """RMSE, MRAE, SAM, MPSNR and MSSIM of ``pred`` against ``ref`` (overall, per band, per class);
    returns the result and the written files by role. Every path is checked before the computation."""
    import rasterio

    from hyperldm_engine.io.atomic import atomic_dir
    from hyperldm_engine.metrics.figures import per_band_error_png
    from hyperldm_engine.metrics.report import metrics_markdown
    from hyperldm_engine.metrics.streaming import evaluate_rasters, window_count
    from hyperldm_engine.progress import Progress

    if not data_range > 0:
        raise InputError(f"--data-range must be positive, got {data_range}")
    check_outputs([folder_output(out_dir), *(file_output(out_dir / name) for name in OUTPUT_FILES.values())],
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
        (tmp / OUTPUT_FILES["metrics_json"]).write_text(json.dumps(result, indent=2) + "\n")
        (tmp / OUTPUT_FILES["metrics_md"]).write_text(metrics_markdown(result))
        (tmp / OUTPUT_FILES["per_band_error"]).write_bytes(png)
    return result, {role: str(out_dir / name) for role, name in OUTPUT_FILES.items()}
