"""Streaming tile runner: read a window, run the tile function, merge, write finished blocks.

The scene is cut into vertical strips (about 1024 px, whole output blocks); each strip is merged
top to bottom, keeping only the accumulators of its band of rows still in flight (about a tile
plus an output block high, one strip wide), so memory grows neither with the scene's height nor
with its width. Tile parts overhanging into the next strip wait on disk (:mod:`.carry`). Tiles are
merged in a fixed order whatever order they finish in, and carried parts are added back in that
order, so the output is bit-identical for the in-process, thread-pool and dask back ends and for
any strip width. Tiles without a valid pixel (nodata, outside the area of interest) are never
computed.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from affine import Affine
from rasterio.windows import Window

from hyperldm_engine.progress import Progress
from hyperldm_engine.tiling.blend import RowBandAccumulator, TileWeights, weighted_parts
from hyperldm_engine.tiling.carry import CarryPiece, CarryStore, split_at
from hyperldm_engine.tiling.memory import release_free_memory
from hyperldm_engine.tiling.windows import Strip, TileGrid, plan_strips, window_affine

#: Accumulators span strips of about this many pixels (rounded up to whole output blocks), so that
#: memory does not grow with the scene's width: 1024 px x (512 px tile + 512 rows of output block)
#: x (48 bands + weight) x 4 bytes ~ 210 MB per sample. Narrower strips only carry more overhang
#: through the disk (up to a tile's width per strip edge, written and read once), never more
#: computation.
DEFAULT_STRIP_WIDTH = 1024


@dataclass(frozen=True)
class TileRequest:
    """Everything a tile function needs: pixels, validity and where the tile sits in the scene.

    ``rgb`` is (3, h, w) float32, ``mask`` (h, w) bool (True = valid input pixel), ``row``/``col``
    the grid indices, ``latent_row0``/``latent_col0`` the tile's origin on the scene's latent grid
    (pixel offset // align) for indexing the scene-level noise field, ``transform`` the window's
    affine georeference (None when the reader has none), ``area`` (h, w) bool the pixels of an area
    of interest (None: all). A tile sees every valid input pixel whatever the area, so its values
    are those of a whole-scene run; only :attr:`written` pixels are merged and written.
    """

    window: Window
    rgb: np.ndarray
    mask: np.ndarray
    row: int
    col: int
    latent_row0: int
    latent_col0: int
    align: int
    transform: Affine | None = None
    area: np.ndarray | None = None

    @property
    def written(self) -> np.ndarray:
        """The pixels that reach the outputs: valid and inside the area of interest."""
        return self.mask if self.area is None else self.mask & self.area

    @property
    def latent_origin(self) -> tuple[int, int]:
        return self.latent_row0, self.latent_col0


TileOutput = np.ndarray | Mapping[str, np.ndarray]
TileFn = Callable[[TileRequest], TileOutput]
MaskFn = Callable[[Window], np.ndarray]


class Backend(Protocol):
    """Where tile functions run: in-process, a concurrent.futures executor, or a dask cluster."""

    def submit(self, fn: TileFn, request: TileRequest) -> Any: ...

    def wait_any(self, handles: list[Any]) -> Collection[Any]: ...

    def result(self, handle: Any) -> TileOutput: ...

    def cancel(self, handles: list[Any]) -> None: ...


class _Done:
    __slots__ = ("value",)

    def __init__(self, value: TileOutput) -> None:
        self.value = value


class InProcessBackend:
    """Runs each tile at once in the calling thread."""

    def submit(self, fn: TileFn, request: TileRequest) -> _Done:
        return _Done(fn(request))

    def wait_any(self, handles: list[_Done]) -> list[_Done]:
        return handles

    def result(self, handle: _Done) -> TileOutput:
        return handle.value

    def cancel(self, handles: list[_Done]) -> None:
        return None


class ExecutorBackend:
    """Runs tiles on a ``concurrent.futures.Executor`` (e.g. threads overlapping I/O and a GPU)."""

    def __init__(self, executor: cf.Executor) -> None:
        self.executor = executor

    def submit(self, fn: TileFn, request: TileRequest) -> cf.Future:
        return self.executor.submit(fn, request)

    def wait_any(self, handles: list[cf.Future]) -> Collection[cf.Future]:
        return cf.wait(handles, return_when=cf.FIRST_COMPLETED).done

    def result(self, handle: cf.Future) -> TileOutput:
        return handle.result()

    def cancel(self, handles: list[cf.Future]) -> None:
        for h in handles:
            h.cancel()


@dataclass(frozen=True)
class TilePlan:
    """Where tiles are and which of them run: the grid, the tiles to compute (None: all), a pixel
    mask such as an AOI (None: every valid input pixel), the strip width (None: one strip), the
    folder where tile parts carried between strips wait (None: the system's temporary folder) and
    the window of the grid the writers hold (None: the whole grid; else each flushed block is
    cropped to it and written at its offset in the window, whose blocks the flushes then fill)."""

    grid: TileGrid
    tiles: Collection[tuple[int, int]] | None = None
    mask_fn: MaskFn | None = None
    strip_width: int | None = DEFAULT_STRIP_WIDTH
    carry_dir: str | Path | None = None
    out_window: Window | None = None


@dataclass(frozen=True)
class OutputSet:
    """What a run writes: writers by output name (``None``: the one output of a tile function that
    returns an array), the band count of each, and the value written where no pixel is valid."""

    writers: Mapping[str | None, Any]
    bands: Mapping[str | None, int]
    nodata: float

    @classmethod
    def of(cls, writer: Any, out_bands: int | Mapping[str, int] | None, nodata: float) -> OutputSet:
        """From one writer and a band count, or mappings name -> writer and name -> band count; ``out_bands``
        None: each writer's ``.count`` (``HsiWriter``)."""
        writers = dict(writer) if isinstance(writer, Mapping) else {None: writer}
        if out_bands is None:
            out_bands = {name: int(w.count) for name, w in writers.items()}
        bands = dict(out_bands) if isinstance(out_bands, Mapping) else {None: int(out_bands)}
        if set(writers) != set(bands):
            raise ValueError(f"writers {sorted(map(str, writers))} and "
                             f"out_bands {sorted(map(str, bands))} differ")
        return cls(writers, bands, float(nodata))


@dataclass
class RunStats:
    """What a run did: tiles computed and skipped, seconds, the largest accumulator and the bytes
    carried between strips on disk."""

    computed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    peak_accumulator_bytes: int = 0
    pixels_computed: int = 0
    strips: int = 1
    carried_bytes: int = 0

    @property
    def mpix_per_s(self) -> float:
        return self.pixels_computed / 1e6 / max(self.seconds, 1e-9)


def _block_shape(writers: Mapping[str | None, Any]) -> tuple[int, int]:
    """(rows, columns) per output block, so that flushes fill whole compressed blocks (1 when unknown).

    Looks for ``writer.block_height``/``block_width``, then a tiled ``blockysize``/``blockxsize`` in
    ``writer.profile`` or ``writer.creation_profile()`` (HsiWriter); an untiled profile's blocks are
    whole rows. A partially written compressed block would be compressed twice and stored twice.
    """
    rows = cols = 1
    for w in writers.values():
        h, wd = getattr(w, "block_height", None), getattr(w, "block_width", None)
        if h is None:
            profile = getattr(w, "profile", None)
            if profile is None and callable(getattr(w, "creation_profile", None)):
                profile = w.creation_profile()
            profile = profile or {}
            tiled = str(profile.get("tiled", "")).lower() in ("true", "yes", "1")
            h = profile.get("blockysize") if tiled else None
            # an untiled (striped) file stores whole rows: one strip of the scene's full width, or
            # each vertical strip would rewrite every row strip of the file
            wd = profile.get("blockxsize") if tiled else profile.get("width")
        if h:
            rows = int(np.lcm(rows, int(h)))
        if wd:
            cols = int(np.lcm(cols, int(wd)))
    return rows, cols


def _as_outputs(result: TileOutput, bands: Mapping[str | None, int], window: Window,
                grid_index: tuple[int, int]) -> dict[str | None, np.ndarray]:
    h, w = int(window.height), int(window.width)
    if isinstance(result, Mapping):
        if None in bands:
            raise ValueError(f"tile {grid_index}: tile function returned a mapping but one writer was given")
        missing = set(bands) - set(result)
        if missing:
            raise ValueError(f"tile {grid_index}: tile function did not return outputs {sorted(missing)}")
        items = {k: result[k] for k in bands}
    else:
        if None not in bands:
            raise ValueError(f"tile {grid_index}: tile function returned one array; expected {sorted(bands)}")
        items = {None: result}
    out = {}
    for name, arr in items.items():
        arr = np.asarray(arr, dtype=np.float32)
        if arr.shape != (bands[name], h, w):
            label = "" if name is None else f" {name!r}"
            raise ValueError(f"tile {grid_index}: output{label} has shape {arr.shape}, "
                             f"expected {(bands[name], h, w)}")
        out[name] = arr
    return out


def _tile_order(strips: list[Strip], n_rows: int) -> list[tuple[int, int, int]]:
    """``(strip, i, j)`` in merge order: strip by strip, each top to bottom, each row left to right."""
    return [(s, i, j) for s, strip in enumerate(strips) for i in range(n_rows) for j in strip.tile_cols]


def run_tiles(reader: Any, tile_fn: TileFn, plan: TilePlan, outputs: OutputSet, backend: Backend | None = None,
              *, max_tiles_in_flight: int = 1, progress: Progress | None = None, flush_align: int | None = None,
              reduce: Callable[[TileOutput], None] | None = None) -> RunStats:
    """The one tile loop of every back end: ``tile_fn`` over ``plan`` on ``reader``'s pixels into ``outputs``.

    ``reader``: ``.width .height [.transform] .read(window) -> (rgb (3,h,w) float32, mask (h,w) bool)``;
    each writer of ``outputs``: ``.write(array (C,h,w), window)``. ``backend``: where tiles run
    (default :class:`InProcessBackend`: one at a time in this thread; :class:`ExecutorBackend`,
    ``tiling.batching.BatchingBackend``, ``tiling.dask_runner.DaskBackend``). Output is
    ``outputs.nodata`` where the input mask (and ``plan.mask_fn``) is False; tiles without a valid
    pixel, and tiles not in ``plan.tiles`` when given, are not computed. KeyboardInterrupt and
    ``Interrupted`` propagate (pending work is cancelled).

    Splits the scene into vertical strips about ``plan.strip_width`` pixels wide (see
    :func:`~hyperldm_engine.tiling.windows.plan_strips`) and, strip by strip, reads tiles top to
    bottom, submits at most ``max_tiles_in_flight`` ahead of the oldest unmerged one, merges results
    in that fixed order and writes each finished band of rows. Parts of tiles that overhang into
    the next strip wait in a :class:`~hyperldm_engine.tiling.carry.CarryStore` under
    ``plan.carry_dir``. Memory is one strip's band of rows, whatever the scene's width or height,
    and the output is bit-identical for any strip width, back end or worker count. ``reduce``, when
    given, receives each computed tile's whole output in that same merge order (values that are not
    rasters, e.g. per-tile candidates, folded on this side of any cluster). ``progress`` advances
    once per tile of ``plan.tiles`` (all tiles when None).
    """
    backend = InProcessBackend() if backend is None else backend
    grid, writers, bands, nodata = plan.grid, outputs.writers, outputs.bands, outputs.nodata
    tiles, mask_fn = plan.tiles, plan.mask_fn
    if (reader.width, reader.height) != (grid.width, grid.height):
        raise ValueError(f"grid is {grid.width}x{grid.height} "
                         f"but the input is {reader.width}x{reader.height}")
    block_rows, block_cols = _block_shape(writers)
    align_rows = flush_align or block_rows
    out = plan.out_window or Window(0, 0, grid.width, grid.height)
    out_r0, out_c0 = int(out.row_off), int(out.col_off)
    strips = plan_strips(grid, plan.strip_width, block_cols, origin=out_c0)
    # the tallest band in flight: a tile row plus the rows held back to fill whole output blocks
    band_rows = min(grid.height, max(grid.row_sizes) + align_rows)
    weights = TileWeights(grid)
    base_transform = getattr(reader, "transform", None)
    wanted = None if tiles is None else {tuple(t) for t in tiles}
    order = _tile_order(strips, grid.n_rows)
    n = len(order)
    n_wanted = n if wanted is None else sum((i, j) in wanted for _, i, j in order)
    done = 0
    limit = max(1, int(max_tiles_in_flight))
    stats = RunStats(strips=len(strips))
    t0 = time.perf_counter()

    def sink(name: str | None, block: np.ndarray, window: Window) -> None:
        """Write the part of ``block`` (at ``window`` of the grid) inside ``out``, at its offset there."""
        r0, c0 = max(int(window.row_off), out_r0), max(int(window.col_off), out_c0)
        r1 = min(int(window.row_off + window.height), out_r0 + int(out.height))
        c1 = min(int(window.col_off + window.width), out_c0 + int(out.width))
        if r1 > r0 and c1 > c0:
            part = block[:, r0 - int(window.row_off):r1 - int(window.row_off), c0 - int(window.col_off):
                         c1 - int(window.col_off)]
            writers[name].write(part, window=Window(c0 - out_c0, r0 - out_r0, c1 - c0, r1 - r0))

    pending: dict[Any, int] = {}
    masks: dict[int, np.ndarray | None] = {}   # None: skipped
    ready: dict[int, TileOutput] = {}
    next_submit = next_merge = 0
    acc: RowBandAccumulator | None = None
    carry = CarryStore(plan.carry_dir) if len(strips) > 1 else None
    try:
        while next_merge < n:
            while next_submit < n and next_submit - next_merge < limit:
                _, i, j = order[next_submit]
                window = grid.window(i, j)
                masks[next_submit] = None
                if wanted is None or (i, j) in wanted:
                    area = None if mask_fn is None else np.asarray(mask_fn(window), bool)
                    if area is None or area.any():
                        rgb, mask = reader.read(window)
                        r0, c0 = grid.latent_origin(i, j)
                        request = TileRequest(
                            window=window, rgb=rgb, mask=np.asarray(mask, bool), row=i, col=j, latent_row0=r0,
                            latent_col0=c0, align=grid.align, area=area,
                            transform=None if base_transform is None else window_affine(window, base_transform))
                        if request.written.any():
                            masks[next_submit] = request.written
                            pending[backend.submit(tile_fn, request)] = next_submit
                next_submit += 1
            k = next_merge
            if masks[k] is not None and k not in ready:
                for handle in backend.wait_any(list(pending)):
                    ready[pending.pop(handle)] = backend.result(handle)
                continue
            s, i, j = order[k]
            strip = strips[s]
            if i == 0 and j == strip.tile_cols[0]:
                acc = RowBandAccumulator(strip.width, bands, nodata, col0=strip.col0, capacity_rows=band_rows)
            if j == strip.tile_cols[0] and carry is not None:
                for piece in carry.take(s, i):
                    acc.add_weighted(piece.window, piece.num, piece.den, piece.valid)
            window = grid.window(i, j)
            mask = masks.pop(k)
            if mask is None:
                stats.skipped += 1
            else:
                result = ready.pop(k)
                _merge(acc, carry, s, i, window, weights(i, j), _as_outputs(result, bands, window, (i, j)), mask)
                if reduce is not None:
                    reduce(result)
                stats.computed += 1
                stats.pixels_computed += int(window.width * window.height)
            stats.peak_accumulator_bytes = max(stats.peak_accumulator_bytes, acc.nbytes)
            next_merge += 1
            if j == strip.tile_cols[-1]:
                upto = _flush_row(grid.row_starts[i + 1] if i + 1 < grid.n_rows else grid.height,
                                  grid.height, out_r0, align_rows)
                acc.flush(upto, sink)
                release_free_memory()
            if progress is not None and (wanted is None or (i, j) in wanted):
                done += 1
                elapsed = time.perf_counter() - t0
                progress.advance(1, message=f"tile {done}/{n_wanted}",
                                 **{"MPix/s": round(stats.pixels_computed / 1e6 / max(elapsed, 1e-9), 3)})
    finally:
        if pending:
            backend.cancel(list(pending))
        if carry is not None:
            stats.carried_bytes = carry.bytes_written
            carry.close()
    stats.seconds = time.perf_counter() - t0
    return stats


def _flush_row(next_row: int, height: int, out_row0: int, align_rows: int) -> int:
    """Rows above ``next_row`` (the next tile row's first) are final; flush them down to a whole
    output block counted from the output's first row ``out_row0`` (rows above it are not written)."""
    if next_row >= height or next_row <= out_row0:
        return next_row
    return out_row0 + (next_row - out_row0) // align_rows * align_rows


def _merge(acc: RowBandAccumulator, carry: CarryStore | None, strip: int, row: int, window: Window,
           weight: np.ndarray, outputs: Mapping[str | None, np.ndarray], mask: np.ndarray) -> None:
    """Add a tile to its strip's accumulator; the part past the strip's right edge goes to ``carry``."""
    left, right, cut = split_at(window, acc.col0 + acc.width)
    if right is None:
        acc.add(window, weight, outputs, mask)
        return
    if carry is None:
        raise ValueError(f"tile {window} overhangs the last strip")
    sums, wm = weighted_parts(outputs, weight, mask)
    if left is not None:
        acc.add_weighted(left, {k: v[:, :, :cut] for k, v in sums.items()}, wm[:, :cut], mask[:, :cut])
    carry.put(strip, row, CarryPiece(right, {k: v[:, :, cut:] for k, v in sums.items()}, wm[:, cut:],
                                     mask[:, cut:]))

