"""Input harmonisation: the affine fit, its choice per input, the scene statistics and the CLI path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from hyperldm_cli.cmd_synthesize import synthesize

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.raster import harmonised, open_rgb, scene_statistics
from hyperldm_engine.simulate import simulate_scene, write_scene
from hyperldm_engine.simulate.harmonise import (
    OWN_SURFACE,
    choose_harmonisation,
    fit_affine,
    surface_estimate,
    training_camera,
)
from hyperldm_engine.spectral.input_sensors import get_input_sensor, rgb_response
from hyperldm_engine.spectral.library import decoder_library
from hyperldm_engine.spectral.rgb import camera_response
from hyperldm_engine.spectral.sensor import default_sensor

NIKON = "Nikon 5100 (NPL)"


def _choose(mode: str = "auto", sensor: str = "landsat8-oli", source: str = "metadata", tags: dict | None = None,
            camera: str | None = NIKON, keep_haze: bool = False):
    s = default_sensor()
    return choose_harmonisation(mode, sensor, source, tags or {}, camera, s.centers_nm, s.fwhm_nm, keep_haze)


def test_fit_affine_recovers_a_known_map() -> None:
    rng = np.random.default_rng(0)
    m = np.array([[0.5, 0.4, 0.1, -0.02], [0.0, 0.6, 0.4, 0.01], [-0.05, 0.05, 1.0, 0.0]])
    x = rng.uniform(0, 1, (3, 500))
    fitted, rmse = fit_affine(x, m[:, :3] @ x + m[:, 3:])
    np.testing.assert_allclose(fitted, m, atol=1e-10)
    assert rmse.max() < 1e-10


def test_harmonised_keeps_nan_clips_at_zero_and_passes_through_without_a_map() -> None:
    rgb = np.array([[0.2, np.nan], [0.1, 0.0], [0.05, 0.0]], np.float32)  # (3, 2)
    shift = [[1, 0, 0, -0.1], [0, 1, 0, -0.2], [0, 0, 1, 0.0]]
    out = harmonised(rgb, shift)
    assert np.isnan(out[0, 1])
    np.testing.assert_allclose(out[:, 0], [0.1, 0.0, 0.05], atol=1e-7)  # 0.1 - 0.2 clipped to 0
    assert harmonised(rgb, None) is not None and np.array_equal(harmonised(rgb, None), rgb, equal_nan=True)


def test_landsat_surface_colours_become_the_training_cameras() -> None:
    """Bandpass adjustment: OLI surface RGB of library spectra mapped onto the Nikon's RGB of the same spectra."""
    h = _choose("surface")
    assert h is not None and (h.input_sensor, h.radiometry, h.camera) == ("landsat8-oli", "surface", NIKON)
    assert max(h.fit_rmse) < 0.01
    sensor = default_sensor()
    R, _ = decoder_library(sensor)
    oli = get_input_sensor("landsat8-oli").rgb(sensor) @ R  # (3, n_library)
    nikon = camera_response(sensor, NIKON) @ R
    before = np.abs(oli - nikon).mean()
    after = np.abs(harmonised(oli, h.as_list()) - nikon).mean()
    assert after < 0.01 < before and after < before / 3, (before, after)


def test_toa_map_removes_path_radiance() -> None:
    h = _choose(tags={"radiometry": "toa"})
    assert h is not None and h.radiometry == "toa" and not h.bandpass_only
    offsets = np.asarray(h.matrix)[:, 3]
    assert (offsets < 0).all()  # path radiance brightens every channel of a TOA image
    assert _choose("surface", tags={"radiometry": "toa"}).radiometry == "surface"  # said outright wins


def test_toa_input_whose_haze_the_anchor_takes_gets_the_bandpass_map_alone() -> None:
    """keep_haze (the cubes centred on an anchor measured on hazy TOA RGB): no average atmosphere is
    subtracted, which would clip the darks of a scene with less haze than the average to zero
    (docs/model-diagnosis.md, "Top-of-atmosphere input: the haze left to the anchored correction")."""
    surface = _choose("surface")
    toa = _choose(tags={"radiometry": "toa"}, keep_haze=True)
    assert toa is not None and toa.radiometry == "toa" and toa.bandpass_only and not surface.bandpass_only
    assert toa.as_list() == surface.as_list()
    assert "bandpass only: the haze kept for the TOA anchor" in toa.describe()
    dark_toa = np.array([[0.03], [0.045], [0.06]], np.float32)  # forest in the real Landsat 8 crop (B4, B3, B2)
    assert (harmonised(dark_toa, toa.as_list()) > 0.005).all()
    assert harmonised(dark_toa, _choose(tags={"radiometry": "toa"}).as_list())[2, 0] == 0.0  # the average: clipped
    assert _choose(keep_haze=True).bandpass_only is False  # surface input: the same map, nothing kept or removed
    assert _choose("toa", sensor="nikon-5100", keep_haze=True) is None  # the training camera: nothing to map
    assert _choose("toa", sensor="nikon-5100") is not None  # ... unless its haze is to be removed


