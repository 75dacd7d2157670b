"""One orchestrator for every command that runs a tile function over a georeferenced RGB scene.

A command (``synthesize``, ``diversity``) says what a tile computes and what is written; everything
else happens here, once and in one order: the run options are checked (``check_run_options``),
every output path against every input before any work (``prepare_outputs``), then
:func:`open_scene` opens the RGB raster inside a bounded GDAL cache and yields a :class:`ScenePlan`:
the scene statistics (never per tile), the balanced tile grid, ``--extent``/``--aoi`` placed on it
and the output grid (:attr:`ScenePlan.profile`: the pixels the area selects, snapped to the input
grid, unless ``--keep-grid``), the input sensor, the tags every output carries and the back end
(in-process, batched or dask). Tiles and the noise field stay on the input's grid whatever the output
grid, so a cropped output holds exactly the pixels of a whole-scene run in its window.
:meth:`ScenePlan.run` streams the tiles through that back end in the runner's fixed merge order, so
the result is bit-identical whatever the back end, strip width or worker count; per-tile values
that are not rasters (``diversity``'s picked pixels) come back through a ``reduce`` callback in
that same order, on the client, so they too agree across workers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import Window

from hyperldm_engine import __version__
from hyperldm_engine.device import resolve_device
from hyperldm_engine.errors import BundleError, InputError
from hyperldm_engine.io.atomic import clean_stale_temporaries
from hyperldm_engine.io.gdal_env import gdal_cache_bytes
from hyperldm_engine.io.output_paths import Planned, check_outputs
from hyperldm_engine.io.raster import RgbReader, SceneStatistics, open_rgb, scene_statistics
from hyperldm_engine.pipeline.correction import haze_left_to_anchor
from hyperldm_engine.pipeline.synthesize import SamplingOptions
from hyperldm_engine.progress import Progress, report_info, report_warning
from hyperldm_engine.simulate.harmonise import choose_harmonisation
from hyperldm_engine.spectral.input_sensors import InputSensorChoice, choose_input_sensor
from hyperldm_engine.tiling.aoi import (
    AoiMask,
    extent_geometry,
    load_aoi,
    parse_extent,
    selected_window,
    vector_crs,
    windows_for_aoi,
)
from hyperldm_engine.tiling.runner import DEFAULT_STRIP_WIDTH, OutputSet, RunStats, TileOutput, TilePlan, run_tiles
from hyperldm_engine.tiling.windows import TileGrid, scene_grid, window_affine

NODATA = -9999.0
#: 512 px tiles with 64 px overlap: 1.31x pixels computed per scene pixel instead of 1.78x at 256 px,
#: equally seamless (seam ratio 0.97 vs 1.04); 7.1 vs 4.7 MPix/min on a 2048^2 scene (2 CPU cores,
#: benchmarks/RESULTS.md). :func:`open_scene` shrinks it per scene with ``windows.scene_grid`` when
#: fewer pixels give the same number of windows (1024 px: three windows of 384 px, not of 512).
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64
#: dask: tile rows submitted ahead of the oldest unmerged tile (client memory stays flat)
DASK_ROWS_IN_FLIGHT = 2


class Execution(Enum):
    """Where tiles run: one at a time here, ``--batch-size`` tiles per model call, or dask tasks."""

    IN_PROCESS = "in-process"
    BATCHED = "batched"
    DASK = "dask"


@dataclass(kw_only=True)
class SceneOptions:
    """The options every scene command shares: ``SceneJob`` and ``DiversityJob`` add their own (and
    ``input``, the RGB raster, and ``model``, the bundle, first). Keyword-only, so the commands' own
    fields keep their positions."""

    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    device: str = "cpu"
    scale: float | None = None
    bands: Sequence[int] | None = None
    input_sensor: str = "auto"  # spectral.input_sensors name; auto: the raster's metadata, else a generic camera
    harmonise: str = "auto"  # simulate.harmonise.HARMONISE_MODES: the input's colours mapped onto the model's camera
    extent: str | None = None  # only the tiles and pixels inside are computed and written
    aoi: str | None = None
    keep_grid: bool = False  # --extent/--aoi: write the whole input grid (nodata outside), not the area's window
    workers: int | None = None
    scheduler: str | None = None
    batch_size: int = 1  # tiles per model call (in-process only; see README "What you get")
    strip_width: int = DEFAULT_STRIP_WIDTH  # px merged at a time; memory grows with it (docs/scaling-out.md)
    overwrite: bool = False


def execution_of(job: SceneOptions) -> Execution:
    """The back end the options ask for (checked by :func:`check_run_options`)."""
    if job.workers is not None or job.scheduler is not None:
        return Execution.DASK
    return Execution.BATCHED if job.batch_size > 1 else Execution.IN_PROCESS


def check_run_options(job: SceneOptions) -> None:
    """Refuse contradictory or impossible run options before reading anything."""
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
    resolve_device(job.device)  # unknown device or no GPU: refuse before reading anything


def check_bundle_folder(model: str | Path) -> None:
    """A ``--model`` folder without ``config.json`` is not a bundle: say so before its files are
    searched (an unrelated system folder was reported as possibly holding pickled code)."""
    path = Path(model)
    if path.is_dir() and not (path / "config.json").is_file():
        raise BundleError(f"{path}: is not a model bundle (the folder has no config.json); "
                          "pass a bundle folder or .zip written by 'hyperldm-engine train'")


def prepare_outputs(job: SceneOptions, planned: list[Planned], overwrite: bool,
                    other_inputs: Iterable[str | None] = ()) -> None:
    """Every path the run writes, checked against every input before any work (``io.output_paths``);
    temporaries left by a killed run beside them removed; the bundle folder checked."""
    check_outputs(planned, [job.input, job.model, job.aoi, *other_inputs], overwrite)
    for folder in sorted({p.path.parent for p in planned}):
        clean_stale_temporaries(folder)  # left by a killed run (kill -9, power loss)
    check_bundle_folder(job.model)


@dataclass(frozen=True)
class Area:
    """``--extent``/``--aoi`` on the grid: the pixel mask, the tiles that may hold a selected pixel
    and the bounding window of the selected pixels (the area snapped to the input grid)."""

    mask_fn: AoiMask
    tiles: list[tuple[int, int]]
    window: Window


def _area_of_interest(job: SceneOptions, reader: Any, grid: TileGrid) -> Area | None:
    if not (job.extent or job.aoi):
        return None
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
    touched = [grid.window(i, j) for i, j in tiles]
    c0, r0 = min(int(w.col_off) for w in touched), min(int(w.row_off) for w in touched)
    c1, r1 = max(int(w.col_off + w.width) for w in touched), max(int(w.row_off + w.height) for w in touched)
    window = selected_window(mask, Window(c0, r0, c1 - c0, r1 - r0))
    if window is None:
        raise InputError(f"{what}: selects no pixel of {job.input} (no pixel centre lies inside it)")
    return Area(mask, tiles, window)


def output_window(job: SceneOptions, area: Area | None) -> Window | None:
    """The window of the input grid the outputs cover: the area's pixels (None: the whole grid)."""
    return None if area is None or job.keep_grid else area.window


