"""``--batch-size``: the batching back end of the tile runner and ``SynthesisTileFn.batch``.

Batched tiles must give the unbatched result: the same merge order, each tile its own condition and
its own window of the scene-level noise field. Batched convolutions may sum floats in another order,
so model outputs are compared to 1e-4, not bit for bit.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window
from tiling.fakes import ArrayReader, ArrayWriter
from tiny_models import build_tiny_bundle

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.raster import open_rgb, scene_statistics
from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn
from hyperldm_engine.tiling.batching import BatchingBackend
from hyperldm_engine.tiling.runner import OutputSet, TilePlan, TileRequest, run_tiles
from hyperldm_engine.tiling.windows import tile_grid


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny bundle with its zero-initialised denoiser layers given random weights: a fresh U-Net
    predicts eps = 0 exactly, which would hide any mix-up of tiles inside a U-Net batch."""
    return str(build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny_random", random_denoiser=True))


def write_rgb(path: Path, rows: int, cols: int, nodata_box: tuple[slice, slice] | None = None) -> Path:
    """A uint8 GeoTIFF (nodata 0) with smooth structure and mild noise; ``nodata_box`` is set to 0."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:rows, 0:cols] / 32.0
    base = np.stack([0.4 + 0.3 * np.sin(2.1 * x + y), 0.4 + 0.3 * np.cos(1.3 * y - x), 0.3 + 0.2 * np.sin(x * y)])
    data = (np.clip(base + 0.03 * rng.standard_normal((3, rows, cols)), 0.01, 1) * 255).astype(np.uint8)
    if nodata_box is not None:
        data[:, nodata_box[0], nodata_box[1]] = 0
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=3, dtype="uint8", nodata=0,
                       crs="EPSG:32633", transform=from_origin(500000, 6000000, 2, 2)) as ds:
        ds.write(data)
    return path


# ---- BatchingBackend with a fake batch function ----------------------------------------------------

def fake_tile(request: TileRequest) -> np.ndarray:
    """Depends on the pixels and on where the tile sits, so a mix-up of tiles would show."""
    return request.rgb[:2] * 2.0 + request.row + 10.0 * request.col


class RecordingBatch:
    """A batch function that runs :func:`fake_tile` per tile and records each batch's tile shapes."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int]]] = []

    def __call__(self, requests: list[TileRequest]) -> list[np.ndarray]:
        self.batches.append([r.rgb.shape[1:] for r in requests])
        return [fake_tile(r) for r in requests]


def run_fake(rgb: np.ndarray, grid, backend=None, max_tiles_in_flight=1) -> np.ndarray:
    writer = ArrayWriter(2, rgb.shape[1], rgb.shape[2])
    run_tiles(ArrayReader(rgb), fake_tile, TilePlan(grid), OutputSet.of(writer, 2, -9999.0), backend,
              max_tiles_in_flight=max_tiles_in_flight)
    return writer.data


def test_batches_of_at_most_batch_size_give_the_unbatched_output() -> None:
    rgb = np.random.default_rng(0).random((3, 64, 64), dtype=np.float32)
    grid = tile_grid(64, 64, 32, 8, align=4)
    assert (grid.n_rows, grid.n_cols) == (3, 3)
    batch_fn = RecordingBatch()
    backend = BatchingBackend(batch_fn, 4)
    batched = run_fake(rgb, grid, backend, max_tiles_in_flight=4)
    sizes = [len(b) for b in batch_fn.batches]
    assert sum(sizes) == 9 and max(sizes) <= 4 and sizes == backend.batch_sizes
    assert sizes[0] == 4  # the runner really hands over several tiles before it waits
    np.testing.assert_array_equal(batched, run_fake(rgb, grid))


def test_tiles_of_different_shapes_are_batched_separately() -> None:
    rgb = np.random.default_rng(1).random((3, 40, 70), dtype=np.float32)
    grid = tile_grid(70, 40, 32, 8, align=4)  # last column is 34 px wide: two tile shapes per row
    assert len(set(grid.col_sizes)) == 2
    batch_fn = RecordingBatch()
    batched = run_fake(rgb, grid, BatchingBackend(batch_fn, 6), max_tiles_in_flight=6)
    assert all(len(set(shapes)) == 1 for shapes in batch_fn.batches)
    assert sum(map(len, batch_fn.batches)) == grid.n_rows * grid.n_cols
    assert any(len(shapes) > 1 for shapes in batch_fn.batches)
    np.testing.assert_array_equal(batched, run_fake(rgb, grid))


def test_backend_rejects_bad_sizes_and_cancels() -> None:
    with pytest.raises(ValueError, match="batch size"):
        BatchingBackend(RecordingBatch(), 0)
    batch_fn = RecordingBatch()
    backend = BatchingBackend(batch_fn, 2)
    request = TileRequest(window=Window(0, 0, 4, 4), rgb=np.zeros((3, 4, 4), np.float32),
                          mask=np.ones((4, 4), bool), row=0, col=0, latent_row0=0, latent_col0=0, align=4)
    keep, drop = backend.submit(fake_tile, request), backend.submit(fake_tile, request)
    backend.cancel([drop])
    assert backend.wait_any([keep]) == [keep] and batch_fn.batches == [[(4, 4)]]
    assert backend.result(keep).shape == (2, 4, 4)


# ---- SynthesisTileFn.batch on the tiny bundle ------------------------------------------------------

@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory):
    """Scene statistics and three 32 x 40 tiles at different places (different pixels and noise)."""
    path = write_rgb(tmp_path_factory.mktemp("rgb") / "rgb.tif", 64, 96)
    requests = []
    with open_rgb(path) as reader:
        stats = scene_statistics(reader)
        for n, (r0, c0) in enumerate([(0, 0), (16, 24), (32, 56)]):
            window = Window(c0, r0, 40, 32)
            rgb, mask = reader.read(window)
            requests.append(TileRequest(window=window, rgb=rgb, mask=mask, row=0, col=n,
                                        latent_row0=r0 // 4, latent_col0=c0 // 4, align=4))
    return stats, requests


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_batch_of_three_tiles_equals_three_single_calls(bundle: str, tiles, eta: float) -> None:
    stats, requests = tiles
    fn = SynthesisTileFn(bundle, SamplingOptions(samples=2, steps=3, seed=5, eta=eta), stats, abundances=True)
    batched = fn.batch(requests)
    singles = [fn(r) for r in requests]
    assert len(batched) == 3
    for b, s in zip(batched, singles, strict=True):
        assert set(b) == set(s) == {"s0", "s1", "abundances"}
        for key in s:
            assert b[key].shape == s[key].shape and b[key].dtype == np.float32
            assert float(np.abs(b[key] - s[key]).max()) < 1e-4, key
    # the tiles really differ (their own pixels and noise: ~6e-3 here), so a mix-up would fail above;
    # observed on CPU: batched and single calls are bit-identical (max difference 0.0)
    assert float(np.abs(singles[0]["s0"] - singles[1]["s0"]).max()) > 1e-3


def test_batch_with_mixed_shapes_keeps_the_order(bundle: str, tiles) -> None:
    stats, requests = tiles
    small = dataclasses.replace(requests[1], rgb=requests[1].rgb[:, :24, :32], mask=requests[1].mask[:24, :32],
                                window=Window(24, 16, 32, 24))
    fn = SynthesisTileFn(bundle, SamplingOptions(steps=2), stats)
    out = fn.batch([requests[0], small, requests[2]])
    assert [o["s0"].shape[1:] for o in out] == [(32, 40), (24, 32), (32, 40)]
    assert float(np.abs(out[1]["s0"] - fn(small)["s0"]).max()) < 1e-4


# ---- the scene pipeline and the CLI ----------------------------------------------------------------

def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_scene_with_batch_size_3_equals_batch_size_1(bundle: str, tmp_path: Path) -> None:
    # 64 x 82 px, tile 32, overlap 8: a 3 x 3 grid whose last column is 34 px wide; the nodata box
    # covers tile (0, 0) entirely, so it is skipped and the batches are not aligned with grid rows
    rgb = write_rgb(tmp_path / "rgb.tif", 64, 82, nodata_box=(slice(0, 34), slice(0, 34)))
    outputs = {}
    for batch_size in (1, 3):
        job = SceneJob(input=str(rgb), output=str(tmp_path / f"b{batch_size}.tif"), model=bundle,
                       sampling=SamplingOptions(samples=2, steps=2, seed=3), tile=32, overlap=8,
                       abundances=str(tmp_path / f"ab{batch_size}.tif"), batch_size=batch_size)
        paths, stats = synthesize_scene(job, progress_mode="none")
        assert (stats.computed, stats.skipped) == (8, 1)
        outputs[batch_size] = [read(p) for p in paths]
    for one, three in zip(outputs[1], outputs[3], strict=True):
        np.testing.assert_array_equal(one == -9999.0, three == -9999.0)  # the same nodata pixels
        assert (one == -9999.0).any() and (one != -9999.0).any()
        assert float(np.abs(one - three).max()) < 1e-4


def test_batch_size_with_dask_workers_is_refused(bundle: str, tmp_path: Path) -> None:
    rgb = write_rgb(tmp_path / "rgb.tif", 32, 32)
    job = SceneJob(input=str(rgb), output=str(tmp_path / "out.tif"), model=bundle, batch_size=2, workers=2)
    with pytest.raises(InputError, match="--batch-size"):
        synthesize_scene(job, progress_mode="none")
    assert list(tmp_path.iterdir()) == [rgb]


def test_cli_refuses_batch_size_0_in_one_line(bundle: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from hyperldm_cli.main import main

    rgb = write_rgb(tmp_path / "rgb.tif", 32, 32)
    previous = signal.getsignal(signal.SIGTERM)  # main installs a SIGTERM handler
    try:
        with pytest.raises(SystemExit) as exc:
            main(["synthesize", str(rgb), str(tmp_path / "out.tif"), "--model", bundle, "--batch-size", "0",
                  "--progress", "none"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err
    assert exc.value.code not in (0, None)
    assert err.strip().splitlines() == ["error: --batch-size must be a positive integer, got 0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb.tif"]
