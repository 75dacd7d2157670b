"""The Python API (issue 21 item 7): the CLI's commands as functions with the same options and results."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import rasterio

import hyperldm_engine
from hyperldm_engine.errors import InputError
from hyperldm_engine.io.writer import INT_SCALE

from .conftest import FAST_SYNTH, rgb_data, write_raster

# CLI parameter name -> API keyword, where they differ
RENAMED = {"creation_options": "co", "progress_mode": "progress", "abundance_groups": "abundance_grouping"}


@pytest.mark.parametrize("name", ["synthesize", "diversity"])
def test_api_has_every_cli_option(name):
    from hyperldm_cli.main import _register_commands, cli

    _register_commands()
    command = cli.commands[name]
    api = inspect.signature(getattr(hyperldm_engine, name)).parameters
    has_kwargs = any(p.kind is p.VAR_KEYWORD for p in api.values())
    for param in command.params:
        key = RENAMED.get(param.name, param.name)
        assert key in api or (has_kwargs and key == "abundance_grouping"), f"{name}: no keyword for --{param.name}"


def test_synthesize_and_read_cube_match_the_cli(tmp_path, tiny_bundle, cli):
    rgb = write_raster(tmp_path / "rgb.tif", rgb_data())
    fast = dict(tile_size=32, overlap=8, steps=2)
    result = cli(["synthesize", rgb, tmp_path / "cli.tif", "--model", tiny_bundle, "--seed", "3",
                  *[x for kv in FAST_SYNTH.items() for x in kv]])
    assert result.code == 0, result.stderr
    paths = hyperldm_engine.synthesize(rgb, tmp_path / "api.tif", model=tiny_bundle, seed=3, **fast)
    assert paths == [tmp_path / "api.tif"]
    with rasterio.open(tmp_path / "cli.tif") as a, rasterio.open(paths[0]) as b:
        np.testing.assert_array_equal(a.read(), b.read())
    u16 = hyperldm_engine.synthesize(rgb, tmp_path / "u16.tif", model=tiny_bundle, seed=3, dtype="uint16",
                                     output_sensor="sentinel2-msi", **fast)[0]
    ref = hyperldm_engine.read_cube(hyperldm_engine.synthesize(
        rgb, tmp_path / "f32.tif", model=tiny_bundle, seed=3, output_sensor="sentinel2-msi", **fast)[0])
    cube = hyperldm_engine.read_cube(u16)
    assert cube.data.dtype == np.float32 and cube.data.shape == (10, 64, 64)
    assert cube.band_names[8].startswith("B8A (")
    valid = np.isfinite(ref.data)
    assert np.array_equal(valid, np.isfinite(cube.data)) and valid.any()
    assert np.abs(cube.data[valid] - ref.data[valid]).max() <= INT_SCALE + 1e-6  # GDAL's band scale applied
    np.testing.assert_allclose(cube.wavelengths_nm, ref.wavelengths_nm)
    with rasterio.open(u16) as ds:
        assert cube.x[0] == pytest.approx(ds.xy(0, 0)[0]) and cube.y[0] == pytest.approx(ds.xy(0, 0)[1])
        assert cube.crs == ds.crs


def test_api_errors_are_the_clis(tmp_path, tiny_bundle):
    with pytest.raises(InputError, match=r"not found|does not exist"):
        hyperldm_engine.synthesize(tmp_path / "missing.tif", tmp_path / "o.tif", model=tiny_bundle)


def test_diversity_returns_the_report(tmp_path, tiny_bundle):
    rgb = write_raster(tmp_path / "rgb.tif", rgb_data(32, 32))
    report = hyperldm_engine.diversity(rgb, tmp_path / "div", model=tiny_bundle, samples=2, steps=2,
                                       tile_size=32, overlap=8)
    assert report["samples"] == 2 and report["sd"] >= 1.0 and (tmp_path / "div" / "report.json").exists()