@pytest.mark.parametrize("kwargs", [
    {"mode": "off"},
    {"source": "default"},  # the input sensor is not known
    {"camera": None},  # a bundle trained on a user's rasters
    {"tags": {"radiometry": "camera"}},  # gamma-encoded values: not affine
    {"sensor": "nikon-5100"},  # already the training camera
])
def test_no_map_where_none_applies(kwargs: dict) -> None:
    assert _choose(**kwargs) is None


def test_unknown_mode_and_training_camera() -> None:
    with pytest.raises(InputError, match="--harmonise"):
        _choose("lab")
    assert training_camera({"kind": "camera", "camera": NIKON}) == NIKON
    assert training_camera({"kind": "camera", "camera": "estimated from the given RGB rasters"}) is None
    assert training_camera(None) is None


def test_scene_white_is_taken_after_the_map(tmp_path) -> None:
    path = tmp_path / "rgb.tif"
    data = np.full((3, 8, 8), 0.4, np.float32)
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=3, dtype="float32") as ds:
        ds.write(data)
    double = [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]]
    with open_rgb(path) as reader:
        assert scene_statistics(reader).white == pytest.approx(0.4)
        stats = scene_statistics(reader, harmonisation=double)
    assert stats.white == pytest.approx(0.8) and stats.harmonisation == double


def test_cli_harmonises_a_landsat_toa_input(tmp_path) -> None:
    """The tiny bundle records the Nikon camera: a Landsat 8 TOA input is mapped, --harmonise off is not."""
    from tiny_models import build_tiny_bundle

    bundle = build_tiny_bundle(tmp_path / "tiny")
    scene = tmp_path / "l8"
    write_scene(simulate_scene(32, 32, seed=3, gsd_m=30.0, input_sensor="landsat8-oli", radiometry="toa"), scene)
    outs = {}
    for mode in ("auto", "off"):
        out = tmp_path / f"{mode}.tif"
        r = CliRunner().invoke(synthesize, [str(scene / "rgb.tif"), str(out), "--model", str(bundle), "--steps", "1",
                                            "--harmonise", mode, "--progress", "json"])
        assert r.exit_code == 0, r.output
        info = [json.loads(line)["message"] for line in r.output.splitlines()
                if line.startswith("{") and json.loads(line).get("event") == "info"]
        said = next(m for m in info if "model input" in m)
        expected = "landsat8-oli (toa) mapped onto Nikon 5100 (NPL)" if mode == "auto" else "model input as read"
        assert expected in said, said
        with rasterio.open(out) as ds:
            outs[mode] = ds.read()
            recorded = json.loads(ds.tags()["HYPERLDM_HARMONISATION"])
        assert (recorded is None) == (mode == "off") and (mode == "off" or np.asarray(recorded).shape == (3, 4))
    assert not np.allclose(outs["auto"], outs["off"])


def test_cli_keeps_the_haze_of_toa_input_only_for_the_toa_anchor(tmp_path) -> None:
    """The default model has a TOA anchor: auto (anchored) maps a Landsat 8 TOA input by its bands alone and
    says so; --rgb-correction minimum removes the average path radiance as before."""
    scene = tmp_path / "l8"
    write_scene(simulate_scene(32, 32, seed=3, gsd_m=30.0, input_sensor="landsat8-oli", radiometry="toa"), scene)
    recorded = {}
    for correction in ("auto", "minimum"):
        out = tmp_path / f"{correction}.tif"
        r = CliRunner().invoke(synthesize, [str(scene / "rgb.tif"), str(out), "--steps", "1", "--rgb-correction",
                                            correction, "--progress", "json"])
        assert r.exit_code == 0, r.output
        said = next(json.loads(line)["message"] for line in r.output.splitlines() if line.startswith("{")
                    and json.loads(line).get("event") == "info" and "model input" in json.loads(line)["message"])
        assert "landsat8-oli (toa) mapped onto Nikon 5100 (NPL)" in said, said
        assert ("bandpass only: the haze kept for the TOA anchor" in said) == (correction == "auto"), said
        with rasterio.open(out) as ds:
            recorded[correction] = np.asarray(json.loads(ds.tags()["HYPERLDM_HARMONISATION"]))
            assert ds.tags()["HYPERLDM_RGB_CORRECTION"] == ("anchored" if correction == "auto" else "minimum")
            assert ds.tags()["HYPERLDM_MODEL_INPUT"] in said  # the provenance says what the model saw
    assert np.abs(recorded["auto"][:, 3]).max() < 0.01 < np.abs(recorded["minimum"][:, 3]).max()


