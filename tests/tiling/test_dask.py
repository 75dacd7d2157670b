"""dask.distributed runner: identical output to in-process, retries, killed workers."""

import sys
import time

import cloudpickle
import numpy as np
import pytest

from hyperldm_engine.tiling.dask_runner import DaskBackend, dask_client, local_client
from hyperldm_engine.tiling.runner import OutputSet, TilePlan, run_tiles
from hyperldm_engine.tiling.windows import tile_grid

from . import fakes
from .fakes import ArrayReader, ArrayWriter, DieOnceTile, FailOnceTile, LinearTile

# worker processes cannot import the test package: ship its classes by value
cloudpickle.register_pickle_by_value(sys.modules[fakes.__name__])


def _scene(h=70, w=90):
    rgb = np.random.default_rng(7).uniform(0, 1, (3, h, w)).astype(np.float32)
    mask = np.ones((h, w), bool)
    mask[:20, :40] = False
    return rgb, mask


@pytest.fixture(scope="module")
def threads_client():
    client = local_client(2, processes=False)
    yield client
    client.close()
    client.cluster.close()


def _reference(rgb, mask, grid):
    w = ArrayWriter(5, *rgb.shape[1:])
    run_tiles(ArrayReader(rgb, mask), LinearTile(), TilePlan(grid), OutputSet.of(w, 5, -1.0))
    return w.data


def test_identical_to_in_process(threads_client):
    rgb, mask = _scene()
    grid = tile_grid(90, 70, 16, 4, align=4)
    writer = ArrayWriter(5, 70, 90)
    stats = run_tiles(ArrayReader(rgb, mask), LinearTile(), TilePlan(grid), OutputSet.of(writer, 5, -1.0),
                      DaskBackend(threads_client), max_tiles_in_flight=grid.n_cols)
    np.testing.assert_array_equal(writer.data, _reference(rgb, mask, grid))
    assert stats.computed + stats.skipped == len(grid) and stats.skipped > 0


def test_failed_task_is_retried(threads_client, tmp_path):
    rgb, _ = _scene()
    grid = tile_grid(90, 70, 32, 8, align=4)
    writer = ArrayWriter(5, 70, 90)
    run_tiles(ArrayReader(rgb), FailOnceTile(str(tmp_path / "m")), TilePlan(grid), OutputSet.of(writer, 5, -1.0),
              DaskBackend(threads_client, retries=2), max_tiles_in_flight=2 * grid.n_cols)
    assert (tmp_path / "m").exists()
    np.testing.assert_array_equal(writer.data, _reference(rgb, np.ones((70, 90), bool), grid))


def test_without_retries_the_error_propagates(threads_client, tmp_path):
    rgb, _ = _scene()
    grid = tile_grid(90, 70, 32, 8, align=4)
    with pytest.raises(RuntimeError, match="transient"):
        run_tiles(ArrayReader(rgb), FailOnceTile(str(tmp_path / "m")), TilePlan(grid),
                  OutputSet.of(ArrayWriter(5, 70, 90), 5, -1.0), DaskBackend(threads_client, retries=0),
                  max_tiles_in_flight=2 * grid.n_cols)


def test_exactly_one_cluster_source():
    with pytest.raises(ValueError), dask_client():
        pass
    with pytest.raises(ValueError), dask_client(scheduler="tcp://localhost:1", n_workers=1):
        pass


def test_worker_processes_with_a_killed_worker(tmp_path):
    """Two worker processes (n_workers=2); one dies mid-run and its task is recomputed."""
    rgb, mask = _scene()
    grid = tile_grid(90, 70, 32, 8, align=4)
    writer = ArrayWriter(5, 70, 90)
    t0 = time.perf_counter()
    with dask_client(n_workers=2) as client:
        run_tiles(ArrayReader(rgb, mask), DieOnceTile(str(tmp_path / "died")), TilePlan(grid),
                  OutputSet.of(writer, 5, -1.0), DaskBackend(client), max_tiles_in_flight=2 * grid.n_cols)
    print(f"process cluster run with a worker death: {time.perf_counter() - t0:.1f} s")
    assert (tmp_path / "died").exists()
    np.testing.assert_array_equal(writer.data, _reference(rgb, mask, grid))


def _malloc_trim_threshold():
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_workers_keep_the_default_allocator_tuning():
    """dask's MALLOC_TRIM_THRESHOLD_ disables glibc's dynamic mmap threshold (1.5x slower tiles)."""
    client = local_client(1)
    try:
        assert client.submit(_malloc_trim_threshold, pure=False).result() is None
    finally:
        client.close()
        client.cluster.close()
