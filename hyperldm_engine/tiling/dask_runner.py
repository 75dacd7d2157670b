"""The same tile function as tasks on a dask.distributed cluster, with one writer on the client.

The client reads each window, submits ``tile_fn(request)`` as a task, and merges results in the
same fixed order as :func:`~hyperldm_engine.tiling.runner.run_tiles` (so the output is
bit-identical), writing finished row blocks itself. At most ``max_rows_in_flight`` tile rows are
submitted ahead of the oldest unmerged tile, so client memory is flat in scene size. ``tile_fn``
travels by pickle: make it a top-level function or a small dataclass that loads heavy state (the
model bundle) lazily and caches it in the worker process.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import ExitStack
from typing import Any

from hyperldm_engine.errors import ResourceError
from hyperldm_engine.progress import Progress
from hyperldm_engine.tiling.runner import (
    DEFAULT_STRIP_WIDTH,
    MaskFn,
    OutputSet,
    RunStats,
    TileFn,
    TileOutput,
    TilePlan,
    TileRequest,
    stream_tiles,
)
from hyperldm_engine.tiling.windows import TileGrid


def _run_tile(tile_fn: TileFn, request: TileRequest) -> TileOutput:
    """The task body (top level so that workers can unpickle it)."""
    return tile_fn(request)


class DaskBackend:
    """Submits tiles to a ``distributed.Client`` with ``retries`` for failed tasks."""

    def __init__(self, client: Any, retries: int = 2) -> None:
        self.client = client
        self.retries = retries
        self._count = 0

    def submit(self, fn: TileFn, request: TileRequest) -> Any:
        self._count += 1
        key = f"hyperldm-tile-{request.row}-{request.col}-{id(self):x}-{self._count}"
        return self.client.submit(_run_tile, fn, request, key=key, retries=self.retries, pure=False)

    def wait_any(self, handles: list[Any]) -> Collection[Any]:
        from distributed import wait

        with self.client.as_current():  # wait() uses the current client, not necessarily ours
            return wait(handles, return_when="FIRST_COMPLETED").done

    def result(self, handle: Any) -> TileOutput:
        value = handle.result()
        handle.release()
        return value

    def cancel(self, handles: list[Any]) -> None:
        with contextlib.suppress(Exception):  # the client may already be closing after an interrupt
            self.client.cancel(handles)


#: dask's nannies export MALLOC_TRIM_THRESHOLD_=65536 to their workers. Setting it at all turns off
#: glibc's dynamic mmap threshold, so every activation tensor above 128 KiB is mmap'ed and
#: page-faulted afresh: the default model's tiles ran 1.5x slower in a worker than in-process
#: (0.94 vs 0.61 s, one thread each; benchmarks/RESULTS.md, "Dask"). None unsets it for our workers.
WORKER_ENVIRONMENT_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_client(n_workers: int, processes: bool = True, memory_limit: str | float | None = "auto") -> Any:
    """A quiet ``LocalCluster`` client: ``n_workers`` processes, one thread each, no dashboard.

    Task errors reach the caller as exceptions, so worker logs are silenced below CRITICAL; the
    scheduler's small HTTP server takes a free port (":0") rather than warning about 8787. Workers
    keep glibc's default allocator tuning (see ``WORKER_ENVIRONMENT_CONFIG``).
    """
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(WORKER_ENVIRONMENT_CONFIG):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                               dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                               silence_logs=logging.CRITICAL, memory_limit=memory_limit)
    return Client(cluster, set_as_default=False)


@contextlib.contextmanager
def dask_client(*, client: Any = None, scheduler: str | None = None, n_workers: int | None = None,
                processes: bool = True) -> Iterator[Any]:
    """Exactly one of ``client`` (a ``distributed.Client``, left open), ``scheduler`` (an address such
    as ``tcp://10.0.0.5:8786``, connected and closed) or ``n_workers`` (a local cluster of that many
    single-threaded worker processes, closed afterwards)."""
    given = sum(x is not None for x in (client, scheduler, n_workers))
    if given != 1:
        raise ValueError("give exactly one of client, scheduler or n_workers")
    with ExitStack() as stack:
        if client is None:
            if scheduler is not None:
                from distributed import Client

                try:
                    client = Client(scheduler, set_as_default=False, timeout=30)
                except OSError as exc:
                    raise ResourceError(f"dask scheduler {scheduler}: cannot connect ({exc})") from exc
            else:
                if int(n_workers) < 1:
                    raise ValueError(f"n_workers must be >= 1, got {n_workers}")
                client = local_client(int(n_workers), processes=processes)
                stack.callback(client.cluster.close)
            stack.callback(client.close)
        yield client


def run_tiles_dask(reader: Any, writer: Any, tile_fn: TileFn, grid: TileGrid,
                   out_bands: int | Mapping[str, int], nodata: float, *, client: Any = None,
                   scheduler: str | None = None, n_workers: int | None = None,
                   processes: bool = True, progress: Progress | None = None,
                   mask_fn: MaskFn | None = None, max_rows_in_flight: int = 2, retries: int = 2,
                   tiles: Collection[tuple[int, int]] | None = None,
                   strip_width: int | None = DEFAULT_STRIP_WIDTH, carry_dir: str | None = None) -> RunStats:
    """:func:`~hyperldm_engine.tiling.runner.run_tiles` with tiles computed as dask tasks on the
    cluster of :func:`dask_client`; identical output.

    A task that raises is retried ``retries`` times; a task whose worker dies is rescheduled by dask
    (up to ``distributed.scheduler.allowed-failures``).
    """
    with dask_client(client=client, scheduler=scheduler, n_workers=n_workers, processes=processes) as dask:
        return stream_tiles(reader, tile_fn, TilePlan(grid, tiles, mask_fn, strip_width, carry_dir),
                            OutputSet.of(writer, out_bands, nodata), DaskBackend(dask, retries=retries),
                            max_tiles_in_flight=max(1, int(max_rows_in_flight)) * grid.n_cols, progress=progress)
