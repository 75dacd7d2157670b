"""Strip-by-strip merging: geometry, bit-identical output for any strip width, whole blocks, flat memory."""

import itertools

import numpy as np
import pytest
from rasterio.windows import Window

from hyperldm_engine.errors import HyperLDMError
from hyperldm_engine.tiling.carry import CarryPiece, CarryStore, split_at
from hyperldm_engine.tiling.runner import OutputSet, TilePlan, run_tiles
from hyperldm_engine.tiling.windows import plan_strips, tile_grid

from .fakes import ArrayReader, ArrayWriter, TwoOutputTile


class TileNoise:
    """Output depends on the tile (like independently denoised tiles), so the blend order matters."""

    def __call__(self, request):
        rng = np.random.default_rng(request.row * 1000 + request.col)
        h, w = request.rgb.shape[1:]
        noise = rng.normal(0, 0.1, (4, h, w)).astype(np.float32)
        return np.concatenate([request.rgb, request.rgb[:1]]) * np.float32(1.37) + noise


class BlockWriter(ArrayWriter):
    """An ArrayWriter that declares 16 x 16 blocks and records every window it gets."""

    block_height = 16
    block_width = 16


def _scene(h=90, w=230, seed=3):
    rgb = np.random.default_rng(seed).uniform(0.02, 0.9, (3, h, w)).astype(np.float32)
    mask = np.ones((h, w), bool)
    mask[30:50, 100:140] = False
    mask[:, 220:] = False
    return rgb, mask


@pytest.mark.parametrize("width,tile,overlap,strip,block", [
    (230, 32, 8, 40, 16), (230, 32, 8, 64, 1), (1000, 256, 64, 300, 128), (2050, 256, 64, 2048, 512),
    (100, 32, 8, 10, 1), (500, 64, 16, 64, 64)])
def test_strip_plan_covers_the_width_in_whole_blocks(width, tile, overlap, strip, block):
    grid = tile_grid(width, 50, tile, overlap, align=4)
    strips = plan_strips(grid, strip, block)
    assert strips[0].col0 == 0 and strips[-1].col1 == width
    assert all(a.col1 == b.col0 for a, b in itertools.pairwise(strips))
    assert sorted(j for s in strips for j in s.tile_cols) == list(range(grid.n_cols))
    for n, s in enumerate(strips):
        assert s.col0 % block == 0 and s.tile_cols, "edges on block boundaries; no empty strip"
        for j in s.tile_cols:
            start, end = grid.col_starts[j], grid.col_starts[j] + grid.col_sizes[j]
            assert s.col0 <= start < s.col1
            limit = strips[n + 1].col1 if n + 1 < len(strips) else width
            assert end <= limit, "a tile overhangs at most into the next strip"


def test_one_strip_when_the_scene_is_narrow_or_strips_are_off():
    grid = tile_grid(300, 50, 32, 8, align=4)
    assert len(plan_strips(grid, None)) == 1 and len(plan_strips(grid, 300)) == 1
    assert len(plan_strips(grid, 100)) == 3
    with pytest.raises(HyperLDMError):
        plan_strips(grid, 0)


@pytest.mark.parametrize("strip,overlap", [(32, 8), (40, 8), (64, 8), (100, 8), (40, 16), (56, 20)])
def test_output_is_bit_identical_for_any_strip_width(strip, overlap, tmp_path):
    """Overlap 16-20 with strips off the stride: two tiles of a row overhang the same strip edge."""
    rgb, mask = _scene()
    grid = tile_grid(230, 90, 32, overlap, align=4)
    reference = ArrayWriter(4, 90, 230)
    run_tiles(ArrayReader(rgb, mask), TileNoise(), TilePlan(grid, strip_width=None), OutputSet.of(reference, 4, -1.0))
    writer = BlockWriter(4, 90, 230)
    stats = run_tiles(ArrayReader(rgb, mask), TileNoise(), TilePlan(grid, strip_width=strip, carry_dir=tmp_path),
                      OutputSet.of(writer, 4, -1.0))
    assert stats.strips > 1 and stats.carried_bytes > 0
    np.testing.assert_array_equal(writer.data, reference.data)
    assert not np.isnan(writer.data).any() and (writer.data[:, ~mask] == -1.0).all()
    assert list(tmp_path.iterdir()) == [], "the carry folder is removed"


