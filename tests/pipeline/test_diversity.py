"""``hyperldm-engine diversity``: spread / SDM pieces with known answers, identical samples, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from hyperldm_engine.contract import DIVERSITY_FIGURES, parse_done
from hyperldm_engine.pipeline import diversity as div
from hyperldm_engine.simulate.scene import simulate_scene, write_scene


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scene") / "sim"
    write_scene(simulate_scene(40, 32, seed=3, held_out=True), out)
    return out


def _request(h: int = 8, w: int = 8):
    from rasterio.windows import Window

    from hyperldm_engine.tiling.runner import TileRequest

    return TileRequest(window=Window(0, 0, w, h), rgb=np.zeros((3, h, w), np.float32), mask=np.ones((h, w), bool),
                       row=0, col=0, latent_row0=0, latent_col0=0, align=1)


def _softmax_classifier(cubes: np.ndarray) -> np.ndarray:
    logits = np.stack([cubes[:, 0] * 20, cubes[:, 1] * 20, cubes[:, 2] * 20], axis=1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_tile_fn_identical_and_different_samples() -> None:
    rng = np.random.default_rng(1)
    cube = rng.random((5, 8, 8)).astype(np.float32)
    same = div.DiversityTileFn(lambda r: {"s0": cube, "s1": cube, "s2": cube}, 3, 3, (2, 1, 0),
                               classify=_softmax_classifier, write_samples=True)
    out = same(_request())
    assert np.all(out["sdm"] == 0.0) and np.all(out["spread"] == 0.0)
    np.testing.assert_array_equal(out["mean"], cube)
    np.testing.assert_array_equal(out["s2"], cube)
    np.testing.assert_array_equal(out["tc0"], cube[[2, 1, 0]])
    other = rng.random((5, 8, 8)).astype(np.float32)
    diff = div.DiversityTileFn(lambda r: {"s0": cube, "s1": other}, 2, 3, (2, 1, 0), classify=_softmax_classifier)
    out = diff(_request())
    assert out["sdm"].mean() > 0.01 and out["spread"][1].mean() > 0
    picks = div.PixelPicks(3)
    picks.reduce(out)  # the reduce step the runner applies in merge order
    assert set(picks.best) >= {"highest spread", "lowest spread"}


class _IdenticalSynth:
    """Stands in for SynthesisTileFn: K identical cubes that follow the RGB (so classes vary)."""

    def __init__(self, bundle_path, options, statistics, device="cpu", **consistency):
        self.k = options.samples

    def __call__(self, request):
        rgb = np.nan_to_num(request.rgb)
        cube = np.concatenate([np.repeat(rgb[c:c + 1], 16, axis=0) for c in (2, 1, 0)])
        return {f"s{k}": cube.astype(np.float32) for k in range(self.k)}


def test_identical_samples_give_sdm_exactly_one(tiny_bundle: str, scene_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(div, "SynthesisTileFn", _IdenticalSynth)
    classifier = load_classifier(tiny_bundle)

    def classify(cubes: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return classifier.probabilities_cube(torch.from_numpy(cubes)).numpy()

    orig_init = div.DiversityTileFn.__post_init__

    def post_init(self):
        orig_init(self)
        self.classify = classify

    monkeypatch.setattr(div.DiversityTileFn, "__post_init__", post_init)
    job = div.DiversityJob(str(scene_dir / "rgb.tif"), str(tmp_path / "out"), tiny_bundle,
                           sampling=div.SamplingOptions(samples=3, steps=1), tile=32, overlap=8)
    report = div.run_diversity(job, progress_mode="none")
    assert report["sdm"] == 1.0 and report["sdm_is_variant"] >= 1.0
    assert report["sd"] >= 1.0
    with rasterio.open(tmp_path / "out" / div.SPREAD) as ds:
        assert np.all(ds.read() == 0.0)


def load_classifier(path: str):
    from hyperldm_engine.models.bundle import load_bundle

    return load_bundle(path).classifier.eval()


def test_cli_end_to_end(tiny_bundle: str, scene_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "div"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "hyperldm_cli.main", "diversity", str(scene_dir / "rgb.tif"), str(out),
           "--model", tiny_bundle, "--samples", "2", "--steps", "2", "--tile-size", "32", "--overlap", "8",
           "--write-samples", "--progress", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    done = parse_done(json.loads(r.stdout.strip().splitlines()[-1]), "diversity")
    for key in ("mean", "spread", "sd_map", "sdm_map", "report_json", "report_md", "report_html"):
        assert Path(done.path(key)).is_file(), key
    assert sorted(Path(p).name for p in done.paths("figures")) == sorted(DIVERSITY_FIGURES)
    assert done.paths("samples") == [str(out / "sample_0.tif"), str(out / "sample_1.tif")]
    report = json.loads((out / "report.json").read_text())
    for key in ("sd", "sd_present_mean", "sdm", "sdm_is_variant", "samples", "seed", "model", "classes", "timings"):
        assert key in report, key
    assert report["sdm"] >= 1.0 and report["sdm"] <= 2.0 + 1e-9  # primary SDM is bounded by K
    assert report["sd"] >= 1.0 and done.number("sdm") == pytest.approx(report["sdm"])
    with rasterio.open(scene_dir / "rgb.tif") as ref:
        for name, count in (("mean.tif", 48), ("spread.tif", 2), ("sd_map.tif", 1), ("sdm_map.tif", 1),
                            ("sample_0.tif", 48), ("sample_1.tif", 48)):
            with rasterio.open(out / name) as ds:
                assert ds.count == count and ds.crs == ref.crs and ds.transform == ref.transform, name
                assert (ds.width, ds.height) == (40, 32)
        with rasterio.open(out / "mean.tif") as ds:
            assert "Nanometers" in ds.descriptions[0]
            mean = ds.read()
    with rasterio.open(out / "sample_0.tif") as a, rasterio.open(out / "sample_1.tif") as b:
        np.testing.assert_allclose(mean, (a.read() + b.read()) / 2, atol=1e-5)
    html = (out / "report.html").read_text()
    for png in report["figures"].values():
        assert png in html and (out / png).is_file()
    assert not any(p.name.startswith(".") for p in out.iterdir())


def test_the_samples_measured_are_the_cubes_synthesize_writes(tiny_bundle: str, scene_dir: Path,
                                                              tmp_path: Path) -> None:
    """Diversity makes its samples RGB-consistent as synthesize does (auto: on for a known sensor), so its
    samples are synthesize's to float precision and reproduce the input RGB; --rgb-consistency off is
    recorded and leaves them as decoded."""
    from hyperldm_engine.api import diversity, synthesize
    from hyperldm_engine.spectral.input_sensors import rgb_response
    from hyperldm_engine.spectral.sensor import default_sensor

    common = dict(model=tiny_bundle, samples=2, seed=0, steps=2, tile_size=32, overlap=8)
    report = diversity(scene_dir / "rgb.tif", tmp_path / "on", write_samples=True, **common)
    off = diversity(scene_dir / "rgb.tif", tmp_path / "off", write_samples=True, rgb_consistency="off", **common)
    written = synthesize(scene_dir / "rgb.tif", tmp_path / "syn.tif", **common)
    assert (report["rgb_consistency"], off["rgb_consistency"], off["rgb_correction"]) == ("on", "off", "none")
    assert report["rgb_correction"] in ("ensemble", "anchored")
    response = rgb_response(report["input_sensor"], default_sensor())
    with rasterio.open(scene_dir / "rgb.tif") as ds:
        rgb = ds.read().astype(np.float64)
    for s in range(2):
        with rasterio.open(tmp_path / "on" / f"sample_{s}.tif") as a, rasterio.open(written[s]) as b, \
                rasterio.open(tmp_path / "off" / f"sample_{s}.tif") as c:
            on, syn, raw = a.read().astype(np.float64), b.read().astype(np.float64), c.read().astype(np.float64)
            assert a.tags()["HYPERLDM_RGB_CORRECTION"] == report["rgb_correction"]
            assert a.tags()["HYPERLDM_RGB_TARGET"] == "the input RGB"
        np.testing.assert_allclose(on, syn, atol=1e-5)
        assert np.abs(np.tensordot(response, on, 1) - rgb).max() < 1e-3
        assert np.abs(np.tensordot(response, raw, 1) - rgb).mean() > 1e-3


def test_overwrite_replaces_a_previous_run_and_without_it_nothing_is_touched(tiny_bundle: str, scene_dir: Path,
                                                                             tmp_path: Path) -> None:
    """A second run into the same folder: refused without --overwrite (the first run's files unchanged),
    done with it (a first run's figures once broke the planning: "two outputs ... the same path")."""
    from hyperldm_engine.api import diversity
    from hyperldm_engine.errors import OutputError

    common = dict(model=tiny_bundle, samples=2, steps=1, tile_size=32, overlap=8)
    out = tmp_path / "div"
    first = diversity(scene_dir / "rgb.tif", out, seed=0, **common)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert set(DIVERSITY_FIGURES) <= set(before)
    with pytest.raises(OutputError, match="--overwrite"):
        diversity(scene_dir / "rgb.tif", out, seed=1, **common)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    second = diversity(scene_dir / "rgb.tif", out, seed=1, overwrite=True, **common)
    assert second["seed"] == 1 and json.loads((out / "report.json").read_text())["seed"] == 1
    assert first["seed"] == 0 and set(DIVERSITY_FIGURES) <= {p.name for p in out.iterdir()}