def test_the_fit_is_cached_on_disk_and_a_bad_cache_file_is_fitted_again(tmp_path, monkeypatch) -> None:
    from hyperldm_engine.simulate import harmonise

    monkeypatch.setenv("HYPERLDM_CACHE", str(tmp_path / "cache"))
    s = default_sensor()
    args = ("landsat8-oli", "toa", NIKON, tuple(map(float, s.centers_nm)), tuple(map(float, s.fwhm_nm)))
    harmonise.fit_harmonisation.cache_clear()
    fitted = harmonise.fit_harmonisation(*args)
    path = harmonise.cache_path(*args)
    assert path.is_file() and path.is_relative_to(tmp_path / "cache" / "harmonise")
    assert harmonise.cache_path("landsat8-oli", "surface", *args[2:]) != path  # keyed by radiometry too

    def no_fit(*_a):
        raise AssertionError("fitted again although the cache holds the map")

    monkeypatch.setattr(harmonise, "fit_on_scenes", no_fit)
    harmonise.fit_harmonisation.cache_clear()  # a new process: only the disk remembers
    assert harmonise.fit_harmonisation(*args) == fitted
    monkeypatch.undo()
    monkeypatch.setenv("HYPERLDM_CACHE", str(tmp_path / "cache"))
    path.write_text('{"matrix": [[1, 2]]')  # truncated: refitted and rewritten
    harmonise.fit_harmonisation.cache_clear()
    np.testing.assert_allclose(harmonise.fit_harmonisation(*args).as_list(), fitted.as_list(), atol=1e-12)
    np.testing.assert_allclose(json.loads(path.read_text())["matrix"], fitted.as_list(), atol=1e-12)
    # a cache that cannot be written does not fail the run
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HYPERLDM_CACHE", str(blocker))
    harmonise.fit_harmonisation.cache_clear()
    np.testing.assert_allclose(harmonise.fit_harmonisation(*args).as_list(), fitted.as_list(), atol=1e-12)
    harmonise.fit_harmonisation.cache_clear()


def test_surface_estimate_brings_toa_rgb_near_the_sensors_own_surface_rgb() -> None:
    """The RGB consistency target of TOA input: on held-out simulated Landsat 8 TOA scenes (atmosphere
    drawn per scene) the map's output is closer to the OLI surface RGB of the scenes' cubes than the TOA
    RGB is, on each scene and by over a quarter on average (0.034 -> 0.021 mean absolute error); an
    average map, so a hazy scene keeps some of its path radiance."""
    sensor = default_sensor()
    est = surface_estimate("landsat8-oli", sensor.centers_nm, sensor.fwhm_nm)
    assert (est.input_sensor, est.radiometry, est.camera) == ("landsat8-oli", "toa", OWN_SURFACE)
    assert "onto its own surface colours" in est.describe()
    assert (np.asarray(est.matrix)[:, 3] < 0).all()  # path radiance taken off every channel
    before, after = [], []
    for seed in (50, 51, 52, 53):
        sc = simulate_scene(64, 64, seed=seed, gsd_m=30.0, input_sensor="landsat8-oli", radiometry="toa",
                            landscape="mixed", held_out=True)
        truth = np.tensordot(rgb_response("landsat8-oli", sensor), sc.hsi, 1)
        ok = np.all(np.isfinite(truth), 0) & np.all(np.isfinite(sc.rgb), 0)
        before.append(np.abs(sc.rgb - truth)[:, ok].mean())
        after.append(np.abs(harmonised(sc.rgb, est.as_list()) - truth)[:, ok].mean())
    assert np.mean(after) < 0.75 * np.mean(before), (before, after)
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)


def test_toa_input_is_corrected_towards_its_surface_estimate_as_far_as_its_error_allows(tmp_path) -> None:
    """On a Landsat 8 TOA input the written cube, integrated through OLI's response, lies near the surface
    estimate of the input RGB (within the estimate's own error), far from the TOA RGB (the cube is surface
    reflectance); with --rgb-correction minimum at one step the update is the Kalman update of the decoded
    cube with the estimate's error covariance, which the tags record."""
    from tiny_models import build_tiny_bundle

    bundle = build_tiny_bundle(tmp_path / "tiny")
    scene = tmp_path / "l8"
    write_scene(simulate_scene(32, 32, seed=3, gsd_m=30.0, input_sensor="landsat8-oli", radiometry="toa"), scene)
    out = tmp_path / "out.tif"
    r = CliRunner().invoke(synthesize, [str(scene / "rgb.tif"), str(out), "--model", str(bundle), "--steps", "1",
                                        "--progress", "json"])
    assert r.exit_code == 0, r.output
    assert "RGB consistency target: the input's surface RGB" in r.output
    sensor = default_sensor()
    est = surface_estimate("landsat8-oli", sensor.centers_nm, sensor.fwhm_nm)
    with rasterio.open(scene / "rgb.tif") as ds:
        rgb = ds.read().astype(np.float32)
    with rasterio.open(out) as ds:
        cube = ds.read().astype(np.float64)
        tag = ds.tags()["HYPERLDM_RGB_TARGET"]
    assert tag.startswith("the input's surface RGB estimated from it") and "error RMSE" in tag
    reproduced = np.tensordot(rgb_response("landsat8-oli", sensor), cube, 1)
    target = harmonised(rgb, est.as_list())
    off = np.abs(reproduced - target).mean(axis=(1, 2))
    assert (off < np.asarray(est.fit_rmse)).all(), (off, est.fit_rmse)
    assert np.abs(reproduced - rgb).mean() > 2 * np.abs(reproduced - target).mean()  # no path radiance in it