def _gsd_warning(reader: Any, gsd_m: float | list[float] | None, mode: str) -> None:
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
            trained = f"{lo:g} m" if lo == hi else f"{lo:g}-{hi:g} m"
            report_warning(f"{reader.path}: pixel size {res:g} m is far from the model's training GSD "
                           f"({trained}); results may be less realistic", mode)


@dataclass
class ScenePlan:
    """An opened, checked scene and how its tiles run: what a command's tile function and writers need."""

    job: SceneOptions
    model: dict[str, Any]  # pipeline.synthesize.bundle_summary
    reader: RgbReader
    grid: TileGrid
    statistics: SceneStatistics
    sensor: InputSensorChoice
    area: Area | None
    execution: Execution
    progress_mode: str = "bar"
    #: what the model was given, in words (``simulate.harmonise.Harmonisation.describe``, or "as read")
    model_input: str = "as read"

    @property
    def out_window(self) -> Window | None:
        """The area's pixels snapped to the input grid (None: the whole grid; also with ``--keep-grid``)."""
        return output_window(self.job, self.area)

    @property
    def profile(self) -> dict[str, Any]:
        """The input's profile on the output grid (size and transform of :attr:`out_window`): what
        every output is created ``like``."""
        window = self.out_window
        if window is None:
            return dict(self.reader.profile)
        return {**self.reader.profile, "width": int(window.width), "height": int(window.height),
                "transform": window_affine(window, self.reader.transform)}

    @property
    def rgb_bands(self) -> str:
        return ",".join(map(str, self.reader.bands))

    @property
    def total_tiles(self) -> int:
        return len(self.area.tiles) if self.area is not None else self.grid.n_rows * self.grid.n_cols

    def tags(self, sampling: SamplingOptions, **extra: Any) -> dict[str, Any]:
        """The provenance every output of the run carries (GeoTIFF metadata), then ``extra``."""
        return {"HYPERLDM_ENGINE": __version__, "HYPERLDM_MODEL": Path(self.job.model).name,
                "HYPERLDM_SEED": sampling.seed, "HYPERLDM_SAMPLER": sampling.sampler,
                "HYPERLDM_STEPS": sampling.steps, "HYPERLDM_SAMPLES": sampling.samples,
                "HYPERLDM_RGB_BANDS": self.rgb_bands, "HYPERLDM_RGB_BANDS_FROM": self.reader.band_source,
                "HYPERLDM_MODE": sampling.mode, "HYPERLDM_INPUT_SENSOR": self.sensor.name,
                "HYPERLDM_INPUT_SENSOR_FROM": self.sensor.source,
                "HYPERLDM_RGB_CONSISTENCY": "on" if self.sensor.consistency else "off",
                "HYPERLDM_HARMONISATION": json.dumps(self.statistics.harmonisation),
                "HYPERLDM_MODEL_INPUT": self.model_input, **extra}

    def run(self, tile_fn: Any, outputs: OutputSet, label: str, carry_dir: str | Path,
            reduce: Callable[[TileOutput], None] | None = None) -> RunStats:
        """Stream ``tile_fn`` over the selected tiles into ``outputs`` on this plan's back end.

        ``carry_dir``: where tile parts carried between strips wait (next to the outputs, not in a
        tmpfs /tmp). ``reduce`` receives every computed tile's whole output in merge order.
        """
        plan = TilePlan(self.grid, tiles=None if self.area is None else self.area.tiles,
                        mask_fn=None if self.area is None else self.area.mask_fn,
                        strip_width=self.job.strip_width, carry_dir=carry_dir, out_window=self.out_window)
        with Progress(self.total_tiles, label, mode=self.progress_mode, unit="tile") as progress, \
                ExitStack() as stack:
            if self.execution is Execution.DASK:
                from hyperldm_engine.tiling.dask_runner import DaskBackend, dask_client

                client = stack.enter_context(dask_client(scheduler=self.job.scheduler, n_workers=self.job.workers))
                backend, in_flight = DaskBackend(client), DASK_ROWS_IN_FLIGHT * self.grid.n_cols
            elif self.execution is Execution.BATCHED:  # several tiles per model call, merged in the same order
                from hyperldm_engine.tiling.batching import BatchingBackend

                backend, in_flight = BatchingBackend(tile_fn.batch, self.job.batch_size), self.job.batch_size
            else:
                backend, in_flight = None, 1  # the runner's default: in-process, one tile at a time
            return run_tiles(self.reader, tile_fn, plan, outputs, backend, max_tiles_in_flight=in_flight,
                             progress=progress, reduce=reduce)


