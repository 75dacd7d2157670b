"""Seam statistic on constructed cubes and on blended vs hard-edged tilings."""

import numpy as np
import pytest

from hyperldm_engine.tiling.runner import OutputSet, TilePlan, run_tiles
from hyperldm_engine.tiling.seams import border_pairs, seam_statistic
from hyperldm_engine.tiling.windows import tile_grid

from .fakes import ArrayWriter, LinearTile, SyntheticReader, TileOffsetTile


def test_border_pairs():
    pairs = border_pairs((0, 12, 24), (16, 16, 16), 40)
    np.testing.assert_array_equal(np.flatnonzero(pairs), [11, 15, 23, 27])


def test_constructed_seam_known_answer():
    cube = np.tile(0.01 * np.arange(32, dtype=np.float64), (2, 8, 1))
    cube[:, :, 16:] += 0.5
    s = seam_statistic(cube, tile_grid(32, 8, 16, 0, align=4))
    assert (s.n_across, s.n_interior) == (8, 8 * 30 + 7 * 32)
    assert s.across == pytest.approx(0.51)
    assert s.interior == pytest.approx(8 * 30 * 0.01 / (8 * 30 + 7 * 32))
    assert s.ratio > 20


def test_mask_excludes_pairs():
    cube = np.zeros((1, 8, 32))
    cube[:, :, 16:] = 1.0
    mask = np.ones((8, 32), bool)
    mask[:, 16] = False
    s = seam_statistic(cube, tile_grid(32, 8, 16, 0, align=4), mask)
    assert s.n_across == 0 and np.isnan(s.ratio)


def _merged(tile_fn, overlap, reader):
    grid = tile_grid(reader.width, reader.height, 32, overlap, align=4)
    writer = ArrayWriter(3 if isinstance(tile_fn, TileOffsetTile) else 5, reader.height, reader.width)
    run_tiles(reader, tile_fn, TilePlan(grid), OutputSet.of(writer, writer.data.shape[0], -1.0))
    return writer.data, grid


def test_blending_hides_tile_disagreement_and_identity_has_no_seam():
    reader = SyntheticReader(120, 100)
    hard, g0 = _merged(TileOffsetTile(), 0, reader)
    soft, g1 = _merged(TileOffsetTile(), 16, reader)
    same, g2 = _merged(LinearTile(), 16, reader)
    r_hard, r_soft, r_same = (seam_statistic(c, g).ratio for c, g in ((hard, g0), (soft, g1), (same, g2)))
    # a step of 1 (columns) or 10 (rows) between tiles: a hard edge is a seam, a ramp spreads it out
    assert r_hard > 20 and r_soft < 1.0
    assert r_same == pytest.approx(1.0, abs=0.2)
