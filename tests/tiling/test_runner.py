"""Streaming runner: exact identity, nodata skipping, named outputs, order, interruption."""

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hyperldm_engine.errors import Interrupted
from hyperldm_engine.tiling.runner import ExecutorBackend, OutputSet, TilePlan, run_tiles
from hyperldm_engine.tiling.windows import tile_grid

from .fakes import ArrayReader, ArrayWriter, LinearTile, TwoOutputTile, linear_reference

EPS32 = np.finfo(np.float32).eps


def _scene(h=70, w=90, seed=1):
    return np.random.default_rng(seed).uniform(0.02, 0.9, (3, h, w)).astype(np.float32)


class Counting:
    def __init__(self, fn):
        self.fn, self.calls, self.lock = fn, [], threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.calls.append((request.row, request.col))
        return self.fn(request)


class RecordingProgress:
    def __init__(self):
        self.steps = []

    def advance(self, n=1.0, message=None, **postfix):
        self.steps.append((n, message, postfix))


@pytest.mark.parametrize("tile,overlap", [(32, 8), (16, 12), (24, 0), (128, 16)])
def test_linear_model_is_exact_through_tiling(tile, overlap):
    rgb = _scene()
    reader, writer = ArrayReader(rgb), ArrayWriter(5, 70, 90)
    grid = tile_grid(90, 70, tile, overlap, align=4)
    stats = run_tiles(reader, LinearTile(), TilePlan(grid), OutputSet.of(writer, 5, -1.0))
    np.testing.assert_allclose(writer.data, linear_reference(rgb), rtol=8 * EPS32, atol=1e-7)
    assert stats.computed == len(grid) and stats.skipped == 0
    rows = [(w.row_off, w.height) for w in writer.windows]
    assert rows[0][0] == 0 and all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(rows))
    assert rows[-1][0] + rows[-1][1] == 70, "row blocks written once each, in order, covering the scene"


def test_all_nodata_tiles_are_not_computed_and_output_nodata():
    rgb = _scene()
    mask = np.ones((70, 90), bool)
    mask[:, :50] = False          # the left tiles see no valid pixel
    mask[60:, 80:] = False
    grid = tile_grid(90, 70, 32, 8, align=4)
    fn = Counting(LinearTile())
    reader, writer = ArrayReader(rgb, mask), ArrayWriter(5, 70, 90)
    stats = run_tiles(reader, fn, TilePlan(grid), OutputSet.of(writer, 5, -9999.0))
    expected_calls = [(i, j) for i, j, w in grid if mask[w.toslices()].any()]
    assert sorted(fn.calls) == sorted(expected_calls) and len(expected_calls) < len(grid)
    assert stats.skipped == len(grid) - len(expected_calls)
    assert np.all(writer.data[:, ~mask] == -9999.0)
    expected = linear_reference(rgb)[:, mask]
    np.testing.assert_allclose(writer.data[:, mask], expected, rtol=8 * EPS32, atol=1e-7)


def test_named_outputs_go_to_their_writers():
    rgb = _scene(40, 50)
    grid = tile_grid(50, 40, 16, 4, align=4)
    writers = {"hsi": ArrayWriter(5, 40, 50), "abundances": ArrayWriter(2, 40, 50)}
    run_tiles(ArrayReader(rgb), TwoOutputTile(), TilePlan(grid),
              OutputSet.of(writers, {"hsi": 5, "abundances": 2}, 0.0))
    np.testing.assert_allclose(writers["hsi"].data, linear_reference(rgb), rtol=8 * EPS32, atol=1e-7)
    np.testing.assert_allclose(writers["abundances"].data, 2 * rgb[:2], rtol=8 * EPS32, atol=1e-7)


def test_thread_pool_output_is_bit_identical():
    rgb = _scene()
    grid = tile_grid(90, 70, 16, 4, align=4)
    a, b = ArrayWriter(5, 70, 90), ArrayWriter(5, 70, 90)
    run_tiles(ArrayReader(rgb), LinearTile(), TilePlan(grid), OutputSet.of(a, 5, -1.0))
    with ThreadPoolExecutor(3) as pool:
        run_tiles(ArrayReader(rgb), LinearTile(), TilePlan(grid), OutputSet.of(b, 5, -1.0), ExecutorBackend(pool),
                  max_tiles_in_flight=2 * grid.n_cols)
    np.testing.assert_array_equal(a.data, b.data)


