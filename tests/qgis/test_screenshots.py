"""scripts/screenshots.py (the pictures in docs/qgis-plugin.md) runs under Xvfb and shows what the
docs say: the set-up dialog and a set-up run's log, the Synthesize dialog, and a synthesized output
that, opened by hand, renders in true colour from its .qml. The set-up installs the offline stand-in
package of test_setup_engine.py into a temporary HOME."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from qgis_helpers import ROOT, require_engine_command
from test_setup_engine import _stand_in_package

SCRIPT = ROOT / "scripts" / "screenshots.py"


def _image(path):
    from qgis.PyQt.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull(), path
    return image


def _colours(image, step=7):
    """Distinct (r, g, b) values on a sparse grid of pixels."""
    from qgis.PyQt.QtGui import QColor

    return {QColor(image.pixel(x, y)).getRgb()[:3]
            for y in range(0, image.height(), step) for x in range(0, image.width(), step)}


@pytest.mark.timeout(600)
def test_screenshots_of_the_dialogs_and_a_true_colour_output(qgis_app, scene, bundle, tmp_path):
    require_engine_command("synthesize")
    import processing

    out = tmp_path / "hsi.tif"
    processing.run("hyperldm:synthesize", {"INPUT": str(scene / "rgb.tif"), "MODEL": str(bundle), "SAMPLES": 1,
                                           "SEED": 2, "STEPS": 2, "OUTPUT": str(out)})
    assert out.with_suffix(".qml").is_file()
    shots = tmp_path / "img"
    from hyperldm.contract import CONTRACT_VERSION

    stand_in = _stand_in_package(tmp_path, CONTRACT_VERSION)
    command = [sys.executable, str(SCRIPT), "--input", str(scene / "rgb.tif"), "--output", str(out),
               "--out-dir", str(shots), "--run-setup", "--setup-source", str(stand_in), "--setup-python",
               "/usr/bin/python3", "--setup-pip-args", "--no-build-isolation --no-deps --no-index"]
    env = dict(os.environ)
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(tmp_path / "profile")
    if shutil.which("xvfb-run"):
        command = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", *command]
        env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["errors"] == []
    names = {"setup-engine-dialog.png", "setup-engine-log.png", "synthesize-dialog.png", "output-true-colour.png"}
    assert {os.path.basename(f) for f in summary["files"]} == names
    # the set-up ran in its dialog, into a temporary HOME, not the user's
    engine = summary["setup_engine"]
    assert engine and engine.endswith("/.local/share/hyperldm/venv/bin/hyperldm-engine") and os.path.isfile(engine)
    assert not engine.startswith(os.path.expanduser("~") + os.sep)
    # the hand-opened cube got the .qml's true-colour bands (nearest 640 / 550 / 460 nm)
    assert summary["renderer"]["type"] == "multibandcolor"
    from hyperldm.algorithms.base import band_wavelengths, true_colour_bands
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(out), "cube", "gdal")
    try:
        assert summary["renderer"]["bands"] == list(true_colour_bands(band_wavelengths(layer)))
    finally:
        del layer
    for name in ("setup-engine-dialog.png", "setup-engine-log.png", "synthesize-dialog.png"):
        image = _image(shots / name)
        assert (image.width(), image.height()) == (1100, 700)
        assert len(_colours(image)) > 8  # widgets and text, not a blank window
    canvas = _image(shots / "output-true-colour.png")
    assert (canvas.width(), canvas.height()) == (640, 480)
    colours = _colours(canvas)
    assert len(colours) > 50  # a rendered scene, not an empty canvas
    assert any(abs(r - g) > 8 or abs(g - b) > 8 for r, g, b in colours)  # colour, not the grey default
    assert sum(os.path.getsize(shots / n) for n in names) < 600_000  # small enough for the docs
    shutil.rmtree(os.path.dirname(engine).rsplit("/.local/", 1)[0], ignore_errors=True)  # the temporary HOME
