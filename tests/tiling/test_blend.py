"""Blending weights and the streaming accumulator."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

from hyperldm_engine.tiling.blend import RowBandAccumulator, TileWeights, axis_weights, ramp
from hyperldm_engine.tiling.windows import tile_grid


def test_two_window_ramps_sum_to_one_exactly():
    w = axis_weights((0, 24), (32, 32))
    overlap_left, overlap_right = w[0][24:], w[1][:8]
    np.testing.assert_allclose(overlap_left + overlap_right, 1.0, atol=1e-15)
    assert np.all(w[0][:24] == 1) and np.all(w[1][8:] == 1)  # interior and outer edges unramped
    assert w[0][-1] < 0.04 and w[1][0] < 0.04  # ~0 at edges facing a neighbour
    assert np.all(ramp(8) > 0) and np.all(np.diff(ramp(8)) > 0)


def _merge_weights(grid):
    acc = RowBandAccumulator(grid.width, {None: 1}, nodata=-1.0)
    weights = TileWeights(grid)
    blocks = []
    for i, j, w in grid:
        wt = weights(i, j)
        assert wt.min() > 0
        acc.add(w, wt, {None: np.ones((1, w.height, w.width), np.float32)}, np.ones(wt.shape, bool))
    acc.flush(grid.height, lambda name, block, window: blocks.append(block))
    return np.concatenate(blocks, axis=1)[0], acc


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 150), st.integers(1, 150), st.sampled_from([(16, 4), (16, 12), (32, 8), (8, 0)]))
def test_normalised_weights_sum_to_one_everywhere(width, height, tile_overlap):
    grid = tile_grid(width, height, *tile_overlap, align=4)
    merged, _ = _merge_weights(grid)
    assert merged.shape == (height, width)
    np.testing.assert_allclose(merged, 1.0, rtol=0, atol=2e-7)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 120), st.integers(1, 120), st.sampled_from([(16, 4), (16, 12), (12, 4)]),
       st.integers(0, 2**31 - 1))
def test_identity_is_exact_through_blending(width, height, tile_overlap, seed):
    data = np.random.default_rng(seed).uniform(0, 1, (2, height, width)).astype(np.float32)
    grid = tile_grid(width, height, *tile_overlap, align=4)
    weights = TileWeights(grid)
    acc = RowBandAccumulator(width, {None: 2}, nodata=np.nan)
    out = []
    for i, j, w in grid:
        tile = data[:, w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width]
        acc.add(w, weights(i, j), {None: tile}, np.ones(tile.shape[1:], bool))
    acc.flush(height, lambda name, block, window: out.append(block))
    # float32 accumulation: a few ulps where up to 16 tiles overlap
    np.testing.assert_allclose(np.concatenate(out, axis=1), data, rtol=8 * np.finfo(np.float32).eps, atol=0)


def test_accumulator_refuses_tiles_above_written_rows_and_fills_nodata():
    acc = RowBandAccumulator(4, {None: 1}, nodata=-9.0)
    mask = np.array([[True, False, True, True]] * 2)
    three = {None: np.full((1, 2, 4), 3.0, np.float32)}
    acc.add(Window(0, 0, 4, 2), np.ones((2, 4), np.float32), three, mask)
    got = []
    acc.flush(3, lambda n, b, w: got.append((b, w)))
    block, window = got[0]
    assert (window.row_off, window.height) == (0, 3)
    np.testing.assert_array_equal(block[0], [[3, -9, 3, 3], [3, -9, 3, 3], [-9, -9, -9, -9]])
    with pytest.raises(ValueError):
        acc.add(Window(0, 2, 4, 2), np.ones((2, 4), np.float32), None, np.ones((2, 4), bool))