def test_each_block_is_written_once_and_whole():
    rgb, mask = _scene()
    grid = tile_grid(230, 90, 32, 8, align=4)
    writer = BlockWriter(4, 90, 230)
    run_tiles(ArrayReader(rgb, mask), TileNoise(), TilePlan(grid, strip_width=48), OutputSet.of(writer, 4, -1.0))
    hits = np.zeros((90, 230), int)
    for w in writer.windows:
        c0, r0, cw, rh = int(w.col_off), int(w.row_off), int(w.width), int(w.height)
        assert c0 % 16 == 0 and (cw % 16 == 0 or c0 + cw == 230)
        assert r0 % 16 == 0 and (rh % 16 == 0 or r0 + rh == 90)
        hits[r0:r0 + rh, c0:c0 + cw] += 1
    assert (hits == 1).all()


def test_named_outputs_and_a_subset_of_tiles_through_strips():
    rgb, _ = _scene()
    grid = tile_grid(230, 90, 32, 8, align=4)
    wanted = [(i, j) for i in range(grid.n_rows) for j in range(grid.n_cols) if (i + j) % 3]
    out = {}
    for strip in (None, 40):
        writers = {"hsi": ArrayWriter(5, 90, 230), "abundances": ArrayWriter(2, 90, 230)}
        stats = run_tiles(ArrayReader(rgb), TwoOutputTile(), TilePlan(grid, tiles=wanted, strip_width=strip),
                          OutputSet.of(writers, {"hsi": 5, "abundances": 2}, -1.0))
        assert stats.computed == len(wanted)
        out[strip] = writers
    for name in ("hsi", "abundances"):
        np.testing.assert_array_equal(out[40][name].data, out[None][name].data)


def test_accumulator_is_one_strip_wide_whatever_the_scene_width():
    peaks = {}
    for width in (128, 512, 1024):
        rgb = np.random.default_rng(0).uniform(0, 1, (3, 64, width)).astype(np.float32)
        grid = tile_grid(width, 64, 32, 8, align=4)
        stats = run_tiles(ArrayReader(rgb), TileNoise(), TilePlan(grid, strip_width=64),
                          OutputSet.of(ArrayWriter(4, 64, width), 4, -1.0))
        peaks[width] = stats.peak_accumulator_bytes
    assert peaks[1024] == peaks[512] == peaks[128]
    # one strip (64 px, 4 bands + weights + validity) of at most a tile (32) + a flushed remainder
    assert peaks[1024] <= 64 * 64 * (4 * 4 + 4 + 1)


def test_interrupted_run_removes_the_carry_folder(tmp_path):
    rgb, _ = _scene()
    grid = tile_grid(230, 90, 32, 8, align=4)

    def stop_in_second_strip(request):
        if request.col == 3:
            raise KeyboardInterrupt
        return TileNoise()(request)

    with pytest.raises(KeyboardInterrupt):
        run_tiles(ArrayReader(rgb), stop_in_second_strip, TilePlan(grid, strip_width=48, carry_dir=tmp_path),
                  OutputSet.of(ArrayWriter(4, 90, 230), 4, -1.0))
    assert list(tmp_path.iterdir()) == []


