"""Real-world RGB in the simulator: input sensors, radiometric states, landscapes, new surfaces."""

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from hyperldm_cli.cmd_simulate import simulate

from hyperldm_engine.errors import InputError
from hyperldm_engine.simulate import simulate_scene
from hyperldm_engine.simulate.landcover import CLASS_NAMES, CLOUD, SAND, TREES, WATER
from hyperldm_engine.spectral.input_sensors import rgb_response
from hyperldm_engine.spectral.rgb import rgb_from_cube


@pytest.fixture(scope="module")
def coastal():
    return simulate_scene(96, 96, seed=4, gsd_m=10.0, input_sensor="landsat8-oli", landscape="coastal")


def test_surface_rgb_is_the_cube_through_the_input_sensor(coastal):
    resp = rgb_response("landsat8-oli", coastal.sensor)
    np.testing.assert_allclose(coastal.camera, resp)
    np.testing.assert_allclose(coastal.rgb, rgb_from_cube(coastal.hsi, resp), rtol=1e-6, atol=1e-7)
    assert coastal.params["input_sensor"] == "landsat8-oli" and coastal.params["radiometry"] == "surface"
    assert coastal.params["landscape"] == "coastal"


def test_coastal_scene_has_modelled_water_and_sand(coastal):
    assert (coastal.labels == WATER).mean() > 0.1
    assert (coastal.labels == SAND).sum() > 0
    ids = [m["id"] for m in coastal.endmember_meta]
    assert {"model:water:deep", "model:water:shore", "model:water:shallow", "model:cloud"} <= set(ids)
    sel = coastal.sensor.centers_nm
    deep = coastal.endmembers[ids.index("model:water:deep")]
    assert deep[sel > 750].mean() < deep[sel < 600].mean()  # water darkest in the NIR


def test_same_scene_in_every_radiometric_state():
    kw = {"gsd_m": 20.0, "input_sensor": "sentinel2-msi", "landscape": "forest"}
    surf = simulate_scene(64, 64, seed=2, radiometry="surface", **kw)
    toa = simulate_scene(64, 64, seed=2, radiometry="toa", **kw)
    cam = simulate_scene(64, 64, seed=2, radiometry="camera", **kw)
    np.testing.assert_array_equal(surf.hsi, toa.hsi)  # the cube does not depend on the RGB state
    np.testing.assert_array_equal(surf.hsi, cam.hsi)
    # TOA: path radiance brightens dark pixels, most in the blue
    dark = surf.rgb.sum(0) < np.quantile(surf.rgb.sum(0), 0.2)
    norm = 1.0 if toa.params["sun_normalised"] else np.cos(np.radians(toa.params["sun_zenith_deg"]))
    gain = toa.rgb[:, dark].mean(1) / norm - surf.rgb[:, dark].mean(1)
    assert gain[2] > gain[0] > 0
    # camera: quantised 0-1 values
    assert cam.params["bits"] in (8, 16) and cam.rgb.min() >= 0.0 and cam.rgb.max() <= 1.0
    q = 2 ** cam.params["bits"] - 1
    np.testing.assert_allclose(cam.rgb * q, np.round(cam.rgb * q), atol=2e-3)


def test_clouds_are_bright_and_flat_and_cast_shadows():
    for seed in range(12):
        sc = simulate_scene(96, 96, seed=seed, gsd_m=30.0, input_sensor="landsat8-oli", landscape="mixed")
        if (sc.labels == CLOUD).mean() > 0.05:
            break
    else:
        pytest.fail("no cloudy scene among 12 seeds")
    cloud = sc.labels == CLOUD
    spec = sc.hsi[:, cloud].mean(1) / sc.illumination
    assert spec.mean() > 0.3 and spec.max() / spec.min() < 1.6  # white
    assert sc.params["cloud_height_m"] > 0
    assert sc.shade[~cloud].min() < 0.6  # shadowed ground somewhere


def test_forest_and_mixed_sensor():
    sc = simulate_scene(64, 64, seed=1, gsd_m=5.0, input_sensor="mixed", radiometry="mixed", landscape="forest")
    assert (sc.labels == TREES).mean() > 0.4
    assert sc.params["radiometry"] in ("surface", "toa", "camera")
    assert sc.params["input_sensor"] in ("generic-camera", "nikon-5100", "sigma-sdmerill", "sentinel2-msi",
                                         "sentinel2b-msi", "landsat8-oli", "landsat7-etm")
    assert len(sc.class_names) == len(CLASS_NAMES)


def test_bad_options():
    with pytest.raises(InputError, match="radiometry"):
        simulate_scene(16, 16, seed=0, radiometry="l1c")
    with pytest.raises(InputError, match="landscape"):
        simulate_scene(16, 16, seed=0, landscape="desert")
    with pytest.raises(InputError, match="unknown input sensor"):
        simulate_scene(16, 16, seed=0, input_sensor="hubble")


def test_simulate_cli_options_round_trip(tmp_path):
    out = tmp_path / "s"
    res = CliRunner().invoke(simulate, [str(out), "--size", "48", "40", "--seed", "3", "--gsd", "30",
                                        "--input-sensor", "landsat8-oli", "--radiometry", "toa",
                                        "--landscape", "agricultural", "--progress", "none"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "scene.json").read_text())
    p = meta["params"]
    assert (p["input_sensor"], p["radiometry"], p["landscape"]) == ("landsat8-oli", "toa", "agricultural")
    assert "tau550" in p and "water" in p
    with rasterio.open(out / "rgb.tif") as ds:
        tags = ds.tags()
        assert tags["input_sensor"] == "landsat8-oli" and tags["radiometry"] == "toa"
        assert "top-of-atmosphere" in tags["units"]
    again = simulate_scene(48, 40, seed=3, gsd_m=30.0, input_sensor="landsat8-oli", radiometry="toa",
                           landscape="agricultural")
    with rasterio.open(out / "rgb.tif") as ds:
        np.testing.assert_allclose(ds.read(), again.rgb, rtol=1e-6)
    bad = CliRunner().invoke(simulate, [str(tmp_path / "b"), "--radiometry", "l1c"])
    assert bad.exit_code != 0