def test_latent_origin_and_request_geometry():
    grid = tile_grid(90, 70, 32, 8, align=4)
    seen = []

    def fn(req):
        seen.append(req)
        assert req.rgb.shape == (3, req.window.height, req.window.width)
        return LinearTile()(req)

    reader = ArrayReader(_scene())
    run_tiles(reader, fn, TilePlan(grid), OutputSet.of(ArrayWriter(5, 70, 90), 5, -1.0))
    for req in seen:
        assert req.latent_origin == (req.window.row_off // 4, req.window.col_off // 4)
        assert req.transform.c == reader.transform.c + 10.0 * req.window.col_off


def test_progress_per_tile_with_mpix_rate():
    grid = tile_grid(90, 70, 32, 8, align=4)
    progress = RecordingProgress()
    run_tiles(ArrayReader(_scene()), LinearTile(), TilePlan(grid), OutputSet.of(ArrayWriter(5, 70, 90), 5, -1.0),
              progress=progress)
    assert len(progress.steps) == len(grid)
    assert all(s[2]["MPix/s"] >= 0 for s in progress.steps)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Interrupted])
def test_interruption_propagates(exc):
    grid = tile_grid(90, 70, 16, 4, align=4)

    def fn(req):
        if req.row == 2:
            raise exc("stop") if exc is Interrupted else exc()
        return LinearTile()(req)

    writer = ArrayWriter(5, 70, 90)
    with pytest.raises(exc):
        run_tiles(ArrayReader(_scene()), fn, TilePlan(grid), OutputSet.of(writer, 5, -1.0))
    assert all(w.row_off + w.height <= grid.row_starts[2] for w in writer.windows)


def test_wrong_output_shape_is_reported():
    grid = tile_grid(40, 40, 16, 4, align=4)
    with pytest.raises(ValueError, match="shape"):
        run_tiles(ArrayReader(_scene(40, 40)), lambda r: r.rgb, TilePlan(grid),
                  OutputSet.of(ArrayWriter(5, 40, 40), 5, -1.0))


def test_block_aligned_flushes_and_bounded_band():
    class Blocked(ArrayWriter):
        block_height = 32

    grid = tile_grid(90, 200, 24, 8, align=4)
    writer = Blocked(5, 200, 90)
    stats = run_tiles(ArrayReader(_scene(200, 90)), LinearTile(), TilePlan(grid), OutputSet.of(writer, 5, -1.0))
    assert all(w.row_off % 32 == 0 for w in writer.windows)
    assert all(w.height % 32 == 0 for w in writer.windows[:-1])
    # band of rows in flight never exceeds one tile + one block (+ align) high, 5 + 1 float32 planes + mask
    assert stats.peak_accumulator_bytes <= (24 + 32 + 4) * 90 * (6 * 4 + 1)


class ShuffledBackend:
    """Completes submitted tiles in a random order; records how many were in flight."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.max_in_flight = 0

    class Handle:
        def __init__(self, fn, request):
            self.fn, self.request, self.value = fn, request, None

    def submit(self, fn, request):
        return self.Handle(fn, request)

    def wait_any(self, handles):
        self.max_in_flight = max(self.max_in_flight, len(handles))
        pick = handles[int(self.rng.integers(len(handles)))]
        pick.value = pick.fn(pick.request)
        return [pick]

    def result(self, handle):
        return handle.value

    def cancel(self, handles):
        pass


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_completion_order_does_not_change_output_and_in_flight_is_bounded(seed):
    rgb = _scene()
    grid = tile_grid(90, 70, 16, 4, align=4)
    reference, out = ArrayWriter(5, 70, 90), ArrayWriter(5, 70, 90)
    run_tiles(ArrayReader(rgb), LinearTile(), TilePlan(grid), OutputSet.of(reference, 5, -1.0))
    backend = ShuffledBackend(seed)
    limit = 2 * grid.n_cols
    run_tiles(ArrayReader(rgb), LinearTile(), TilePlan(grid), OutputSet.of(out, 5, -1.0), backend,
              max_tiles_in_flight=limit)
    np.testing.assert_array_equal(out.data, reference.data)
    assert backend.max_in_flight == limit
