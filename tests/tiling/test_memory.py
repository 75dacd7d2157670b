"""Peak memory of the streaming runner does not grow with scene height (slow)."""

import time
import tracemalloc

import pytest

from hyperldm_engine.tiling.runner import OutputSet, TilePlan, run_tiles
from hyperldm_engine.tiling.windows import tile_grid

from .fakes import DigestWriter, LinearTile, SyntheticReader


def _peak_bytes(width, height, tile=128, overlap=32):
    reader, writer = SyntheticReader(width, height), DigestWriter(5, height, width)
    grid = tile_grid(width, height, tile, overlap, align=4)
    tracemalloc.start()
    t0 = time.perf_counter()
    stats = run_tiles(reader, LinearTile(), TilePlan(grid), OutputSet.of(writer, 5, -1.0))
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert writer.next_row == height
    return peak, stats, seconds


@pytest.mark.slow
def test_peak_memory_is_flat_in_scene_height():
    width = 512
    small, _, _ = _peak_bytes(width, 1024)
    big, stats, seconds = _peak_bytes(width, 8192)
    scene_bytes = 5 * 8192 * width * 4
    print(f"peak traced: {small / 2**20:.1f} MiB (1024 rows), {big / 2**20:.1f} MiB (8192 rows); "
          f"output cube {scene_bytes / 2**20:.0f} MiB; "
          f"accumulator peak {stats.peak_accumulator_bytes / 2**20:.1f} MiB; "
          f"{stats.computed} tiles, {width * 8192 / 1e6 / seconds:.1f} MPix/s")
    assert big < 1.15 * small, "peak memory grows with scene height"
    assert big < scene_bytes / 10


@pytest.mark.slow
def test_peak_memory_is_flat_in_scene_width():
    """Strips keep the accumulators one strip wide: an 8192-wide scene needs what a 1024-wide one does."""
    height = 512
    small, _, _ = _peak_bytes(1024, height)
    big, stats, seconds = _peak_bytes(8192, height)
    print(f"peak traced: {small / 2**20:.1f} MiB (1024 wide), {big / 2**20:.1f} MiB (8192 wide); "
          f"{stats.strips} strips, {stats.carried_bytes / 2**20:.0f} MiB carried on disk; "
          f"{8192 * height / 1e6 / seconds:.1f} MPix/s")
    assert stats.strips == 8
    assert big < 1.15 * small, "peak memory grows with scene width"
