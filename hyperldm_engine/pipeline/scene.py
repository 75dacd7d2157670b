"""Synthesize a whole georeferenced scene: read, check, tile, sample, blend and write atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from hyperldm_engine import __version__, contract
from hyperldm_engine.device import resolve_device
from hyperldm_engine.errors import BundleError, InputError
from hyperldm_engine.io.atomic import clean_stale_temporaries
from hyperldm_engine.io.gdal_env import gdal_cache_bytes
from hyperldm_engine.io.output_paths import check_file_name, check_outputs, file_output
from hyperldm_engine.io.raster import open_rgb, scene_statistics
from hyperldm_engine.io.writer import (
    HsiWriter,
    check_creation_options,
    check_free_space,
    check_output_format,
    parse_creation_options,
)
from hyperldm_engine.pipeline.outputs import enter_envi_header, enter_library, output_bands, planned_outputs
from hyperldm_engine.pipeline.synthesize import (
    SamplingOptions,
    SynthesisTileFn,
    abundance_band_names,
    bundle_summary,
    check_mode,
    choose_input_sensor,
)
from hyperldm_engine.progress import Progress, report_info, report_warning
from hyperldm_engine.tiling.aoi import (
    AoiMask,
    extent_geometry,
    load_aoi,
    parse_extent,
    vector_crs,
    windows_for_aoi,
)
from hyperldm_engine.tiling.batching import BatchingBackend
from hyperldm_engine.tiling.runner import DEFAULT_STRIP_WIDTH, RunStats, run_tiles
from hyperldm_engine.tiling.windows import scene_grid

NODATA = -9999.0
#: 512 px tiles with 64 px overlap: 1.31x pixels computed per scene pixel instead of 1.78x at 256 px,
#: equally seamless (seam ratio 0.97 vs 1.04); 7.1 vs 4.7 MPix/min on a 2048^2 scene (2 CPU cores,
#: benchmarks/RESULTS.md). The pipelines shrink it per scene with ``windows.scene_grid`` when fewer
#: pixels give the same number of windows (1024 px: three windows of 384 px, not of 512).
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64


@dataclass
class SceneJob:
    """Everything ``synthesize`` needs; CLI flags map one to one onto these fields."""

    input: str
    output: str
    model: str
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    device: str = "cpu"
    sample_layout: str = "files"  # "files": out_s0.tif ...; "bands": one file, K x bands
    abundances: str | None = None
    creation_options: Sequence[str] = ()
    cog: bool = False
    dtype: str = "float32"
    overwrite: bool = False
    extent: str | None = None
    aoi: str | None = None
    workers: int | None = None
    scheduler: str | None = None
    scale: float | None = None
    bands: Sequence[int] | None = None
    autocast: str | None = None
    batch_size: int = 1  # tiles per model call (in-process runner only; see README "What you get")
    strip_width: int = DEFAULT_STRIP_WIDTH  # px merged at a time; memory grows with it (docs/scaling-out.md)
    input_sensor: str = "auto"  # spectral.input_sensors name; auto: the raster's metadata, else a generic camera
    rgb_consistency: str = "auto"  # RGB_CONSISTENCY: auto projects when the input sensor is known
    output_sensor: str | None = None  # spectral.output_sensors name or CSV: resample every cube to its bands
    envi_header: bool = False  # also write OUT.hdr beside each cube (Spectral Python, ENVI)
    library_out: str | None = None  # also write the decoder's endmember library (GeoPackage + CSV)
    abundance_grouping: str = "class"  # ABUNDANCE_GROUPINGS: library classes or material groups


def sample_paths(output: str | Path, samples: int, layout: str) -> list[Path]:
    """Output file names: ``out.tif`` for one sample or the "bands" layout; else ``out_s0.tif`` ..."""
    out = Path(output)
    if samples == 1 or layout == "bands":
        return [out]
    return [Path(contract.synthesize_sample_name(str(out), k)) for k in range(samples)]


class _BandOffset:
    """Adapter: the runner writes one sample's block; this puts it at ``offset`` in a shared file."""

    def __init__(self, writer: HsiWriter, offset: int) -> None:
        self.writer, self.offset = writer, offset

    def creation_profile(self) -> dict[str, Any]:
        """The shared file's block layout, so the runner flushes whole compressed blocks."""
        return self.writer.creation_profile()

    def write(self, block: np.ndarray, window: Any) -> None:
        self.writer.write(block, window=window, band_offset=self.offset)


