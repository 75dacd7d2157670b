"""Model diagnosis: end to end through the CLI, its known answers against the quality report, its pieces."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hyperldm_cli.main import _register_commands, cli, main

from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.experiments.diagnosis import (
    RGB_CONDITIONS,
    output_to_x0_eps,
    probe_timesteps,
    shuffle_patches,
    shuffle_pixels,
)
from hyperldm_engine.experiments.quality import QualitySettings, heldout_plan

_register_commands()


def _finite_numbers(obj, path="") -> list[str]:
    """Paths of every number in ``obj`` that is missing (None) or not finite."""
    bad = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            bad += _finite_numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            bad += _finite_numbers(v, f"{path}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        bad.append(path)
    return bad


def _diagnose(model: str, out, *extra: str) -> dict:
    r = CliRunner().invoke(cli, ["experiment", "diagnose", "--model", model, "--out", str(out), "--quick",
                                 "--progress", "none", *extra], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads((out / "diagnosis.json").read_text())


def test_diagnose_quick_cli_writes_every_section_with_finite_numbers(tiny_bundle: str, tmp_path) -> None:
    out = tmp_path / "diag"
    d = _diagnose(tiny_bundle, out, "--markdown-copy", str(tmp_path / "docs" / "model-diagnosis.md"))
    for section in ("rows", "sampler_grid", "latents", "denoiser", "findings", "heldout", "peak_definition"):
        assert d[section], section
    assert _finite_numbers({k: d[k] for k in ("rows", "sampler_grid", "latents", "denoiser")}) == []
    rows = d["rows"]
    for key in ("decoder_encoder_latents", "decoder_zero_latent", "decoder_mean_latent", "ridge_poly2",
                *(f"decoder_encoder_latents_rgb_{c}" for c in RGB_CONDITIONS if c != "rgb"),
                *(f"sampled_default_denoiser_rgb_{c}" for c in RGB_CONDITIONS if c != "rgb")):
        assert key in rows, key
        assert {"mpsnr", "mpsnr_band_range", "sam"} <= set(rows[key])
    # every (steps, eta) of the quick grid, one sample and the mean of K, for two scenes
    assert [(g["steps"], g["eta"]) for g in d["sampler_grid"]] == [(2, 0.0), (5, 0.0), (2, 1.0), (5, 1.0)]
    assert rows["sampled_2_eta0"]["n_scored"] == 2 * 2 and rows["sampled_2_eta0_mean"]["n_scored"] == 2
    # the trajectory has one entry per sampler step, the denoiser one per probed timestep and condition
    assert [s["t"] for s in d["latents"]["trajectory"]] == [99, 74, 50, 25, 0]
    assert [row["t"] for row in d["denoiser"]["per_timestep"]] == [0, 50, 99]
    assert all(f"x0_mse_{c}" in row for row in d["denoiser"]["per_timestep"] for c in RGB_CONDITIONS)
    # the instrumented sampling loop is the engine's tile function
    assert d["latents"]["own_loop_vs_tile_function_max_abs"] < 1e-5
    assert d["prediction"] == "epsilon" and len(d["findings"]) >= 5
    md = (out / "diagnosis.md").read_text()
    assert "## What explains the loss" in md and "band range" in md and "peak 1" in md
    copy = (tmp_path / "docs" / "model-diagnosis.md").read_text()
    assert "](../diag/diagnosis_steps.png)" in copy and "](diagnosis_steps.png)" in md
    assert copy.replace("../diag/", "") == f"<!-- diagnosis:start -->\n{md.rstrip()}\n<!-- diagnosis:end -->\n"
    assert "--quick" in d["command"] and d["command"].startswith("hyperldm-engine experiment diagnose")
    for name in ("diagnosis_steps.png", "diagnosis_latents.png"):
        assert (out / name).stat().st_size > 5000


def test_decoder_from_encoder_latents_equals_the_quality_reports_reconstruction(tiny_bundle: str, tmp_path) -> None:
    """Known answer: the same held-out scene, the same decoder, the same peak -> the same MPSNR and SAM."""
    d = _diagnose(tiny_bundle, tmp_path / "diag", "--scenes", "1", "--size", "48")
    r = CliRunner().invoke(cli, ["experiment", "quality", "--model", tiny_bundle, "--out", str(tmp_path / "q"),
                                 "--quick", "--size", "48", "--timing-size", "48", "--ablation-iterations", "1",
                                 "--cnn-iterations", "2", "--progress", "none"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    q = json.loads((tmp_path / "q" / "quality.json").read_text())
    assert q["heldout"]["seeds"] == d["heldout"]["seeds"] == [1000]
    rec, dec = q["rows"]["vqgan_reconstruction"], d["rows"]["decoder_encoder_latents"]
    # equal up to float rounding: the diagnosis runs the models channels-last, as the pipeline does
    assert dec["mpsnr"] == pytest.approx(rec["mpsnr"], abs=1e-5)
    assert dec["sam"] == pytest.approx(rec["sam"], abs=1e-6)
    # the quality report's new row is the diagnosis's zero-latent decoder, and ridge is the same fit
    assert d["rows"]["decoder_zero_latent"]["mpsnr"] == pytest.approx(q["rows"]["decoder_rgb_only"]["mpsnr"],
                                                                       abs=1e-6)
    assert d["rows"]["ridge_poly2"]["mpsnr"] == pytest.approx(q["rows"]["ridge_poly2"]["mpsnr"], abs=1e-9)
    assert "hyperldm-engine experiment quality" in q["command"] and "--quick" in q["command"]
    assert "(a) decoder from the RGB alone (zero latent)" in (tmp_path / "q" / "quality.md").read_text()


def test_quality_heldout_plan_covers_two_gsds_and_the_simulators_landscapes() -> None:
    plan = heldout_plan(QualitySettings())
    assert len(plan) >= 4 and len({gsd for _, gsd, _ in plan}) >= 2
    assert len({seed for seed, _, _ in plan}) == len(plan)
    lands = {land for _, _, land in plan}
    assert lands == {None} or len(lands) == 2


def test_shuffles_are_permutations() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)
    p = shuffle_pixels(x, rng)
    assert not np.array_equal(p, x)
    np.testing.assert_array_equal(np.sort(p.reshape(3, -1), axis=1), x.reshape(3, -1))
    # the same permutation in every channel: pixel vectors stay whole
    assert {tuple(v) for v in p.reshape(3, -1).T} == {tuple(v) for v in x.reshape(3, -1).T}
    s = shuffle_patches(x, 4, rng)
    patches = lambda a: sorted(a[:, i:i + 4, j:j + 4].tobytes() for i in (0, 4) for j in (0, 4))  # noqa: E731
    assert patches(s) == patches(x)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_output_conversion_recovers_x0_and_eps(prediction: str) -> None:
    schedule = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    for t in (0, 40, 99):
        ab = float(schedule.alpha_bar[t])
        x_t = schedule.add_noise(x0, eps, t)
        target = {"epsilon": eps, "x0": x0, "v": ab ** 0.5 * eps - (1 - ab) ** 0.5 * x0}[prediction]
        x0_hat, eps_hat = output_to_x0_eps(target, x_t, ab, prediction)
        tol = 1e-4 if prediction != "epsilon" or t < 90 else 1e-1  # eps -> x0 amplifies float error ~280x
        torch.testing.assert_close(eps_hat, eps, atol=1e-4, rtol=0)
        torch.testing.assert_close(x0_hat, x0, atol=tol, rtol=0)


def test_probe_timesteps_span_the_schedule() -> None:
    assert probe_timesteps(100, 11) == [0, 10, 20, 30, 40, 50, 59, 69, 79, 89, 99]
    assert probe_timesteps(100, 1) == [0, 99]


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_diagnosis_reads_new_style_bundles_as_the_engine_does(tiny_bundle: str, tmp_path, prediction: str) -> None:
    """x0- and v-predicting denoisers: the instrumented loop still equals the engine's tile function."""
    import dataclasses

    from hyperldm_engine.experiments.diagnosis import DiagnosisSettings, run_diagnosis
    from hyperldm_engine.models.bundle import load_bundle, save_bundle

    b = load_bundle(tiny_bundle)
    b.config = b.config.replace(denoiser=dataclasses.replace(b.config.denoiser, prediction=prediction))
    path = save_bundle(tmp_path / f"tiny-{prediction}", b)
    settings = DiagnosisSettings.quick_settings(scenes=1, steps=(3,), etas=(1.0,))
    d = run_diagnosis(str(path), tmp_path / "diag", settings, progress="none")
    assert d["prediction"] == prediction and d["denoiser"]["prediction"] == prediction
    assert d["latents"]["own_loop_vs_tile_function_max_abs"] < 1e-5
    assert _finite_numbers(d["denoiser"]) == []


def test_markdown_copy_replaces_only_its_section_and_refuses_a_file_without_markers(tiny_bundle: str,
                                                                                    tmp_path) -> None:
    doc = tmp_path / "model-diagnosis.md"
    doc.write_text("<!-- diagnosis:start -->\nold numbers\n<!-- diagnosis:end -->\n\n## After the diagnosis\n"
                   "hand-written findings\n")
    _diagnose(tiny_bundle, tmp_path / "diag", "--markdown-copy", str(doc))
    text = doc.read_text()
    assert "old numbers" not in text and "## What explains the loss" in text
    assert text.endswith("<!-- diagnosis:end -->\n\n## After the diagnosis\nhand-written findings\n")
    plain = tmp_path / "notes.md"
    plain.write_text("# My notes\nkeep me\n")
    with pytest.raises(SystemExit) as stop:
        main(["experiment", "diagnose", "--model", tiny_bundle, "--out", str(tmp_path / "diag2"), "--quick",
              "--progress", "none", "--markdown-copy", str(plain)])
    assert stop.value.code == 4 and plain.read_text() == "# My notes\nkeep me\n"
    assert not (tmp_path / "diag2").exists()
