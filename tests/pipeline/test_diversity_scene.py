"""``diversity`` through the scene orchestrator: extent, AOI, strips, batching and dask as for synthesize.

In-process, narrow strips and dask workers give bit-identical maps and the same picked pixels (the
picks are a reduce step in the runner's merge order); ``--batch-size`` agrees up to the float
rounding of batched convolutions; ``--extent`` computes and measures only the pixels inside.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from hyperldm_engine.pipeline import diversity as div
from hyperldm_engine.simulate.scene import simulate_scene, write_scene

MAPS = (div.MEAN, div.SPREAD, div.SD_MAP, div.SDM_MAP)


#: the one-thread fixture and the simulated ``rgb`` come from tests/pipeline/conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


def run(rgb: Path, bundle: str, out: Path, **options) -> tuple[dict, dict[str, np.ndarray]]:
    job = div.DiversityJob(str(rgb), str(out), bundle, sampling=div.SamplingOptions(samples=2, steps=1),
                           tile=32, overlap=8, **options)
    report = div.run_diversity(job, progress_mode="none")
    maps = {}
    for name in MAPS:
        with rasterio.open(out / name) as ds:
            maps[name] = ds.read()
    return report, maps


def same_report(a: dict, b: dict) -> None:
    for key in ("sd", "sdm", "sdm_is_variant", "n_pixels", "picked_pixels"):
        assert a[key] == b[key], key


def test_strips_and_dask_workers_are_bit_identical(rgb: Path, tiny_bundle: str, tmp_path: Path) -> None:
    """Slow: a 2-process dask cluster that imports torch."""
    base, maps = run(rgb, tiny_bundle, tmp_path / "base")
    assert base["tiles"]["computed"] > 2 and base["tiles"]["execution"] == "in-process"
    for name, options in (("strips", {"strip_width": 16}), ("dask", {"workers": 2})):
        report, other = run(rgb, tiny_bundle, tmp_path / name, **options)
        for key in MAPS:
            np.testing.assert_array_equal(maps[key], other[key], err_msg=f"{name}: {key}")
        same_report(base, report)
    assert report["tiles"]["execution"] == "dask"


def test_batched_tiles_agree(rgb: Path, tiny_bundle: str, tmp_path: Path) -> None:
    base, maps = run(rgb, tiny_bundle, tmp_path / "base")
    report, other = run(rgb, tiny_bundle, tmp_path / "batched", batch_size=2)
    assert report["tiles"]["execution"] == "batched"
    for key in MAPS:
        np.testing.assert_allclose(maps[key], other[key], atol=1e-4, err_msg=key)
    assert report["sdm"] == pytest.approx(base["sdm"], rel=1e-3)


def test_extent_measures_only_the_pixels_inside(rgb: Path, tiny_bundle: str, tmp_path: Path) -> None:
    with rasterio.open(rgb) as ds:
        left, bottom, _, top = ds.bounds
        res = ds.res[0]
        width, height = ds.width, ds.height
    cols = 20  # the 20 left-most columns
    extent = f"{left},{bottom},{left + cols * res},{top}"
    report, maps = run(rgb, tiny_bundle, tmp_path / "extent", extent=extent)
    assert report["n_pixels"] == cols * height and report["area"]["extent"] == extent
    assert report["tiles"]["skipped"] > 0
    with rasterio.open(tmp_path / "extent" / div.SPREAD) as ds:  # cropped to the extent's pixels
        valid = ds.read_masks(1) > 0
    assert valid.all() and valid.shape == (height, cols) and width > cols
    assert all(pick["col"] < cols for pick in report["picked_pixels"].values())
    dask, other = run(rgb, tiny_bundle, tmp_path / "extent_dask", extent=extent, workers=2)
    same_report(report, dask)
    for key in MAPS:
        np.testing.assert_array_equal(maps[key], other[key], err_msg=key)


def test_aoi_and_the_cli_options(rgb: Path, tiny_bundle: str, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from hyperldm_cli.main import _register_commands, cli

    with rasterio.open(rgb) as ds:
        left, bottom, _, top = ds.bounds
        res, epsg = ds.res[0], ds.crs.to_epsg()
    right = left + 20 * res
    ring = [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
    aoi = tmp_path / "aoi.geojson"  # GeoJSON in the raster's CRS (the legacy "crs" member)
    aoi.write_text(json.dumps({"type": "FeatureCollection",
                               "crs": {"type": "name", "properties": {"name": f"EPSG:{epsg}"}},
                               "features": [{"type": "Feature", "properties": {},
                                             "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    _register_commands()
    result = CliRunner().invoke(cli, ["diversity", str(rgb), str(tmp_path / "cli"), "--model", tiny_bundle,
                                      "--samples", "2", "--steps", "1", "--tile-size", "32", "--overlap", "8",
                                      "--aoi", str(aoi), "--batch-size", "2", "--strip-width", "16",
                                      "--progress", "none"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "cli" / div.REPORT_JSON).read_text())
    assert report["area"]["aoi"] == str(aoi) and report["n_pixels"] == 20 * 40
    assert report["tiles"]["execution"] == "batched"


def test_free_space_is_checked_before_any_work(rgb: Path, tiny_bundle: str, tmp_path: Path, monkeypatch) -> None:
    from collections import namedtuple

    from hyperldm_engine.errors import ResourceError
    from hyperldm_engine.io import writer

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ResourceError, match="not enough disk space"):
        run(rgb, tiny_bundle, tmp_path / "full")
    assert not (tmp_path / "full").exists()


def test_diversity_warns_about_the_pixel_size_as_synthesize_does(tiny_bundle: str, tmp_path: Path) -> None:
    """A 10 m scene for a model trained at 1 m: the same warning event on both commands (the plugin shows it)."""
    from click.testing import CliRunner
    from hyperldm_cli.main import _register_commands, cli

    write_scene(simulate_scene(32, 32, seed=2, gsd_m=10.0), tmp_path / "sim")
    rgb = tmp_path / "sim" / "rgb.tif"
    _register_commands()
    warnings = {}
    for command, out in (("diversity", tmp_path / "div"), ("synthesize", tmp_path / "hsi.tif")):
        result = CliRunner().invoke(cli, [command, str(rgb), str(out), "--model", tiny_bundle, "--steps", "1",
                                          *(["--samples", "2"] if command == "diversity" else []),
                                          "--tile-size", "32", "--overlap", "8", "--progress", "json"])
        assert result.exit_code == 0, result.output
        events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
        warnings[command] = [e["message"] for e in events if e["event"] == "warning" and "GSD" in e["message"]]
    assert warnings["diversity"] == warnings["synthesize"] and "pixel size 10 m" in warnings["diversity"][0]


def test_the_pixel_size_warning_uses_the_training_gsd_range(tmp_path: Path, capsys) -> None:
    """A bundle trained on 0.5-30 m (the default model) does not warn on 30 m input; it names the range."""
    from types import SimpleNamespace

    from tiny_models import build_tiny_bundle

    from hyperldm_engine.models.bundle import load_bundle, save_bundle
    from hyperldm_engine.pipeline.run import _gsd_warning
    from hyperldm_engine.pipeline.synthesize import bundle_summary

    bundle = load_bundle(build_tiny_bundle(tmp_path / "tiny", gsd_m=4.0))
    bundle.training = {**bundle.training, "gsd_range_m": [0.5, 30.0]}
    summary = bundle_summary(save_bundle(tmp_path / "ranged", bundle))
    assert summary["gsd_m"] == [0.5, 30.0]

    def warned(res: float, gsd) -> list[str]:
        reader = SimpleNamespace(has_geotransform=True, has_crs=True, is_geographic=False, res=(res, res),
                                 path="in.tif")
        _gsd_warning(reader, gsd, "json")
        return [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    assert warned(30.0, summary["gsd_m"]) == []
    assert "(0.5-30 m)" in warned(200.0, summary["gsd_m"])[0]
    assert "training GSD (4 m)" in warned(30.0, 4.0)[0]
