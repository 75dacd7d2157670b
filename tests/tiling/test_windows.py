"""Tile geometry: exact cover, latent alignment, snapping, georeferencing."""

import itertools

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.windows import transform as window_transform

from hyperldm_engine.errors import HyperLDMError
from hyperldm_engine.tiling.windows import axis_starts, crop_to, pad_to_multiple, tile_grid


def test_known_grid():
    g = tile_grid(100, 50, tile=32, overlap=8, align=4)
    assert g.col_starts == (0, 24, 48, 68) and g.col_sizes == (32, 32, 32, 32)
    # last row window: start floor((50 - 32) / 4) * 4 = 16, extended to the edge (34 rows)
    assert g.row_starts == (0, 16) and g.row_sizes == (32, 34)
    assert len(g) == 8 and len(g.rows) == 2 and len(g.rows[0]) == 4
    w = g.window(1, 3)
    assert (w.col_off, w.row_off, w.width, w.height) == (68, 16, 32, 34)
    assert g.latent_origin(1, 3) == (4, 17)


def test_small_raster_single_window():
    g = tile_grid(10, 7, tile=32, overlap=8, align=4)
    assert (g.row_starts, g.row_sizes, g.col_starts, g.col_sizes) == ((0,), (7,), (0,), (10,))


def test_raster_just_over_a_tile_is_one_extended_window():
    assert axis_starts(34, 32, 8, 4) == ((0,), (34,))
    assert axis_starts(36, 32, 8, 4) == ((0, 4), (32, 32))


@pytest.mark.parametrize("kw", [dict(tile=30, overlap=8), dict(tile=32, overlap=6),
                                dict(tile=32, overlap=32), dict(tile=32, overlap=-4),
                                dict(tile=0, overlap=0)])
def test_refuses_bad_sizes(kw):
    with pytest.raises(HyperLDMError):
        tile_grid(100, 100, align=4, **kw)


def test_refuses_empty_raster():
    with pytest.raises(HyperLDMError):
        tile_grid(0, 10, 32, 8)


@st.composite
def axis_case(draw):
    align = draw(st.sampled_from([1, 2, 4, 8]))
    tile = align * draw(st.integers(1, 16))
    overlap = align * draw(st.integers(0, tile // align - 1))
    size = draw(st.integers(1, 400))
    return size, tile, overlap, align


@settings(max_examples=300, deadline=None)
@given(axis_case())
def test_axis_cover_alignment_and_snapping(case):
    size, tile, overlap, align = case
    starts, sizes = axis_starts(size, tile, overlap, align)
    cover = np.zeros(size, int)
    for s, n in zip(starts, sizes, strict=True):
        assert s % align == 0, "every window starts on the latent grid"
        assert n >= 1 and s >= 0 and s + n <= size, "no empty or overhanging window"
        assert min(size, tile) <= n <= tile + align - 1
        cover[s:s + n] += 1
    assert cover.min() >= 1, "no pixel dropped"
    assert list(starts) == sorted(set(starts)), "starts strictly increase"
    assert starts[-1] + sizes[-1] == size, "the last window reaches the edge"
    if size > tile:  # all but the last are regular, at stride spacing
        assert all(n == tile for n in sizes[:-1])
        assert all(b - a == tile - overlap for a, b in itertools.pairwise(starts[:-1]))


@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")  # inside rasterio
@settings(max_examples=50, deadline=None)
@given(st.integers(1, 200), st.integers(1, 200), st.sampled_from([(16, 4), (32, 8), (24, 0)]))
def test_grid_windows_georeference_like_rasterio(width, height, tile_overlap):
    tile, overlap = tile_overlap
    base = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)
    g = tile_grid(width, height, tile, overlap, align=4)
    cover = np.zeros((height, width), int)
    for i, j, w in g:
        expected = base @ Affine.translation(w.col_off, w.row_off)
        assert window_transform(w, base).almost_equals(expected)
        assert g.latent_origin(i, j) == (w.row_off // 4, w.col_off // 4)
        cover[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] += 1
    assert cover.min() >= 1


def test_latent_cells_coincide_across_overlapping_tiles():
    g = tile_grid(90, 90, tile=32, overlap=12, align=4)
    for _, _, w in g:
        for _, _, v in g:
            lo, hi = max(w.col_off, v.col_off), min(w.col_off + w.width, v.col_off + v.width)
            for p in range(lo, hi):  # latent cell of p relative to each tile, then absolute
                assert (p - w.col_off) // 4 + w.col_off // 4 == (p - v.col_off) // 4 + v.col_off // 4


def test_pad_and_crop_round_trip():
    a = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    p, shape = pad_to_multiple(a, 4)
    assert p.shape == (2, 8, 8) and shape == (5, 7)
    np.testing.assert_array_equal(crop_to(p, shape), a)
    np.testing.assert_array_equal(p[:, 5, :7], a[:, 3])  # reflect without repeating the edge
    same, _ = pad_to_multiple(a[:, :4, :4], 4)
    assert same.shape == (2, 4, 4)
    one, _ = pad_to_multiple(np.ones((1, 1, 3), np.float32), 4)
    assert one.shape == (1, 4, 4) and np.all(one == 1)


@pytest.mark.parametrize("size,tile,overlap,expected", [
    (1024, 512, 64, 384), (2048, 512, 64, 464), (600, 512, 64, 332), (4096, 512, 64, 512),
    (512, 512, 64, 512), (300, 512, 64, 512), (64, 32, 8, 28), (82, 32, 8, 32)])
def test_balanced_tile_keeps_the_window_count_with_the_smallest_tile(size, tile, overlap, expected):
    from hyperldm_engine.tiling.windows import balanced_tile

    t = balanced_tile(size, tile, overlap, 4)
    assert t == expected and t % 4 == 0 and t <= tile
    n = len(axis_starts(size, tile, overlap, 4)[0])
    assert len(axis_starts(size, t, overlap, 4)[0]) == n
    if n > 1 and t > overlap + 4:
        assert len(axis_starts(size, t - 4, overlap, 4)[0]) > n, "no smaller aligned tile would do"


def test_scene_grid_validates_the_requested_sizes_and_balances_both_axes():
    from hyperldm_engine.tiling.windows import scene_grid

    g = scene_grid(1024, 600, 512, 64)
    assert g.tile == 384 and len(g.col_starts) == 3 and len(g.row_starts) == 2
    assert g.col_starts[-1] + g.col_sizes[-1] == 1024 and g.row_starts[-1] + g.row_sizes[-1] == 600
    with pytest.raises(HyperLDMError, match="multiples of the latent factor"):
        scene_grid(1024, 1024, 510, 64)
