"""Scenes from files (grid checks, derived RGB) and whole training runs to a loadable bundle."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from hyperldm_engine.contract import parse_done
from hyperldm_engine.errors import InputError, Interrupted, OutputError
from hyperldm_engine.models.bundle import load_bundle
from hyperldm_engine.train.data import load_scene
from hyperldm_engine.train.run import train_bundle

from .tiny import tiny_config, tiny_settings


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    out = tmp_path_factory.mktemp("scene")
    write_scene(simulate_scene(64, 64, seed=3, gsd_m=2.0), out)
    return out


def _copy_with(src: Path, dst: Path, **changes) -> Path:
    with rasterio.open(src) as ds:
        profile, data = ds.profile, ds.read()
    profile.update(changes)
    if "width" in changes:
        data = data[:, :, :changes["width"]]
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
    return dst


def test_rgb_derived_through_camera_response_matches_simulator(scene_dir):
    derived = load_scene(scene_dir / "hsi.tif", labels_path=scene_dir / "labels.tif")
    given = load_scene(scene_dir / "hsi.tif", rgb_path=scene_dir / "rgb.tif")
    assert derived.rgb_source["kind"] == "camera_response" and given.rgb_source["kind"] == "file"
    np.testing.assert_allclose(derived.rgb, given.rgb, atol=2e-3)
    assert derived.hsi.shape == (48, 64, 64) and derived.gsd_m == 2.0
    assert derived.labels.min() >= 0 and len(derived.class_names) == derived.labels.max() + 1
    assert all(not n.startswith("class ") for n in derived.class_names)  # names from the tags


def test_rasters_off_the_grid_are_refused_naming_both_files(scene_dir, tmp_path):
    with rasterio.open(scene_dir / "rgb.tif") as ds:
        shifted = ds.transform @ Affine.translation(3, 0)
    bad_rgb = _copy_with(scene_dir / "rgb.tif", tmp_path / "shifted.tif", transform=shifted)
    with pytest.raises(InputError, match=r"shifted\.tif.*hsi\.tif"):
        load_scene(scene_dir / "hsi.tif", rgb_path=bad_rgb)
    bad_labels = _copy_with(scene_dir / "labels.tif", tmp_path / "narrow.tif", width=60)
    with pytest.raises(InputError, match=r"narrow\.tif.*hsi\.tif"):
        load_scene(scene_dir / "hsi.tif", labels_path=bad_labels)


def test_train_bundle_in_process_writes_loadable_bundle_and_report(scene_dir, tmp_path):
    scene = load_scene(scene_dir / "hsi.tif", labels_path=scene_dir / "labels.tif")
    out = tmp_path / "model"
    cfg = tiny_config(n_bands=48, n_library=12, n_classes=len(scene.class_names))
    metrics = train_bundle([scene], out, tiny_settings(patch_size=16), config=cfg, library_size=12,
                           device="cpu", progress="none")
    bundle = load_bundle(out)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "weights.safetensors"]
    assert bundle.class_names == scene.class_names and bundle.latent_scale > 0
    assert bundle.metrics["heldout_patches"] >= 1 and "synthesis" in metrics
    assert 0.0 <= bundle.metrics["classifier_accuracy"] <= 1.0
    assert bundle.rgb["kind"] == "camera" and bundle.rgb_response.shape == (3, 48)
    # the prior of --rgb-correction spectral, measured on the training patches of this model
    assert bundle.consistency_covariance.shape == (48, 48) and bundle.consistency_info["pixels"] > 0
    assert "training pixels of 1 scene" in bundle.consistency_info["source"]
    # and the regression anchor of --rgb-correction anchored (one scene: fitted in-sample, and said so)
    assert bundle.correction_anchor.weights.shape == (10, 48)
    assert bundle.consistency_info["anchor"]["cross_fitted"] is False
    # the scene has labels: the abundances' class-group prior too
    assert bundle.abundance_prior.weights.shape == (10, 6) and bundle.abundance_prior_info["pixels"] > 0
    assert (tmp_path / "model.report.md").is_file() and (tmp_path / "model.loss.png").stat().st_size > 1000
    assert not (tmp_path / "model.checkpoints").exists()
    with pytest.raises(OutputError, match="--overwrite"):  # refused before any training
        train_bundle([scene], out, tiny_settings(patch_size=16), config=cfg, library_size=12, device="cpu",
                     progress="none")


def test_interrupted_run_resumes_when_run_again(scene_dir, tmp_path):
    scene = load_scene(scene_dir / "hsi.tif")
    out = tmp_path / "model"
    cfg = tiny_config(n_bands=48, n_library=12, n_classes=1)
    args = dict(config=cfg, library_size=12, device="cpu", progress="none")
    settings = tiny_settings(patch_size=16, classifier_iterations=0)
    with pytest.raises(Interrupted):
        train_bundle([scene], out, settings, stop_after=5, **args)
    assert not out.exists() and (tmp_path / "model.checkpoints").is_dir()
    train_bundle([scene], out, settings, **args)
    assert load_bundle(out).classifier is None and not (tmp_path / "model.checkpoints").exists()


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


@pytest.mark.slow
def test_cli_end_to_end_subprocess(scene_dir, tmp_path):
    out = tmp_path / "cli_model"
    cmd = [sys.executable, "-m", "hyperldm_cli.main", "train", str(scene_dir / "hsi.tif"), str(out),
           "--labels", str(scene_dir / "labels.tif"), "--iterations", "3", "--classifier-iterations", "2",
           "--patch-size", "32", "--batch-size", "2", "--device", "cpu", "--progress", "json"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    done = [json.loads(line) for line in run.stdout.splitlines() if '"done"' in line]
    assert done and parse_done(done[-1], "train").path("bundle") == str(out)
    assert parse_done(done[-1]).path("report") == f"{out}.report.md"
    assert load_bundle(out).config.preset == "small"  # the CLI default preset
    bad = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    assert bad.returncode == 4 and "already exists" in bad.stderr


DDP_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from train.tiny import tiny_config, tiny_scene, tiny_settings
from hyperldm_engine.train.run import train_bundle
scene = tiny_scene(h=48, w=48, n_bands=48)
train_bundle([scene], {out!r}, tiny_settings(patch_size=16, classifier_iterations=0), config=tiny_config(
    n_bands=48, n_library=12, n_classes=3), library_size=12, device="cpu", progress="none")
"""


def test_torchrun_two_cpu_processes_on_gloo(tmp_path):
    out = tmp_path / "ddp_model"
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).resolve().parents[1]), out=str(out)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    bundle = load_bundle(out)
    assert bundle.training["world_size"] == 2
