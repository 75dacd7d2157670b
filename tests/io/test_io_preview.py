"""Preview PNG: band choice, stretch, and an atomic PNG of the right size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from hyperldm_engine.errors import OutputError
from hyperldm_engine.io.preview import save_preview_png, stretch, true_colour, true_colour_bands


def test_true_colour_bands() -> None:
    wl = np.linspace(400, 1000, 49)  # 12.5 nm steps
    assert true_colour_bands(wl) == (19, 12, 5)  # 637.5, 550, 462.5 nm


def test_stretch_known_answer() -> None:
    ch = np.arange(101, dtype=float).reshape(101, 1, 1)  # percentiles 2 and 98 are 2 and 98
    out = stretch(ch.reshape(1, 101, 1))
    assert out[0, 2, 0] == 0.0 and out[0, 98, 0] == 1.0 and out[0, 50, 0] == pytest.approx(0.5)
    flat = stretch(np.full((2, 2, 1), 3.0))
    assert (flat == 0).all()
    nan = np.array([[[np.nan], [1.0], [2.0]]])
    assert stretch(nan)[0, 0, 0] == 0.0


def test_true_colour_shape() -> None:
    cube = np.random.default_rng(0).random((5, 6, 7))
    img = true_colour(cube, [450, 500, 550, 600, 650], rgb_bands=(4, 2, 0))
    assert img.shape == (6, 7, 3) and img.min() >= 0 and img.max() <= 1


def test_save_preview_png(tmp_path: Path) -> None:
    wl = np.linspace(400, 1000, 20)
    cube = np.random.default_rng(0).random((20, 16, 24)).astype(np.float32)
    out = save_preview_png(tmp_path / "p.png", cube, wl, pixels=[(1, 2), (10, 20)], title="test", dpi=50)
    assert os.listdir(tmp_path) == ["p.png"]
    img = imread(out)
    assert img.shape[:2] == (210, 500)  # 10 x 4.2 inches at 50 dpi
    with pytest.raises(OutputError, match="already exists"):
        save_preview_png(out, cube, wl)
    with pytest.raises(ValueError, match="does not match"):
        save_preview_png(tmp_path / "q.png", cube, wl[:5])
    assert os.listdir(tmp_path) == ["p.png"]
