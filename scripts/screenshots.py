"""Screenshots for docs/qgis-plugin.md: the set-up dialog, the Synthesize dialog and a synthesized
output rendered in a map canvas, opened by hand so that QGIS applies the .qml beside it.

Usage (Debian's python with QGIS 3.22; Xvfb, or QT_QPA_PLATFORM=offscreen, which leaves out some icons):
  xvfb-run -a -s "-screen 0 1280x1024x24" /usr/bin/python3 scripts/screenshots.py \\
      --input RGB.tif --output HSI.tif [--out-dir docs/img] [--plugins DIR]

HSI.tif is a cube written by hyperldm:synthesize (with its .qml). Writes setup-engine-dialog.png,
synthesize-dialog.png (8-bit palette PNGs) and output-true-colour.png (24 bit), small enough for the docs, and
prints one JSON line: the files and the renderer QGIS applied to the hand-opened output.
With --run-setup the set-up also runs in its dialog, into a temporary HOME (never yours), and
setup-engine-log.png shows its Log tab at the end (--setup-source: a wheel or folder, empty = what the
plugin ships; --setup-pip-args, e.g. '--no-index --find-links DIR'). tests/qgis/test_screenshots.py runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("QGIS_CUSTOM_CONFIG_PATH", tempfile.mkdtemp(prefix="qgis-shot-"))
if "/usr/share/qgis/python/plugins" not in sys.path:
    sys.path.insert(0, "/usr/share/qgis/python/plugins")  # 'processing' lives here on Debian

DIALOG_SIZE = (1100, 700)
CANVAS_SIZE = (640, 480)
#: the event loop waits this long for a dialog to lay itself out before it is grabbed (ms)
SETTLE_MS = 1200


def save_png(image, path: Path, palette: bool) -> bool:
    """Save as PNG; ``palette``: 8-bit (a dialog shrinks to a third; a map would band, so it keeps 24 bit)."""
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtGui import QImage

    if palette:
        image = image.convertToFormat(QImage.Format.Format_Indexed8, Qt.ImageConversionFlag.ThresholdDither)
    else:
        image = image.convertToFormat(QImage.Format.Format_RGB888)
    return image.save(str(path), "PNG", 9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path, help="the RGB raster shown in the Synthesize dialog")
    parser.add_argument("--output", required=True, type=Path, help="a cube written by hyperldm:synthesize")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--plugins", type=Path, default=ROOT / "qgis_plugin",
                        help="folder that holds the hyperldm plugin folder (default: the checkout)")
    parser.add_argument("--run-setup", action="store_true", help="also run the set-up and grab its log")
    parser.add_argument("--setup-source", default="", help="the set-up's engine wheel or folder")
    parser.add_argument("--setup-pip-args", default="", help="the set-up's extra pip arguments")
    parser.add_argument("--setup-python", default="", help="the set-up's Python (default: python3 on PATH)")
    args = parser.parse_args(argv)
    if args.run_setup:  # the set-up installs into ~/.local/share/hyperldm/venv: a temporary one
        os.environ["HOME"] = tempfile.mkdtemp(prefix="hyperldm-shot-home-")
    sys.path.insert(0, str(args.plugins))
    args.out_dir.mkdir(parents=True, exist_ok=True)

    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
    from qgis.gui import QgisInterface, QgsMapCanvas
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QMainWindow

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], True)
    app.initQgis()
    app.setQuitOnLastWindowClosed(False)  # closing one dialog before the next opens must not end the run
    import qgis.utils

    window = QMainWindow()
    iface = mock.Mock(spec=QgisInterface)
    iface.mainWindow.return_value = window
    iface.mapCanvas.return_value = QgsMapCanvas(window)
    iface.activeLayer.return_value = None
    iface.browserModel.return_value = None
    qgis.utils.iface = iface  # createAlgorithmDialog needs an iface; set it before importing processing
    import processing
    from processing.core.Processing import Processing

    Processing.initialize()
    if not (qgis.utils.loadPlugin("hyperldm") and qgis.utils.startProcessingPlugin("hyperldm")):
        print("error: the hyperldm plugin did not load from", args.plugins, file=sys.stderr)
        return 1

    rgb = QgsRasterLayer(str(args.input), args.input.stem, "gdal")
    cube = QgsRasterLayer(str(args.output), args.output.stem, "gdal")  # by hand: QGIS applies the .qml
    if not rgb.isValid() or not cube.isValid():
        print("error: cannot open", args.input if not rgb.isValid() else args.output, file=sys.stderr)
        return 1
    QgsProject.instance().addMapLayers([rgb, cube])
    renderer = cube.renderer()
    summary = {"files": [], "errors": [], "renderer": {
        "type": renderer.type(),
        "bands": [renderer.redBand(), renderer.greenBand(), renderer.blueBand()]
        if renderer.type() == "multibandcolor" else [],
        "band_names": [cube.bandName(b) for b in (renderer.redBand(), renderer.greenBand(), renderer.blueBand())]
        if renderer.type() == "multibandcolor" else []}}
    dialogs = [("setup-engine-dialog.png", "hyperldm:setup_engine", {}, False),
               ("synthesize-dialog.png", "hyperldm:synthesize", {"INPUT": rgb.id(), "SAMPLES": 1, "SEED": 7},
                False)]
    if args.run_setup:
        dialogs.insert(1, ("setup-engine-log.png", "hyperldm:setup_engine", {
            "SOURCE": args.setup_source, "PIP_ARGS": args.setup_pip_args, "PYTHON": args.setup_python}, True))
    canvas = QgsMapCanvas()
    state = {"dialog": None}

    def guarded(step):
        """Under PyQt5 an exception in a timer callback aborts the process: record it and stop."""
        def run():
            try:
                step()
            except Exception:  # reported in the summary, exit status 1
                summary["errors"].append(traceback.format_exc(limit=3))
                app.quit()
        return run

    def show_next_dialog():
        if not dialogs:
            show_canvas()
            return
        _, alg_id, params, run = dialogs[0]
        dialog = processing.createAlgorithmDialog(alg_id, params)
        dialog.resize(*DIALOG_SIZE)
        dialog.show()
        state["dialog"] = dialog
        if run:  # the algorithm runs as a background task; grab the Log tab once it has finished
            state["waiting"] = True

            def finished():
                if state.pop("waiting", False):  # the signal may come more than once
                    QTimer.singleShot(SETTLE_MS, guarded(shoot_dialog))

            QgsApplication.taskManager().allTasksFinished.connect(guarded(finished))
            QTimer.singleShot(SETTLE_MS, guarded(dialog.runAlgorithm))
        else:
            QTimer.singleShot(SETTLE_MS, guarded(shoot_dialog))

    def shoot_dialog():
        if dialogs[0][3]:
            engine = Path(os.environ["HOME"]) / ".local" / "share" / "hyperldm" / "venv" / "bin" / "hyperldm-engine"
            summary["setup_engine"] = str(engine) if engine.is_file() else None
        name = dialogs.pop(0)[0]
        dialog = state["dialog"]
        if save_png(dialog.grab().toImage(), args.out_dir / name, palette=True):
            summary["files"].append(str(args.out_dir / name))
        dialog.close()
        QTimer.singleShot(100, guarded(show_next_dialog))

    def show_canvas():
        canvas.resize(*CANVAS_SIZE)
        canvas.setDestinationCrs(cube.crs())
        canvas.setLayers([cube])
        canvas.setExtent(cube.extent())
        canvas.mapCanvasRefreshed.connect(guarded(lambda: QTimer.singleShot(300, guarded(shoot_canvas))))
        canvas.show()
        canvas.refresh()

    def shoot_canvas():
        if str(args.out_dir / "output-true-colour.png") in summary["files"]:
            return  # a second refresh signal
        path = args.out_dir / "output-true-colour.png"
        if save_png(canvas.grab().toImage(), path, palette=False):
            summary["files"].append(str(path))
        canvas.close()
        app.quit()

    QTimer.singleShot(0, guarded(show_next_dialog))
    QTimer.singleShot(900000 if args.run_setup else 60000, app.quit)  # never hang a test
    app.exec_()
    print(json.dumps(summary))
    renderer = None
    QgsProject.instance().removeAllMapLayers()
    rgb = cube = None  # no layer may outlive exitQgis (segfault at exit)
    qgis.utils.unloadPlugin("hyperldm")
    app.exitQgis()
    wanted = 4 if args.run_setup else 3
    return 0 if len(summary["files"]) == wanted and not summary["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