def test_carry_store_round_trip_in_order(tmp_path):
    with CarryStore(tmp_path) as store:
        for k in range(3):
            piece = CarryPiece(Window(10 + k, 0, 2, 3), {None: np.full((2, 3, 2), k, np.float32)},
                               np.full((3, 2), k, np.float32), np.ones((3, 2), bool))
            store.put(0, 5, piece)
        assert list(store.take(0, 5)) == [] and list(store.take(2, 5)) == []
        got = list(store.take(1, 5))
        assert [int(p.window.col_off) for p in got] == [10, 11, 12]
        assert [float(p.num[None][0, 0, 0]) for p in got] == [0.0, 1.0, 2.0]
        assert list(store.take(1, 5)) == [] and list(store.path.iterdir()) == []
    assert list(tmp_path.iterdir()) == []


def test_split_at():
    w = Window(10, 4, 20, 8)
    assert split_at(w, 5) == (None, w, 0)
    assert split_at(w, 40) == (w, None, 20)
    left, right, cut = split_at(w, 18)
    assert (left, right, cut) == (Window(10, 4, 8, 8), Window(18, 4, 12, 8), 8)


class StripedWriter(ArrayWriter):
    """Declares an untiled (striped) GeoTIFF profile: each stored strip holds whole rows."""

    def __init__(self, count, height, width):
        super().__init__(count, height, width)
        self.profile = {"tiled": False, "width": width, "height": height}


def test_an_untiled_output_is_written_in_whole_rows():
    rgb, mask = _scene()
    grid = tile_grid(230, 90, 32, 8, align=4)
    writer = StripedWriter(4, 90, 230)
    stats = run_tiles(ArrayReader(rgb, mask), TileNoise(), TilePlan(grid, strip_width=48),
                      OutputSet.of(writer, 4, -1.0))
    assert stats.strips == 1
    assert all(int(w.col_off) == 0 and int(w.width) == 230 for w in writer.windows)


@pytest.mark.parametrize("strip,out", [(None, Window(37, 21, 150, 50)), (48, Window(37, 21, 150, 50)),
                                       (40, Window(5, 3, 61, 80)), (64, Window(100, 0, 130, 90))])
def test_an_output_window_gets_the_whole_runs_pixels_in_whole_blocks(strip, out, tmp_path):
    """``TilePlan.out_window``: writers the window's size get exactly the whole-grid output's pixels there;
    flushes and strips fill blocks counted from the window's origin, each written once."""
    rgb, mask = _scene()
    grid = tile_grid(230, 90, 32, 8, align=4)
    reference = ArrayWriter(4, 90, 230)
    run_tiles(ArrayReader(rgb, mask), TileNoise(), TilePlan(grid, strip_width=None), OutputSet.of(reference, 4, -1.0))
    writer = BlockWriter(4, int(out.height), int(out.width))
    plan = TilePlan(grid, strip_width=strip, carry_dir=tmp_path, out_window=out)
    run_tiles(ArrayReader(rgb, mask), TileNoise(), plan, OutputSet.of(writer, 4, -1.0))
    r0, c0 = int(out.row_off), int(out.col_off)
    np.testing.assert_array_equal(writer.data, reference.data[:, r0:r0 + int(out.height), c0:c0 + int(out.width)])
    hits = np.zeros((int(out.height), int(out.width)), int)
    for w in writer.windows:
        wc, wr, cw, rh = int(w.col_off), int(w.row_off), int(w.width), int(w.height)
        assert wc % 16 == 0 and (cw % 16 == 0 or wc + cw == out.width), w
        assert wr % 16 == 0 and (rh % 16 == 0 or wr + rh == out.height), w
        hits[wr:wr + rh, wc:wc + cw] += 1
    assert (hits == 1).all()


def test_strips_start_at_the_output_windows_origin():
    grid = tile_grid(230, 50, 32, 8, align=4)
    strips = plan_strips(grid, 40, 16, origin=37)
    assert strips[0].col0 == 0 and strips[-1].col1 == 230 and len(strips) > 2
    assert all((s.col0 - 37) % 48 == 0 for s in strips[1:])  # 40 rounded up to whole 16 px blocks
    assert sorted(j for s in strips for j in s.tile_cols) == list(range(grid.n_cols))
