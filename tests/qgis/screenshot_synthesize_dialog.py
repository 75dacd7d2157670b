"""Save a screenshot of the Synthesize dialog (docs/img/synthesize-dialog.png) under Xvfb.

Usage (Debian's python, QGIS installed):
  xvfb-run -a -s "-screen 0 1280x1024x24" /usr/bin/python3 tests/qgis/screenshot_synthesize_dialog.py RGB.tif [OUT.png]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("QGIS_CUSTOM_CONFIG_PATH", tempfile.mkdtemp(prefix="qgis-shot-"))
sys.path.insert(0, "/usr/share/qgis/python/plugins")
sys.path.insert(0, str(ROOT / "qgis_plugin"))

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer  # noqa: E402
from qgis.PyQt.QtCore import QTimer  # noqa: E402


def main() -> int:
    rgb = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "docs" / "img" / "synthesize-dialog.png")
    app = QgsApplication([], True)
    app.initQgis()
    import qgis.utils
    from qgis.gui import QgisInterface, QgsMapCanvas
    from qgis.PyQt.QtWidgets import QMainWindow

    window = QMainWindow()
    canvas = QgsMapCanvas(window)
    iface = mock.Mock(spec=QgisInterface)
    iface.mainWindow.return_value = window
    iface.mapCanvas.return_value = canvas
    iface.activeLayer.return_value = None
    iface.browserModel.return_value = None
    qgis.utils.iface = iface  # createAlgorithmDialog needs an iface; set it before importing processing
    import processing
    from processing.core.Processing import Processing

    Processing.initialize()
    assert qgis.utils.loadPlugin("hyperldm") and qgis.utils.startProcessingPlugin("hyperldm")
    layer = QgsRasterLayer(rgb, "orthophoto_rgb")
    QgsProject.instance().addMapLayer(layer)
    dialog = processing.createAlgorithmDialog("hyperldm:synthesize", {"INPUT": layer.id(), "SAMPLES": 3,
                                                                     "SEED": 7})
    dialog.resize(980, 720)
    dialog.show()
    status = {"ok": False}

    def shoot():
        try:
            status["ok"] = dialog.grab().save(out, "PNG")
        finally:
            dialog.close()
            app.quit()

    QTimer.singleShot(1500, shoot)
    app.exec_()
    print(out if status["ok"] else "screenshot failed")
    return 0 if status["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
