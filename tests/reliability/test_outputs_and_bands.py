"""Issue 25: folder outputs keep what is not theirs, and band order comes from the file.

Both were silently wrong before: ``--overwrite`` of a folder output deleted every other file in
it, and a B,G,R raster with matching colour interpretation was read as R,G,B.
"""

from __future__ import annotations

import numpy as np
import rasterio

from .cases import bgr_file, write_hsi
from .conftest import FAST_SYNTH, rgb_data, write_raster

FAST = [x for kv in FAST_SYNTH.items() for x in kv]


def test_diversity_overwrite_replaces_only_its_own_files(tmp_path, tiny_bundle, cli):
    rgb = write_raster(tmp_path / "rgb.tif", rgb_data())
    out = tmp_path / "div"
    out.mkdir()
    (out / "keep.txt").write_text("not the engine's")
    (out / "mean.tif").write_bytes(b"an older mean")
    result = cli(["diversity", rgb, out, "--model", tiny_bundle, "--samples", "2", "--overwrite", *FAST])
    assert result.code == 0, result.stderr
    assert (out / "keep.txt").read_text() == "not the engine's"
    with rasterio.open(out / "mean.tif") as ds:
        assert ds.count == 48
    assert (out / "report.json").is_file()


def test_evaluate_overwrite_replaces_only_its_own_files(tmp_path, cli):
    hsi = write_hsi(tmp_path / "hsi.tif")
    out = tmp_path / "eval"
    out.mkdir()
    (out / "keep.txt").write_text("not the engine's")
    result = cli(["evaluate", hsi, hsi, "--out", out, "--overwrite", "--progress", "none"])
    assert result.code == 0, result.stderr
    assert (out / "keep.txt").read_text() == "not the engine's"
    assert (out / "metrics.json").is_file()


def test_bgr_file_with_colour_interpretation_is_read_as_rgb(tmp_path, tiny_bundle, cli):
    data = rgb_data()
    rgb = write_raster(tmp_path / "rgb.tif", data)
    bgr = bgr_file(tmp_path / "bgr.tif", data)
    with rasterio.open(bgr) as ds:  # the file really says B, G, R
        assert [c.name for c in ds.colorinterp] == ["blue", "green", "red"]
    cubes = {}
    for name, src in (("a", rgb), ("b", bgr)):
        result = cli(["synthesize", src, tmp_path / f"{name}.tif", "--model", tiny_bundle, *FAST,
                      "--progress", "bar"])
        assert result.code == 0, result.stderr
        with rasterio.open(tmp_path / f"{name}.tif") as ds:
            cubes[name] = ds.read()
    np.testing.assert_array_equal(cubes["a"], cubes["b"])
    assert "R,G,B from bands 3,2,1 (colour interpretation)" in result.stderr


def test_bands_option_overrides_colour_interpretation(tmp_path, tiny_bundle, cli):
    data = rgb_data()
    bgr = bgr_file(tmp_path / "bgr.tif", data)
    result = cli(["synthesize", bgr, tmp_path / "o.tif", "--model", tiny_bundle, "--bands", "1,2,3", *FAST])
    assert result.code == 0, result.stderr
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.tags()["HYPERLDM_RGB_BANDS"] == "1,2,3"
        assert ds.tags()["HYPERLDM_RGB_BANDS_FROM"] == "--bands"
