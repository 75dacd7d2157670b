"""The same tile function as tasks on a dask.distributed cluster, with one writer on the client.

:class:`DaskBackend` is a back end of :func:`~hyperldm_engine.tiling.runner.run_tiles`: the client
reads each window, submits ``tile_fn(request)`` as a task, and merges results in the runner's fixed
order (so the output is bit-identical), writing finished row blocks itself. The runner's
``max_tiles_in_flight`` bounds the tiles submitted ahead of the oldest unmerged one, so client
memory is flat in scene size; :func:`dask_client` opens and closes the cluster. ``tile_fn``
travels by pickle: make it a top-level function or a small dataclass that loads heavy state (the
model bundle) lazily and caches it in the worker process.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator
from contextlib import ExitStack
from typing import Any

from hyperldm_engine.errors import ResourceError
from hyperldm_engine.tiling.runner import TileFn, TileOutput, TileRequest


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

