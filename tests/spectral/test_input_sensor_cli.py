"""--input-sensor on diversity and train: resolved from the raster's metadata and recorded."""

from __future__ import annotations

import json

import rasterio
from click.testing import CliRunner
from hyperldm_cli.cmd_diversity import diversity
from hyperldm_cli.cmd_train import _input_sensor

from hyperldm_engine.simulate import simulate_scene, write_scene


def test_diversity_records_the_sensor_from_metadata(tiny_bundle: str, tmp_path) -> None:
    scene = tmp_path / "s2"
    write_scene(simulate_scene(32, 32, seed=1, gsd_m=10.0, input_sensor="sentinel2-msi"), scene)
    with rasterio.open(scene / "rgb.tif") as ds:
        assert ds.tags()["input_sensor"] == "sentinel2-msi"  # what simulate writes
    out = tmp_path / "div"
    r = CliRunner().invoke(diversity, [str(scene / "rgb.tif"), str(out), "--model", tiny_bundle, "--samples", "2",
                                       "--steps", "1", "--tile-size", "32", "--overlap", "8", "--progress", "none"])
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    assert (report["input_sensor"], report["input_sensor_from"]) == ("sentinel2-msi", "metadata")
    with rasterio.open(out / "mean.tif") as ds:
        assert ds.tags()["HYPERLDM_INPUT_SENSOR"] == "sentinel2-msi"
    bad = CliRunner().invoke(diversity, [str(scene / "rgb.tif"), str(tmp_path / "d2"), "--input-sensor", "hubble"])
    assert bad.exit_code != 0


def test_train_input_sensor_provenance(tmp_path) -> None:
    assert _input_sensor("landsat7-etm", None) == {"input_sensor": "landsat7-etm", "input_sensor_from": "option"}
    assert _input_sensor("auto", None)["input_sensor"] == "nikon-5100"
    scene = tmp_path / "l8"
    write_scene(simulate_scene(16, 16, seed=0, input_sensor="landsat8-oli", radiometry="toa"), scene)
    assert _input_sensor("auto", scene / "rgb.tif") == {"input_sensor": "landsat8-oli",
                                                         "input_sensor_from": "metadata"}
