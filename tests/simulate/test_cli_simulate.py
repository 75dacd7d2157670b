"""The ``simulate`` command writes the rasters, metadata and preview."""

import json

import pytest
import rasterio
from click.testing import CliRunner
from hyperldm_cli.cmd_simulate import simulate

from hyperldm_engine.contract import parse_done
from hyperldm_engine.errors import OutputError


def test_simulate_command(tmp_path):
    out = tmp_path / "scene"
    res = CliRunner().invoke(simulate, [str(out), "--size", "64", "48", "--seed", "2", "--gsd", "2",
                                        "--crs", "32632", "--held-out", "--abundances", "--progress", "json"])
    assert res.exit_code == 0, res.output
    done = parse_done(json.loads(res.output.strip().splitlines()[-1]), "simulate")
    assert done.path("hsi") == str(out / "hsi.tif") and done.path("preview") == str(out / "preview.png")
    for name in ("hsi.tif", "rgb.tif", "labels.tif", "abundances.tif", "scene.json", "preview.png"):
        assert (out / name).is_file(), name
    assert (out / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with rasterio.open(out / "hsi.tif") as ds:
        assert (ds.width, ds.height, ds.count) == (64, 48, 48) and ds.crs.to_epsg() == 32632
        assert ds.res == (2.0, 2.0)
    assert json.loads((out / "scene.json").read_text())["held_out"] is True
    again = CliRunner().invoke(simulate, [str(out), "--size", "64", "48"])
    assert isinstance(again.exception, OutputError)


@pytest.mark.parametrize("args", [["--size", "4", "4"], ["--gsd", "-1"]])
def test_simulate_bad_arguments(tmp_path, args):
    res = CliRunner().invoke(simulate, [str(tmp_path / "x"), *args])
    assert res.exit_code != 0