def _check_job(job: SceneJob) -> None:
    job.sampling.validate()
    if job.sample_layout not in ("files", "bands"):
        raise InputError(f"--sample-layout must be files or bands, got {job.sample_layout!r}")
    if job.dtype not in ("float32", "uint16"):
        raise InputError(f"--dtype must be float32 or uint16, got {job.dtype!r}")
    if job.workers is not None and job.scheduler is not None:
        raise InputError("give --workers or --scheduler, not both")
    if job.workers is not None and job.workers < 1:
        raise InputError(f"--workers must be at least 1, got {job.workers}")
    if int(job.strip_width) != job.strip_width or job.strip_width < 1:
        raise InputError(f"--strip-width must be a positive number of pixels, got {job.strip_width}")
    if int(job.batch_size) != job.batch_size or job.batch_size < 1:
        raise InputError(f"--batch-size must be a positive integer, got {job.batch_size}")
    if job.batch_size > 1 and (job.workers is not None or job.scheduler is not None):
        raise InputError("--batch-size > 1 batches tiles in this process; it cannot be combined with "
                         "--workers/--scheduler (use one or the other)")
    check_creation_options(parse_creation_options(job.creation_options), job.dtype)
    resolve_device(job.device)  # unknown device or no GPU: refuse before reading anything


def check_bundle_folder(model: str | Path) -> None:
    """A ``--model`` folder without ``config.json`` is not a bundle: say so before its files are
    searched (an unrelated system folder was reported as possibly holding pickled code)."""
    path = Path(model)
    if path.is_dir() and not (path / "config.json").is_file():
        raise BundleError(f"{path}: is not a model bundle (the folder has no config.json); "
                          "pass a bundle folder or .zip written by 'hyperldm-engine train'")


def _check_space(job: SceneJob, paths: list[Path], n_bands: int, n_groups: int, pixels: int) -> None:
    """Refuse before any work when the outputs' declared size cannot fit (disk or ulimit -f)."""
    itemsize = 2 if job.dtype == "uint16" else 4
    per_file = pixels * n_bands * itemsize * (job.sampling.samples if job.sample_layout == "bands" else 1)
    check_free_space(paths[0], per_file, copies=len(paths) * (2 if job.cog else 1))  # all in one folder
    if job.abundances:
        check_free_space(job.abundances, pixels * n_groups * 4)


def _area_of_interest(job: SceneJob, reader: Any, grid: Any) -> tuple[Any, Any]:
    """(mask_fn, tiles) restricting work to --extent / --aoi, or (None, None)."""
    if not (job.extent or job.aoi):
        return None, None
    what = " and ".join([*(["--extent"] if job.extent else []), *([f"--aoi {job.aoi}"] if job.aoi else [])])
    if not reader.has_geotransform:
        raise InputError(f"{job.input}: has no geotransform, so {what} cannot be placed on it")
    geometry = None
    if job.extent:
        extent = parse_extent(job.extent)
        if extent.crs is not None and reader.crs is None:
            raise InputError(f"{job.input}: has no CRS, so --extent in {extent.crs.name} cannot be placed on it; "
                             "give the extent in the raster's own coordinates without a CRS")
        geometry = extent_geometry(extent, reader.crs)
    if job.aoi:
        if reader.crs is None and vector_crs(job.aoi) is not None:
            raise InputError(f"{job.input}: has no CRS, so the --aoi {job.aoi} (which has one) cannot be placed "
                             "on it; give an AOI without a CRS in the raster's own coordinates")
        aoi = load_aoi(job.aoi, reader.crs)
        geometry = aoi if geometry is None else geometry.intersection(aoi)
    tiles = windows_for_aoi(grid, geometry, reader.transform)
    if not tiles:
        raise InputError(f"{job.input}: the {what} does not overlap the raster")
    mask = AoiMask(geometry, reader.transform)
    windows = {(i, j): w for i, j, w in grid}
    if not any(mask(windows[t]).any() for t in tiles):  # stops at the first tile with a pixel
        raise InputError(f"{what}: selects no pixel of {job.input} (no pixel centre lies inside it)")
    return mask, tiles


