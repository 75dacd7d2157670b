"""Windowed evaluation of rasters equals the in-memory metrics; grids and band sets are checked."""

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy.ndimage import gaussian_filter

from hyperldm_engine.errors import InputError
from hyperldm_engine.metrics import similarity as S
from hyperldm_engine.metrics.streaming import evaluate_rasters, interpolation_matrix, window_count

H, W = 53, 70


def write(path, array, wavelengths=None, nodata=None, transform=None, crs="EPSG:32615", tags=None):
    count = array.shape[0]
    profile = dict(driver="GTiff", width=array.shape[2], height=array.shape[1], count=count,
                   dtype=array.dtype, crs=crs, transform=transform or Affine(1, 0, 500000, 0, -1, 3300000),
                   nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        if wavelengths is not None:
            for i, wl in enumerate(wavelengths, start=1):
                dst.set_band_description(i, f"b{i} {wl:.1f} nm")
        if tags:
            dst.update_tags(**tags)
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(3)
    ref = gaussian_filter(rng.uniform(0.05, 0.9, (4, H, W)), (0, 2, 2)).astype(np.float32)
    pred = (ref * (1 + 0.05 * rng.standard_normal(ref.shape))).astype(np.float32)
    pred[:, 5:9, 40:47] = -9999.0  # nodata holes in the prediction
    pred[:, 30, 3] = -9999.0
    labels = (np.arange(W)[None, :] // 25 + 3 * (np.arange(H)[:, None] > 30)).astype(np.int16)
    labels[:2, :] = 255  # unlabelled
    wl = [450.0, 550.0, 650.0, 850.0]
    paths = {
        "pred": write(d / "pred.tif", pred, wl, nodata=-9999.0),
        "ref": write(d / "ref.tif", ref, wl),
        "labels": write(d / "labels.tif", labels[None], nodata=255,
                        tags={"class_names": json.dumps(["road", "grass", "water", "roof", "tree", "soil"])}),
    }
    mask = pred[0] != -9999.0
    return paths, pred.astype(np.float64), ref.astype(np.float64), mask, labels, d


def test_windows_equal_in_memory(scene):
    paths, pred, ref, mask, _, _ = scene
    expect = S.similarity_metrics(pred, ref, mask)
    for size in (20, 33, 1024):
        got = evaluate_rasters(paths["pred"], paths["ref"], window_size=size)["overall"]
        for key, value in expect.items():
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (size, key)
    assert window_count(W, H, 20) == 4 * 3


def test_per_band_and_per_class(scene):
    paths, pred, ref, mask, labels, _ = scene
    res = evaluate_rasters(paths["pred"], paths["ref"], paths["labels"], window_size=24)
    assert res["bands"]["wavelengths_nm"] == [450.0, 550.0, 650.0, 850.0]
    np.testing.assert_allclose(res["per_band"]["psnr_db"], S.psnr_per_band(pred, ref, mask), rtol=1e-6)
    np.testing.assert_allclose(res["per_band"]["ssim"], S.ssim_per_band(pred, ref, mask), rtol=1e-6)
    classes = {c["class"]: c for c in res["per_class"]}
    assert sorted(classes) == [0, 1, 2, 3, 4, 5]
    assert classes[3]["name"] == "roof"
    in_memory = S.similarity_sums(pred, ref, mask, labels=labels.astype(np.int64))
    for k in classes:
        expect = in_memory[k].summary()
        for key in ("rmse", "mrae", "sam", "mpsnr", "mssim", "n_pixels"):
            assert classes[k][key] == pytest.approx(expect[key], rel=1e-6), (k, key)
    assert res["unlabelled_pixels"] == int((mask & (labels == 255)).sum())
    n_classified = sum(c["n_pixels"] for c in res["per_class"])
    assert n_classified + res["unlabelled_pixels"] == res["overall"]["n_pixels"]
    json.dumps(res)  # JSON-safe


def test_grid_and_band_mismatch_refused(scene):
    paths, _, ref, _, _, d = scene
    shifted = write(d / "shifted.tif", ref.astype(np.float32), transform=Affine(1, 0, 500010, 0, -1, 3300000))
    with pytest.raises(InputError, match=r"pred.tif and .*shifted.tif are not on the same grid"):
        evaluate_rasters(paths["pred"], shifted)
    other_crs = write(d / "crs.tif", ref.astype(np.float32), crs="EPSG:32616")
    with pytest.raises(InputError, match="CRS"):
        evaluate_rasters(paths["pred"], other_crs)
    three = write(d / "three.tif", ref[:3].astype(np.float32))  # no wavelengths: counts differ
    with pytest.raises(InputError, match=r"4 bands .*three.tif has 3"):
        evaluate_rasters(paths["pred"], three, resample=True)
    shifted_wl = write(d / "wl.tif", ref.astype(np.float32), [460.0, 560.0, 660.0, 860.0])
    with pytest.raises(InputError, match=r"band sets differ.*--resample"):
        evaluate_rasters(paths["pred"], shifted_wl)


def test_resample_by_wavelength(scene):
    paths, pred, ref, mask, _, d = scene
    # reference on other wavelengths: the exact linear interpolation of the prediction's bands
    pred_wl = np.array([450.0, 550.0, 650.0, 850.0])
    ref_wl = np.array([400.0, 500.0, 600.0, 750.0, 900.0])  # 400 and 900 lie outside pred's range
    interp = np.einsum("ij,jrc->irc", interpolation_matrix(pred_wl, ref_wl[1:4]), np.where(mask, pred, 0))
    ref5 = np.concatenate([ref[:1], interp, ref[:1]]).astype(np.float32)
    ref_path = write(d / "ref5.tif", ref5, ref_wl)
    res = evaluate_rasters(paths["pred"], ref_path, resample=True, window_size=30)
    assert res["bands"]["resampled"] and res["bands"]["dropped_ref_wavelengths_nm"] == [400.0, 900.0]
    assert res["bands"]["count"] == 3
    assert res["overall"]["rmse"] == pytest.approx(0.0, abs=1e-6)
    assert res["overall"]["sam"] == pytest.approx(0.0, abs=1e-3)


def test_interpolation_matrix_is_linear_interpolation():
    src = np.array([700.0, 400.0, 500.0])  # unsorted on purpose
    spectrum = np.array([0.7, 0.4, 0.5]) ** 2
    dst = np.array([400.0, 450.0, 600.0, 700.0])
    order = np.argsort(src)
    expect = np.interp(dst, src[order], spectrum[order])
    np.testing.assert_allclose(interpolation_matrix(src, dst) @ spectrum, expect, rtol=1e-12)


def test_missing_file_and_bad_labels(scene):
    paths, *_, d = scene
    with pytest.raises(InputError, match=r"nope.tif: the reference raster does not exist"):
        evaluate_rasters(paths["pred"], d / "nope.tif")
    with pytest.raises(InputError, match="labels must be one band of integer"):
        evaluate_rasters(paths["pred"], paths["ref"], labels_path=paths["ref"])
