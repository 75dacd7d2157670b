"""Fixtures shared by the whole-scene pipeline tests (extent crop, diversity over scenes)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for every run of a module (with more threads oneDNN may round the last bit of a
    convolution differently from run to run); dask workers run on one too, so both sides sum alike."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def rgb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rgb.tif of a 72 x 40 held-out simulated scene."""
    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    out = tmp_path_factory.mktemp("scene") / "sim"
    write_scene(simulate_scene(72, 40, seed=5, held_out=True), out)
    return out / "rgb.tif"
