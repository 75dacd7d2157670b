"""Simulated scenes: physics checks, determinism, held-out disjointness, GSD, files."""

import json

import numpy as np
import pytest
import rasterio

from hyperldm_engine.errors import InputError, OutputError
from hyperldm_engine.simulate import CLASS_NAMES, simulate_scene, write_scene
from hyperldm_engine.simulate.landcover import CROP, GRASS, ROOF, TREES, WATER
from hyperldm_engine.spectral.rgb import rgb_from_cube


@pytest.fixture(scope="module")
def scene():
    return simulate_scene(96, 80, seed=6, gsd_m=3.0)


def _band_mean(sc, mask, lo, hi):
    sel = (sc.sensor.centers_nm >= lo) & (sc.sensor.centers_nm <= hi)
    return sc.hsi[sel][:, mask].mean()


def test_shapes_and_types(scene):
    assert scene.hsi.shape == (48, 80, 96) and scene.hsi.dtype == np.float32
    assert scene.rgb.shape == (3, 80, 96) and scene.labels.dtype == np.uint8
    assert scene.labels.max() < len(CLASS_NAMES)
    np.testing.assert_allclose(scene.abundances.sum(0), 1.0, atol=1e-5)
    assert np.isfinite(scene.hsi).all() and scene.hsi.min() > -0.05 and scene.hsi.max() < 1.5


def test_red_edge_in_vegetation(scene):
    veg = np.isin(scene.labels, [TREES, GRASS, CROP])
    assert veg.sum() > 500
    assert _band_mean(scene, veg, 780, 900) > 2 * _band_mean(scene, veg, 650, 680)


@pytest.mark.parametrize("held_out", [False, True])
def test_red_edge_in_mostly_green_pixels_over_seeds(held_out):
    for seed in range(3):
        sc = simulate_scene(64, 64, seed=seed, gsd_m=3.0, held_out=held_out)
        green = [i for i, m in enumerate(sc.endmember_meta) if m["material"] in ("tree", "grass", "crop")]
        mask = sc.abundances[green].sum(0) > 0.6
        assert mask.sum() > 50
        assert _band_mean(sc, mask, 780, 900) > 2 * _band_mean(sc, mask, 650, 680)


def test_water_dark_in_nir():
    for seed in range(6):
        sc = simulate_scene(96, 96, seed=seed, gsd_m=3.0)
        water = sc.labels == WATER
        if water.sum() > 100:
            break
    else:
        pytest.fail("no scene with water among seeds 0-5")
    land = np.isin(sc.labels, [TREES, GRASS, CROP])
    nir = _band_mean(sc, water, 780, 900)
    assert nir < 0.08
    assert nir < 0.3 * _band_mean(sc, land, 780, 900)
    assert nir < _band_mean(sc, water, 500, 600)  # water reflects less in the NIR than in the green


def test_rgb_is_the_cube_through_the_camera(scene):
    np.testing.assert_allclose(scene.rgb, rgb_from_cube(scene.hsi, scene.camera), rtol=1e-6, atol=1e-7)
    direct = np.einsum("cb,byx->cyx", scene.camera.astype(np.float64), scene.hsi.astype(np.float64))
    np.testing.assert_allclose(scene.rgb, direct, atol=1e-5)


def test_mixing_model_reconstructs_the_noise_free_cube(scene):
    clean = scene.illumination[:, None, None] * np.einsum(
        "eb,eyx->byx", scene.endmembers, scene.abundances * scene.shade)
    resid = scene.hsi - clean
    assert np.abs(resid.mean()) < 2e-3 and 1e-4 < resid.std() < 0.01  # noise only


def test_deterministic_per_seed(scene):
    again = simulate_scene(96, 80, seed=6, gsd_m=3.0)
    np.testing.assert_array_equal(scene.hsi, again.hsi)
    np.testing.assert_array_equal(scene.labels, again.labels)
    assert scene.transform == again.transform
    other = simulate_scene(96, 80, seed=7, gsd_m=3.0)
    assert not np.array_equal(scene.labels, other.labels)


def test_held_out_uses_disjoint_spectra_and_stream(scene):
    held = simulate_scene(96, 80, seed=6, gsd_m=3.0, held_out=True)
    assert {m["split"] for m in held.endmember_meta} == {"heldout"}
    assert {m["split"] for m in scene.endmember_meta} == {"train"}
    assert not {m["id"] for m in held.endmember_meta} & {m["id"] for m in scene.endmember_meta}
    assert not np.array_equal(held.labels, scene.labels)


def test_gsd_changes_the_scene():
    fine = simulate_scene(128, 128, seed=3, gsd_m=0.5)
    coarse = simulate_scene(128, 128, seed=3, gsd_m=30.0)
    # label boundaries per pixel: objects of fixed metric size fill coarse pixels with many more edges
    def edges(lab):
        return (np.diff(lab, axis=0) != 0).mean() + (np.diff(lab, axis=1) != 0).mean()
    assert edges(coarse.labels) > 3 * edges(fine.labels)
    assert coarse.transform.a == 30.0 and fine.transform.a == 0.5
    # at 30 m a 3.8 km scene has many classes; buildings are sub-pixel so roof pixels are mixed
    assert len(np.unique(coarse.labels)) >= 6
    roof_em = [i for i, m in enumerate(coarse.endmember_meta) if m["material"] == "roof"]
    roof_frac = coarse.abundances[roof_em].sum(0)
    assert ((roof_frac > 0.05) & (roof_frac < 0.6)).sum() > (roof_frac >= 0.95).sum()
    assert (coarse.labels == ROOF).sum() < (roof_frac > 0.05).sum()


def test_invalid_parameters():
    with pytest.raises(InputError):
        simulate_scene(4, 4, 0)
    with pytest.raises(InputError):
        simulate_scene(32, 32, 0, crs_epsg=4326)
    with pytest.raises(InputError):
        simulate_scene(32, 32, 0, gsd_m=0.0)


def test_write_scene_files(scene, tmp_path):
    paths = write_scene(scene, tmp_path / "s", abundances=True)
    with rasterio.open(paths["hsi"]) as ds:
        assert ds.count == 48 and ds.crs.to_epsg() == 32633 and ds.transform == scene.transform
        assert ds.dtypes[0] == "float32"
        wl = [float(v) for v in ds.tags()["wavelength"].strip("{}").split(",")]
        np.testing.assert_allclose(wl, scene.sensor.centers_nm, atol=1e-3)
        np.testing.assert_array_equal(ds.read(), scene.hsi)
    with rasterio.open(paths["rgb"]) as ds:
        np.testing.assert_array_equal(ds.read(), scene.rgb)
    with rasterio.open(paths["labels"]) as ds:
        assert ds.dtypes[0] == "uint8"
        np.testing.assert_array_equal(ds.read(1), scene.labels)
        assert json.loads(ds.tags()["class_names"]) == list(CLASS_NAMES)
    with rasterio.open(paths["abundances"]) as ds:
        assert ds.count == len(scene.endmember_meta)
    meta = json.loads(paths["metadata"].read_text())
    assert meta["seed"] == 6 and len(meta["endmembers"]) == len(scene.endmember_meta)
    with pytest.raises(OutputError):
        write_scene(scene, tmp_path / "s")
    write_scene(scene, tmp_path / "s", overwrite=True)
    assert not [p for p in (tmp_path / "s").iterdir() if "hyperldm-tmp" in p.name]
