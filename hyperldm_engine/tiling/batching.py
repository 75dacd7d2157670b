"""A runner back end that runs several tiles per model call (``--batch-size``).

The runner submits tiles one by one and waits for the oldest one it has not merged yet. This back
end only queues on ``submit``; ``wait_any`` then runs everything queued through one ``batch_fn``
call per chunk of at most ``batch_size`` tiles of the same shape (a batch must stack, and edge tiles
can be smaller when the raster is smaller than a tile). The runner still merges in row-major order,
so the output equals the unbatched run up to the float rounding of batched convolutions.

Use as ``run_tiles(reader, fn, plan, outputs, BatchingBackend(fn.batch, n), max_tiles_in_flight=n)``
so that the runner hands over up to ``n`` tiles before it waits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hyperldm_engine.tiling.runner import TileFn, TileOutput, TileRequest

BatchFn = Callable[[list[TileRequest]], Sequence[TileOutput]]


class _Handle:
    """One submitted tile: its request until it has run, then its output."""

    __slots__ = ("done", "request", "value")

    def __init__(self, request: TileRequest) -> None:
        self.request: TileRequest | None = request
        self.value: TileOutput | None = None
        self.done = False


def _shape(request: TileRequest) -> tuple[int, int]:
    return int(request.window.height), int(request.window.width)


class BatchingBackend:
    """In-process back end that runs queued tiles in batches of ``batch_size`` through ``batch_fn``.

    ``batch_fn(requests) -> outputs`` must return one output per request, in order, each equal to
    what the runner's tile function returns for that request alone (the ``fn`` given to ``submit``
    is not called; it is the same computation one tile at a time).
    """

    def __init__(self, batch_fn: BatchFn, batch_size: int) -> None:
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch size must be a positive integer, got {batch_size}")
        self.batch_fn = batch_fn
        self.batch_size = int(batch_size)
        self._queue: list[_Handle] = []
        self.batch_sizes: list[int] = []  # sizes of the batch_fn calls made, for tests and benchmarks

    def submit(self, fn: TileFn, request: TileRequest) -> _Handle:
        handle = _Handle(request)
        self._queue.append(handle)
        return handle

    def wait_any(self, handles: list[_Handle]) -> list[_Handle]:
        """Run all queued tiles (grouped by shape, chunks of ``batch_size``); the handles now done."""
        self._run_queue()
        done = [h for h in handles if h.done]
        if handles and not done:
            raise RuntimeError("BatchingBackend.wait_any: none of the handles was submitted to this back end")
        return done

    def result(self, handle: _Handle) -> TileOutput:
        if not handle.done:
            raise RuntimeError("BatchingBackend.result: the tile has not run yet; call wait_any first")
        assert handle.value is not None
        return handle.value

    def cancel(self, handles: list[_Handle]) -> None:
        drop = {id(h) for h in handles}
        self._queue = [h for h in self._queue if id(h) not in drop]
        for h in handles:
            h.request = None

    def _run_queue(self) -> None:
        groups: dict[tuple[int, int], list[_Handle]] = {}
        for h in self._queue:  # dicts keep insertion order: the oldest tile's group runs first
            assert h.request is not None
            groups.setdefault(_shape(h.request), []).append(h)
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                requests = [h.request for h in chunk]
                outputs = list(self.batch_fn(requests))  # type: ignore[arg-type]
                if len(outputs) != len(chunk):
                    raise ValueError(f"batch function returned {len(outputs)} outputs for {len(chunk)} tiles")
                self.batch_sizes.append(len(chunk))
                ran = {id(h) for h in chunk}
                self._queue = [h for h in self._queue if id(h) not in ran]
                for h, out in zip(chunk, outputs, strict=True):
                    h.value, h.done, h.request = out, True, None
