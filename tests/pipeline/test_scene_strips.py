"""The scene pipeline through strips: bit-identical to one full-width pass, carry folder removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from hyperldm_engine.errors import InputError
from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
from hyperldm_engine.pipeline.synthesize import SamplingOptions

from .test_batching import bundle, write_rgb  # noqa: F401  (bundle is a fixture)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_strips_give_the_same_bits_as_one_pass(bundle: str, tmp_path: Path) -> None:  # noqa: F811
    # 48 x 200 px, tile 32 / overlap 8, 16 px output blocks: strips of 48 px -> 4 strips with
    # tiles overhanging every strip edge (the last 8 px join the fourth strip: no tile starts there);
    # K = 2 and abundances (three outputs carried)
    rgb = write_rgb(tmp_path / "rgb.tif", 48, 200, nodata_box=(slice(10, 30), slice(90, 130)))
    out = {}
    for strip in (48, 100000):
        folder = tmp_path / f"strip{strip}"
        folder.mkdir()
        job = SceneJob(input=str(rgb), output=str(folder / "hsi.tif"), model=bundle,
                       sampling=SamplingOptions(samples=2, steps=2, seed=5), tile=32, overlap=8,
                       abundances=str(folder / "ab.tif"), strip_width=strip,
                       creation_options=("BLOCKXSIZE=16", "BLOCKYSIZE=16"))
        paths, stats = synthesize_scene(job, progress_mode="none")
        out[strip] = [_read(p) for p in paths]
        assert sorted(p.name for p in folder.iterdir()) == ["ab.tif", "hsi_s0.tif", "hsi_s1.tif"]
        if strip == 48:
            assert stats.strips == 4 and stats.carried_bytes > 0
    for a, b in zip(out[48], out[100000], strict=True):
        np.testing.assert_array_equal(a, b)
        assert (a == -9999.0).any() and (a != -9999.0).any()


def test_bad_strip_width_is_refused(bundle: str, tmp_path: Path) -> None:  # noqa: F811
    rgb = write_rgb(tmp_path / "rgb.tif", 32, 32)
    job = SceneJob(input=str(rgb), output=str(tmp_path / "out.tif"), model=bundle, strip_width=0)
    with pytest.raises(InputError, match="--strip-width"):
        synthesize_scene(job, progress_mode="none")
    assert list(tmp_path.iterdir()) == [rgb]
