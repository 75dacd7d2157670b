"""``hyperldm-engine evaluate`` end to end on tiny rasters."""

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from hyperldm_cli.main import main

from hyperldm_engine.contract import parse_done


def _write(path, array, nodata=None, tags=None):
    profile = dict(driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                   dtype=array.dtype, crs="EPSG:32633", transform=Affine(2, 0, 400000, 0, -2, 5000000),
                   nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        for i in range(1, array.shape[0] + 1):
            if array.shape[0] > 1:
                dst.set_band_description(i, f"b{i} {400 + 50 * i:.1f} nm")
        if tags:
            dst.update_tags(**tags)
    return str(path)


@pytest.fixture()
def rasters(tmp_path):
    rng = np.random.default_rng(5)
    ref = rng.uniform(0.1, 0.6, (3, 30, 25)).astype(np.float32)
    pred = (ref + 0.02 * rng.standard_normal(ref.shape)).astype(np.float32)
    labels = (np.arange(25)[None, :] // 13 * np.ones((30, 1))).astype(np.uint8)[None]
    return (_write(tmp_path / "pred.tif", pred), _write(tmp_path / "ref.tif", ref),
            _write(tmp_path / "labels.tif", labels, tags={"class_names": '{"0": "grass", "1": "road"}'}))


def run(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def test_evaluate_writes_outputs_and_refuses_to_overwrite(rasters, tmp_path, capsys):
    pred, ref, labels = rasters
    out = tmp_path / "eval"
    assert run(["evaluate", pred, ref, "--labels", labels, "--out", str(out), "--progress", "none"]) == 0
    printed = capsys.readouterr().out
    assert "| all |" in printed and "| 1 road |" in printed
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "metrics.md", "per_band_error.png"]
    result = json.loads((out / "metrics.json").read_text())
    assert result["bands"]["wavelengths_nm"] == [450.0, 500.0, 550.0]
    assert [c["name"] for c in result["per_class"]] == ["grass", "road"]
    assert 0.015 < result["overall"]["rmse"] < 0.025
    assert (out / "per_band_error.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 0 grass |" in (out / "metrics.md").read_text()
    # existing folder: refused (exit 4) unless --overwrite
    assert run(["evaluate", pred, ref, "--out", str(out), "--progress", "none"]) == 4
    assert "already exists" in capsys.readouterr().err
    assert run(["evaluate", pred, ref, "--out", str(out), "--progress", "json", "--overwrite"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    done = parse_done(lines[-1], "evaluate")
    assert done.values["n_pixels"] == 750 and done.path("metrics_json") == str(out / "metrics.json")
    assert json.loads((out / "metrics.json").read_text())["per_class"] == []
    assert not [p for p in tmp_path.iterdir() if "hyperldm-tmp" in p.name]


def test_evaluate_user_errors(rasters, tmp_path, capsys):
    pred, _, _ = rasters
    assert run(["evaluate", pred, str(tmp_path / "missing.tif"), "--progress", "none"]) == 2
    assert "missing.tif: the reference raster does not exist" in capsys.readouterr().err
    other = _write(tmp_path / "other.tif", np.zeros((2, 30, 25), np.float32))
    assert run(["evaluate", pred, other, "--out", str(tmp_path / "o"), "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert "pred.tif" in err and "other.tif" in err and "--resample" in err
    assert not (tmp_path / "o").exists()
