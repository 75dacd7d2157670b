"""Python API for notebooks and scripts: the CLI's commands as functions with the same options.

``synthesize`` and ``diversity`` build the same job objects the CLI builds (:class:`SceneJob`,
:class:`DiversityJob`) and run them; every keyword has the CLI option's name (``--tile-size`` ->
``tile_size``) and default. Errors users can cause raise :class:`HyperLDMError` subclasses with the
CLI's one-line messages. ``read_cube`` reads any engine output back as reflectance with its band
wavelengths and pixel-centre coordinates, ready for numpy, Spectral Python or xarray.

    >>> from hyperldm_engine import synthesize, read_cube
    >>> paths = synthesize("ortho.tif", "hsi.tif", samples=2, seed=7)
    >>> cube = read_cube(paths[0])
    >>> cube.data.shape, cube.wavelengths_nm[:2]
    ((48, 512, 512), array([410.    , 422.3404]))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PathLike = str | os.PathLike[str]


def _model(model: PathLike | None) -> str:
    """``model`` or the bundle shipped in the package (as the CLI's ``--model`` default)."""
    if model is not None:
        return str(model)
    from hyperldm_engine.models.bundle import default_bundle_path

    return str(default_bundle_path())


def synthesize(rgb: PathLike, output: PathLike, *, model: PathLike | None = None, samples: int = 1, seed: int = 0,
               steps: int | None = None, sampler: str = "ddim", eta: float | None = None, mode: str = "sample",
               mean_draws: int | None = None, input_sensor: str = "auto", rgb_consistency: str = "auto",
               rgb_correction: str = "auto", harmonise: str = "auto", output_sensor: PathLike | None = None,
               envi_header: bool = False, library_out: PathLike | None = None, sample_layout: str = "files",
               abundances: PathLike | None = None, abundance_prior: str = "auto", device: str = "cpu",
               autocast: str | None = None, batch_size: int = 1, strip_width: int | None = None,
               tile_size: int | None = None,
               overlap: int | None = None, extent: str | None = None, aoi: PathLike | None = None,
               keep_grid: bool = False, workers: int | None = None, scheduler: str | None = None,
               co: Sequence[str] = (), cog: bool = False, dtype: str = "float32", scale: float | None = None,
               bands: str | Sequence[int] | None = None, overwrite: bool = False, progress: str = "none",
               **job_fields: Any) -> list[Path]:
    """``hyperldm-engine synthesize``: RGB raster -> K hyperspectral cubes; returns the written cube paths
    (and the ``abundances`` file last, when asked). ``job_fields`` sets any other :class:`SceneJob` field."""
    from hyperldm_engine.errors import InputError
    from hyperldm_engine.pipeline.scene import DEFAULT_OVERLAP, DEFAULT_TILE, SceneJob, synthesize_scene
    from hyperldm_engine.pipeline.synthesize import DEFAULT_ETA, SamplingOptions
    from hyperldm_engine.tiling.runner import DEFAULT_STRIP_WIDTH

    if abundance_prior not in ("auto", "off"):
        raise InputError(f"abundance_prior must be auto or off, got {abundance_prior!r}")
    job = SceneJob(
        input=str(rgb), output=str(output), model=_model(model),
        sampling=SamplingOptions(samples=samples, seed=seed, sampler=sampler,
                                 steps=steps, eta=DEFAULT_ETA if eta is None else eta, mode=mode,
                                 mean_draws=mean_draws),  # None: the run's defaults (synthesize.with_defaults)
        input_sensor=input_sensor, rgb_consistency=rgb_consistency, rgb_correction=rgb_correction,
        harmonise=harmonise, output_sensor=None if output_sensor is None else str(output_sensor),
        envi_header=envi_header,
        library_out=None if library_out is None else str(library_out),
        tile=DEFAULT_TILE if tile_size is None else tile_size, overlap=DEFAULT_OVERLAP if overlap is None else overlap,
        device=device, sample_layout=sample_layout, abundances=None if abundances is None else str(abundances),
        abundance_prior=abundance_prior == "auto",
        creation_options=tuple(co), cog=cog, dtype=dtype, overwrite=overwrite, extent=extent, keep_grid=keep_grid,
        aoi=None if aoi is None else str(aoi), workers=workers, scheduler=scheduler, scale=scale,
        bands=bands or None, autocast=autocast, batch_size=batch_size,
        strip_width=DEFAULT_STRIP_WIDTH if strip_width is None else strip_width, **job_fields,
    )
    paths, _ = synthesize_scene(job, progress_mode=progress)
    return paths


def diversity(rgb: PathLike, out_dir: PathLike, *, samples: int = 5, model: PathLike | None = None, seed: int = 0,
              steps: int | None = None, tile_size: int | None = None, overlap: int | None = None,
              device: str = "cpu", write_samples: bool = False, scale: float | None = None,
              bands: str | Sequence[int] | None = None, input_sensor: str = "auto", harmonise: str = "auto",
              rgb_consistency: str = "auto", rgb_correction: str = "auto", batch_size: int = 1,
              strip_width: int | None = None, extent: str | None = None, aoi: PathLike | None = None,
              keep_grid: bool = False, workers: int | None = None, scheduler: str | None = None,
              overwrite: bool = False, progress: str = "none") -> dict[str, Any]:
    """``hyperldm-engine diversity``: K samples, their spread, SD and SDM into ``out_dir``; returns the report
    (the content of ``report.json``: ``sd``, ``sdm``, ``picked_pixels``, ...)."""
    from hyperldm_engine.pipeline.diversity import DiversityJob, run_diversity
    from hyperldm_engine.pipeline.scene import DEFAULT_OVERLAP, DEFAULT_TILE
    from hyperldm_engine.pipeline.synthesize import DEFAULT_STEPS, SamplingOptions
    from hyperldm_engine.tiling.runner import DEFAULT_STRIP_WIDTH

    sampling = SamplingOptions(samples=samples, seed=seed, steps=DEFAULT_STEPS if steps is None else steps)
    job = DiversityJob(input=str(rgb), output_dir=str(out_dir), model=_model(model), sampling=sampling,
                       tile=DEFAULT_TILE if tile_size is None else tile_size,
                       overlap=DEFAULT_OVERLAP if overlap is None else overlap, device=device,
                       write_samples=write_samples, overwrite=overwrite, scale=scale, input_sensor=input_sensor,
                       harmonise=harmonise, rgb_consistency=rgb_consistency, rgb_correction=rgb_correction,
                       extent=extent, aoi=None if aoi is None else str(aoi), keep_grid=keep_grid, workers=workers,
                       scheduler=scheduler, batch_size=batch_size,
                       strip_width=DEFAULT_STRIP_WIDTH if strip_width is None else strip_width,
                       **({"bands": bands} if bands else {}))
    return run_diversity(job, progress_mode=progress)


@dataclass(frozen=True)
class Cube:
    """A raster read back as reflectance: ``data`` (bands, rows, cols) float32 with NaN where nodata,
    band ``wavelengths_nm`` / ``fwhm_nm`` (None if the file has none), band names, and the pixel-centre
    coordinates ``x`` (cols) and ``y`` (rows) in ``crs``."""

    data: np.ndarray
    wavelengths_nm: np.ndarray | None
    fwhm_nm: np.ndarray | None
    band_names: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    crs: Any
    transform: Any


def read_cube(path: PathLike, window: Any = None) -> Cube:
    """Read a cube (or any raster) as reflectance: integer outputs are unscaled with GDAL's band
    scale and offset, nodata becomes NaN. ``window``: a rasterio ``Window`` to read part of it."""
    import rasterio
    from rasterio.windows import transform as window_transform

    from hyperldm_engine.io.wavelengths import find_wavelengths

    with rasterio.open(path) as ds:
        a = ds.read(window=window, masked=True)
        scales = np.asarray(ds.scales, np.float64)[:, None, None]
        offsets = np.asarray(ds.offsets, np.float64)[:, None, None]
        data = (a.astype(np.float64) * scales + offsets).filled(np.nan).astype(np.float32)
        transform = ds.transform if window is None else window_transform(window, ds.transform)
        names = tuple(d or f"band {i + 1}" for i, d in enumerate(ds.descriptions))
        crs = ds.crs
    rows, cols = data.shape[1:]
    x = transform.c + transform.a * (np.arange(cols) + 0.5)
    y = transform.f + transform.e * (np.arange(rows) + 0.5)
    found = find_wavelengths(path)
    wl, fwhm = (None, None) if found is None else found
    return Cube(data, wl, fwhm, names, x, y, crs, transform)