def _gsd_warning(reader: Any, gsd_m: float | None, mode: str) -> None:
    if not reader.has_geotransform:
        report_warning(f"{reader.path}: no geotransform; the output has none either (pixel grid only)", mode)
        return
    if not reader.has_crs:
        report_warning(f"{reader.path}: no CRS; the output keeps the pixel grid without a CRS", mode)
        return
    if reader.is_geographic:
        report_warning(f"{reader.path}: geographic CRS (degrees); pixel size cannot be compared with "
                       f"the model's training GSD ({gsd_m} m); reproject to a projected CRS for best "
                       "results", mode)
        return
    if gsd_m:
        lo, hi = (min(gsd_m), max(gsd_m)) if isinstance(gsd_m, list) else (gsd_m, gsd_m)
        res = float(abs(reader.res[0]))
        if res < lo / 4 or res > hi * 4:
            report_warning(f"{reader.path}: pixel size {res:g} m is far from the model's training GSD "
                           f"({lo:g}-{hi:g} m); results may be less realistic", mode)


def synthesize_scene(job: SceneJob, progress_mode: str = "bar") -> tuple[list[Path], RunStats]:
    """Run a :class:`SceneJob`; returns the written paths and the runner's statistics.

    GDAL's block cache is bounded (``GDAL_CACHEMAX`` in GDAL's units, default 64 MB) so that memory
    stays flat in scene size: by default GDAL may cache 5 % of RAM, which grows with the output it
    has written.
    """
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_bytes(os.environ.get("GDAL_CACHEMAX"))):
        return _synthesize_scene(job, progress_mode)


