"""Quality report: closed-form ridge known answers, the CNN's linear start, the RESULTS.md section, --quick."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hyperldm_engine.experiments.quality import (
    DENOISER_TIME_ROWS,
    END_MARKER,
    EXTRA_ROWS,
    ROW_LABELS,
    START_MARKER,
    QualitySettings,
    replace_section,
    run_quality_report,
)
from hyperldm_engine.train.baselines import (
    PairedScene,
    ResidualCNN,
    RidgeRegressor,
    normalised_rgb,
    poly_features,
)


def test_ridge_recovers_a_known_linear_map_exactly() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1.5, (500, 3))
    w = rng.normal(size=(4, 48))
    y = np.c_[np.ones(500), rgb] @ w
    fit = RidgeRegressor.fit(rgb, y, degree=1, lam=0.0)
    np.testing.assert_allclose(fit.weights, w, atol=1e-9)
    # a tiny relative penalty barely moves it; the intercept is never penalised
    np.testing.assert_allclose(RidgeRegressor.fit(rgb, y, degree=1, lam=1e-9).weights, w, atol=1e-5)


def test_ridge_recovers_a_quadratic_map_and_scene_fit_matches_pixel_fit() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(10, 5))
    scenes = []
    for _ in range(2):
        rgb = rng.uniform(0, 1, (3, 12, 10)).astype(np.float32)
        hsi = (poly_features(rgb.reshape(3, -1).T, 2) @ w).T.reshape(5, 12, 10)
        scenes.append(PairedScene(rgb=rgb, hsi=hsi.astype(np.float64), row_end=9))
    fit = RidgeRegressor.fit_scenes(scenes, degree=2, lam=0.0)
    np.testing.assert_allclose(fit.weights, w, atol=1e-7)
    x = np.concatenate([s.rgb[:, :9].reshape(3, -1).T for s in scenes])
    y = np.concatenate([s.hsi[:, :9].reshape(5, -1).T for s in scenes])
    np.testing.assert_allclose(RidgeRegressor.fit(x, y, 2, 1e-3).weights,
                               RidgeRegressor.fit_scenes(scenes, 2, 1e-3).weights, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.predict(scenes[0].rgb), scenes[0].hsi, atol=1e-6)


def test_reflectance_rgb_is_the_normalised_rgb_times_the_scene_white() -> None:
    """The reflectance baseline's input: the scene's brightness kept (a darker copy of a scene differs), the
    model's clip at 1.5 white kept."""
    rng = np.random.default_rng(4)
    rgb = rng.uniform(0.02, 0.4, (3, 40, 50)).astype(np.float32)
    rgb[:, 0, 0] = 3.0  # far above the white: clipped
    norm, refl = normalised_rgb(rgb), normalised_rgb(rgb, reflectance=True)
    white = float(np.percentile(rgb[:, ::1, ::1].reshape(3, -1).max(0), 99))
    np.testing.assert_allclose(refl, norm * white, rtol=1e-5)
    np.testing.assert_allclose(refl[:, 1:, 1:], rgb[:, 1:, 1:], rtol=1e-5)  # below the clip: the RGB itself
    assert refl[0, 0, 0] == pytest.approx(1.5 * white, rel=1e-5)
    np.testing.assert_allclose(normalised_rgb(0.5 * rgb), norm, rtol=1e-5)  # normalised: brightness gone
    np.testing.assert_allclose(normalised_rgb(0.5 * rgb, reflectance=True), 0.5 * refl, rtol=1e-5)


def test_cnn_starts_as_the_linear_ridge() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.uniform(0, 1, (3, 16, 16)).astype(np.float32)
    ridge = RidgeRegressor(weights=rng.normal(size=(4, 6)), degree=1, lam=0.0)
    net = ResidualCNN(n_bands=6, width=4, blocks=2)
    net.init_linear(ridge)
    np.testing.assert_allclose(net.predict(rgb), ridge.predict(rgb), atol=1e-5)
    assert net.n_parameters == (3 * 6 + 6) + (3 * 4 * 9 + 4) + 2 * 2 * (4 * 4 * 9 + 4) + (4 * 6 * 9 + 6)