@contextmanager
def open_scene(job: SceneOptions, model: dict[str, Any], progress_mode: str = "bar", rgb_consistency: str = "off",
               check_size: Callable[[int], None] | None = None) -> Iterator[ScenePlan]:
    """Open ``job.input`` and plan the run (see the module's docstring); the raster stays open inside.

    GDAL's block cache is bounded (``GDAL_CACHEMAX`` in GDAL's units, default 64 MB) so that memory
    stays flat in scene size: by default GDAL may cache 5 % of RAM, which grows with the output it
    has written. ``check_size(pixels)`` runs as soon as the output's size is known (free space),
    before the statistics pass.
    """
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_bytes(os.environ.get("GDAL_CACHEMAX"))), \
            open_rgb(job.input, bands=job.bands, scale=job.scale) as reader:
        grid = scene_grid(reader.width, reader.height, job.tile, job.overlap, align=model["factor"])
        area = _area_of_interest(job, reader, grid)
        if check_size is not None:
            window = output_window(job, area)
            check_size(reader.width * reader.height if window is None else int(window.width * window.height))
        sensor = choose_input_sensor(job.input, job.input_sensor, rgb_consistency, model["wavelengths_nm"],
                                     model["fwhm_nm"])
        tags = reader.ds.tags()
        harmonise = choose_harmonisation(job.harmonise, sensor.name, sensor.source, tags, model.get("training_camera"),
                                         model["wavelengths_nm"], model["fwhm_nm"],
                                         keep_haze=sensor.consistency and haze_left_to_anchor(job, tags, model))
        statistics = scene_statistics(reader, harmonisation=harmonise and harmonise.as_list())
        for note in statistics.warnings:
            report_warning(note, progress_mode)
        _gsd_warning(reader, model["gsd_m"], progress_mode)
        bands = ",".join(map(str, reader.bands))
        report_info(f"{job.input}: R,G,B from bands {bands} ({reader.band_source})", progress_mode)
        model_input = harmonise.describe() if harmonise else "as read"
        report_info(f"{job.input}: input sensor {sensor.name} (from {sensor.source}); RGB consistency "
                    f"{'on' if sensor.consistency else 'off'}; model input {model_input}", progress_mode)
        yield ScenePlan(job, model, reader, grid, statistics, sensor, area, execution_of(job), progress_mode,
                        model_input)