def _synthesize_scene(job: SceneJob, progress_mode: str = "bar") -> tuple[list[Path], RunStats]:
    """Run a :class:`SceneJob`; returns the written paths and the runner's statistics.

    All outputs are written atomically together: on any error or interrupt none of them exists.
    """
    _check_job(job)
    check_file_name(job.output)
    check_output_format(job.output)
    planned = [file_output(p) for p in sample_paths(job.output, job.sampling.samples, job.sample_layout)]
    if job.abundances:
        check_file_name(job.abundances, "--abundances")
        check_output_format(job.abundances, "--abundances")
        planned.append(file_output(job.abundances, "--abundances"))
    planned += planned_outputs(sample_paths(job.output, job.sampling.samples, job.sample_layout),
                               job.envi_header, job.library_out)
    # every path written, checked against every input before any work (io/output_paths.py)
    check_outputs(planned, [job.input, job.model, job.aoi, job.output_sensor], job.overwrite)
    for folder in {p.path.parent for p in planned}:
        clean_stale_temporaries(folder)  # left by a killed run (kill -9, power loss)
    check_bundle_folder(job.model)
    model = bundle_summary(job.model)
    check_mode(job.sampling.mode, model, job.model)
    out_bands = output_bands(job.output_sensor, model)
    reader = open_rgb(job.input, bands=job.bands, scale=job.scale)
    with reader:
        k = job.sampling.samples
        grid = scene_grid(reader.width, reader.height, job.tile, job.overlap, align=model["factor"])
        _check_space(job, sample_paths(job.output, k, job.sample_layout), out_bands.count,
                     len(abundance_band_names(model, job.abundance_grouping)), reader.width * reader.height)
        mask_fn, tiles = _area_of_interest(job, reader, grid)
        stats = scene_statistics(reader)
        for note in stats.warnings:
            report_warning(note, progress_mode)
        _gsd_warning(reader, model["gsd_m"], progress_mode)
        rgb_bands = ",".join(map(str, reader.bands))
        report_info(f"{job.input}: R,G,B from bands {rgb_bands} ({reader.band_source})", progress_mode)
        sensor = choose_input_sensor(job.input, job.input_sensor, job.rgb_consistency, model["wavelengths_nm"],
                                     model["fwhm_nm"])
        report_info(f"{job.input}: input sensor {sensor.name} (from {sensor.source}); RGB consistency "
                    f"{'on' if sensor.consistency else 'off'}", progress_mode)
        tile_fn = SynthesisTileFn(str(job.model), job.sampling, stats, device=job.device,
                                  abundances=job.abundances is not None, autocast=job.autocast,
                                  rgb_response=sensor.response, abundance_grouping=job.abundance_grouping)
        if out_bands.resampling is not None:
            report_info(f"output sensor {out_bands.sensor}: {out_bands.describe()}", progress_mode)
        tile_fn = out_bands.wrap(tile_fn)  # --output-sensor: each tile resampled to the sensor's bands
        n_bands = out_bands.count
        tags = {"HYPERLDM_ENGINE": __version__, "HYPERLDM_MODEL": Path(job.model).name,
                "HYPERLDM_SEED": job.sampling.seed, "HYPERLDM_SAMPLER": job.sampling.sampler,
                "HYPERLDM_STEPS": job.sampling.steps, "HYPERLDM_SAMPLES": k,
                "HYPERLDM_RGB_BANDS": rgb_bands, "HYPERLDM_RGB_BANDS_FROM": reader.band_source,
                "HYPERLDM_MODE": job.sampling.mode, "HYPERLDM_INPUT_SENSOR": sensor.name,
                "HYPERLDM_INPUT_SENSOR_FROM": sensor.source,
                "HYPERLDM_RGB_CONSISTENCY": "on" if sensor.consistency else "off",
                "HYPERLDM_OUTPUT_SENSOR": out_bands.sensor}
        writer_args = dict(like_profile=reader.profile, nodata=NODATA if job.dtype == "float32" else 0,
                           dtype=job.dtype, creation_options=list(job.creation_options), cog=job.cog,
                           overwrite=job.overwrite)  # uint16: the writer's INT_SCALE
        paths = sample_paths(job.output, k, job.sample_layout)
        total = (len(tiles) if tiles is not None else grid.n_rows * grid.n_cols)
        with ExitStack() as stack:
            writers: dict[str, Any] = {}
            bands: dict[str, int] = {}
            if job.sample_layout == "bands" and k > 1:
                wl = np.tile(out_bands.wavelengths_nm, k)
                names = [f"s{s} {out_bands.names[b] if out_bands.names else f'b{b + 1}'}" for s in range(k)
                         for b in range(n_bands)]
                shared = stack.enter_context(HsiWriter(
                    paths[0], count=k * n_bands, wavelengths_nm=wl, fwhm_nm=np.tile(out_bands.fwhm_nm, k),
                    band_names=names, tags={**tags, "HYPERLDM_SAMPLE_LAYOUT": "bands"}, **writer_args))
                for s in range(k):
                    writers[f"s{s}"], bands[f"s{s}"] = _BandOffset(shared, s * n_bands), n_bands
                cubes = [shared]
            else:
                for s, path in enumerate(paths):
                    writers[f"s{s}"] = stack.enter_context(HsiWriter(
                        path, count=n_bands, wavelengths_nm=out_bands.wavelengths_nm, fwhm_nm=out_bands.fwhm_nm,
                        band_names=out_bands.names, tags={**tags, "HYPERLDM_SAMPLE": s}, **writer_args))
                    bands[f"s{s}"] = n_bands
                cubes = [writers[f"s{s}"] for s in range(len(paths))]
            for cube in cubes:  # --envi-header: OUT.hdr beside each cube, renamed with it
                if job.envi_header:
                    enter_envi_header(stack, cube, cube.path, job.overwrite, f"HyperLDM engine {__version__} "
                                      f"synthesize of {Path(job.input).name} ({out_bands.sensor} bands)")
            if job.library_out:
                enter_library(stack, job.library_out, str(job.model), out_bands, job.overwrite)
            if job.abundances:
                groups = abundance_band_names(model, job.abundance_grouping)
                writers["abundances"] = stack.enter_context(HsiWriter(
                    job.abundances, like_profile=reader.profile, count=len(groups), nodata=NODATA,
                    band_names=[f"abundance {g}" for g in groups], creation_options=list(job.creation_options),
                    overwrite=job.overwrite, tags={**tags, "HYPERLDM_ABUNDANCE_GROUPS": ",".join(groups)}))
                bands["abundances"] = len(groups)
            # tile parts carried between strips wait next to the output (not in a tmpfs /tmp)
            carry_dir = Path(job.output).parent
            with Progress(total, "synthesize", mode=progress_mode, unit="tile") as progress:
                if job.workers is not None or job.scheduler is not None:
                    from hyperldm_engine.tiling.dask_runner import run_tiles_dask

                    stats_run = run_tiles_dask(reader, writers, tile_fn, grid, bands, writer_args["nodata"],
                                               scheduler=job.scheduler, n_workers=job.workers,
                                               progress=progress, mask_fn=mask_fn, tiles=tiles,
                                               carry_dir=str(carry_dir), strip_width=job.strip_width)
                else:
                    batching: dict[str, Any] = {}
                    if job.batch_size > 1:  # several tiles per model call, merged in the same order
                        batching = dict(backend=BatchingBackend(tile_fn.batch, job.batch_size),
                                        max_tiles_in_flight=job.batch_size)
                    stats_run = run_tiles(reader, writers, tile_fn, grid, bands, writer_args["nodata"],
                                          progress=progress, mask_fn=mask_fn, tiles=tiles, carry_dir=carry_dir,
                                          strip_width=job.strip_width, **batching)
    written = paths + ([Path(job.abundances)] if job.abundances else [])
    return written, stats_run