def test_replace_section_keeps_other_sections() -> None:
    other = "# Results\n\n<!-- diversity:start -->\nD\n<!-- diversity:end -->\n"
    once = replace_section(other, "## Quality\nA\n")
    assert once.startswith(other.rstrip("\n")) and f"{START_MARKER}\n## Quality\nA\n{END_MARKER}" in once
    twice = replace_section(once, "## Quality\nB\n")
    assert twice.count(START_MARKER) == 1 and "\nA\n" not in twice and "\nB\n" in twice
    assert twice.replace("B", "A") == once
    assert replace_section("", "x").count(END_MARKER) == 1


@pytest.mark.slow  # ~10 s on an idle 2-core machine (simulation, two synthesis runs, three tiny trainings)
def test_quick_report_writes_every_row_with_finite_numbers(tiny_bundle: str, tmp_path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nother section\n")
    settings = QualitySettings.quick_settings(size=48, timing_size=48, ablation_iterations=1, cnn_iterations=2)
    report = run_quality_report(tiny_bundle, tmp_path / "q", settings, results_md=results,
                                command="scripts/quality_report.py --quick", progress="none")
    data = json.loads((tmp_path / "q" / "quality.json").read_text())
    assert set(data["rows"]) == set(ROW_LABELS) | set(EXTRA_ROWS) | {"decoder_rgb_only"}
    for key, row in data["rows"].items():
        for metric in ("mpsnr", "sam", "mrae", "rmse", "mssim"):
            assert row[metric] is not None and math.isfinite(row[metric]), (key, metric)
        assert row["n_pixels"] == 48 * 48
    assert data["timing"]["seconds"] > 0 and data["notes"]["ablation"]["iterations"] == 1
    assert data["notes"]["residual_cnn"]["iterations"] == 2
    assert report["rows"]["ridge_linear"]["mpsnr"] == pytest.approx(data["rows"]["ridge_linear"]["mpsnr"])
    text = results.read_text()
    assert text.startswith("# Results\n\nother section\n") and START_MARKER in text and END_MARKER in text
    assert "scripts/quality_report.py --quick" in text and "| (d) residual CNN" in text


def test_quick_report_with_the_denoiser_time_cnn(tiny_bundle: str, tmp_path) -> None:
    settings = QualitySettings.quick_settings(size=48, timing_size=48, ablation_iterations=1, cnn_iterations=2,
                                              cnn_denoiser_time=True)
    report = run_quality_report(tiny_bundle, tmp_path / "q", settings, progress="none")
    rows, notes = report["rows"], report["notes"]["residual_cnn_denoiser_time"]
    assert set(DENOISER_TIME_ROWS) <= set(rows) and all(math.isfinite(rows[k]["mpsnr"]) for k in DENOISER_TIME_ROWS)
    stage = notes["denoiser_stage"]
    assert stage["seconds_per_iteration"] > 0 and stage["seconds"] == pytest.approx(
        stage["seconds_per_iteration"] * stage["iterations"])
    labels = list(report["labels"])  # right after the CNN's own rows
    assert labels.index("residual_cnn_denoiser_time") == labels.index("residual_cnn_spectral") + 1
    gap = report["targets"]["diffusion_mean_k_spectral_denoiser_time"]["mpsnr_minus_cnn_db"]
    long_cnn = rows["residual_cnn_denoiser_time_spectral"]["mpsnr"]
    assert gap == pytest.approx(rows["diffusion_mean_k"]["mpsnr"] - long_cnn)
    assert "the denoiser-time CNN given the spectral RGB correction" in (tmp_path / "q" / "quality.md").read_text()
