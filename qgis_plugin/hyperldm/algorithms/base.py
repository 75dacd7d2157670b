"""What the three algorithms share: common parameters, engine calls, raster delivery, band names."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterFileWriter,
    QgsRasterLayer,
    QgsRasterPipe,
)
from qgis.PyQt.QtGui import QIcon

from ..engine import EngineError, run_engine
from ..provider import ICON_PATH

DEVICES = ["auto", "cpu", "cuda"]
#: --input-sensor choices: the engine's registry (hyperldm_engine.spectral.input_sensors.names()) after
#: "auto"; the plugin cannot import the engine, so tests/spectral/test_input_sensors.py checks the copy
INPUT_SENSORS = ["auto", "generic-camera", "nikon-5100", "sigma-sdmerill", "sentinel2-msi", "sentinel2b-msi",
                 "landsat8-oli", "landsat7-etm", "paper-bands"]
GTIFF_EXTENSIONS = (".tif", ".tiff")
_WAVELENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*nm\b")


class HyperLDMAlgorithm(QgsProcessingAlgorithm):
    """Base class: group, icon, flags and the engine call that maps failures to QgsProcessingException."""

    def group(self):
        return ""

    def groupId(self):  # noqa: N802 (QGIS API name)
        return ""

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802 (QGIS API name)
        return ICON_PATH

    def createInstance(self):  # noqa: N802 (QGIS API name)
        return type(self)()

    def run_engine(self, args, feedback, cleanup=(), keep_on_cancel=(), term_grace_s=None):
        """Run the engine; None when cancelled, else the ``done`` outputs; errors become one line."""
        try:
            return run_engine(args, feedback=feedback, cleanup=cleanup, keep_on_cancel=keep_on_cancel,
                              term_grace_s=term_grace_s)
        except EngineError as exc:
            raise QgsProcessingException(str(exc)) from None


def advanced(param: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    """Flag an expert parameter so the dialog folds it under "Advanced parameters"."""
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


def model_parameter(name: str) -> QgsProcessingParameterFile:
    """A bundle is a folder or a .zip of one. Folder behaviour: the dialog offers a folder picker,
    and (unlike File behaviour in 3.22, which wants a suffix) a typed folder or .zip path is valid."""
    return QgsProcessingParameterFile(
        name, "Model bundle folder or .zip (empty = the bundled default model)",
        behavior=QgsProcessingParameterFile.Folder, optional=True)


def device_parameter(name: str) -> QgsProcessingParameterEnum:
    return advanced(QgsProcessingParameterEnum(
        name, "Device (auto = CUDA GPU when available, else CPU)", options=DEVICES, defaultValue=0))


def input_sensor_parameter(name: str) -> QgsProcessingParameterEnum:
    """Which sensor made the RGB: auto reads the raster's metadata (Sentinel-2, Landsat), else a generic camera."""
    return QgsProcessingParameterEnum(
        name, "Input sensor (auto = from the raster's metadata, else a generic camera)", options=INPUT_SENSORS,
        defaultValue=0)


def int_parameter(name, description, default=None, minimum=None, maximum=None, optional=False):
    param = QgsProcessingParameterNumber(name, description, type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=default, optional=optional)
    if minimum is not None:
        param.setMinimum(minimum)
    if maximum is not None:
        param.setMaximum(maximum)
    return param


def optional_int(alg, parameters, name, context):
    """The integer value of an optional parameter, or None when the user left it empty."""
    if parameters.get(name) is None or parameters.get(name) == "":
        return None
    return alg.parameterAsInt(parameters, name, context)


def model_path(alg, parameters, name, context) -> str | None:
    """The bundle to pass to ``--model``: a chosen ``config.json`` stands for its folder."""
    value = alg.parameterAsFile(parameters, name, context)
    if not value:
        return None
    path = Path(value)
    if path.name == "config.json":
        path = path.parent
    if not path.exists():
        raise QgsProcessingException(f"Model bundle not found: {value}")
    return str(path)


def layer_path(alg, parameters, name, context, required=True) -> str | None:
    """File path of a raster layer parameter (what the engine opens)."""
    layer = alg.parameterAsRasterLayer(parameters, name, context)
    if layer is None:
        if required:
            raise QgsProcessingException(f"Could not load the raster layer for {name}")
        return None
    source = layer.source()
    if not os.path.exists(source):
        raise QgsProcessingException(
            f"{name}: the engine reads raster files, and '{layer.name()}' is not one ({source}); "
            "save it as a GeoTIFF first")
    return source


def is_gtiff(path: str) -> bool:
    return Path(path).suffix.lower() in GTIFF_EXTENSIONS


def engine_target(destination: str, context) -> str:
    """Where the engine writes a raster meant for ``destination``: the same file for GeoTIFF, else
    a temporary GeoTIFF that :func:`deliver_raster` converts."""
    if is_gtiff(destination):
        return destination
    return QgsProcessingUtils.generateTempFilename(Path(destination).stem + ".tif")


def deliver_raster(source: str, destination: str, feedback=None) -> str:
    """Move an engine GeoTIFF to the requested destination, converting it for other formats."""
    if os.path.abspath(source) == os.path.abspath(destination):
        return destination
    Path(destination).parent.mkdir(parents=True, exist_ok=True)
    if is_gtiff(destination):
        if os.path.exists(destination):
            os.remove(destination)
        shutil.move(source, destination)
        return destination
    layer = QgsRasterLayer(source, "engine output", "gdal")
    if not layer.isValid():
        raise QgsProcessingException(f"Could not read the engine output {source}")
    writer = QgsRasterFileWriter(destination)
    writer.setOutputFormat(QgsRasterFileWriter.driverForExtension(Path(destination).suffix))
    pipe = QgsRasterPipe()
    pipe.set(layer.dataProvider().clone())
    error = writer.writeRaster(pipe, layer.width(), layer.height(), layer.extent(), layer.crs(),
                               QgsProject.instance().transformContext())
    del pipe, layer
    if error != QgsRasterFileWriter.NoError:
        raise QgsProcessingException(f"Could not write {destination} (raster writer error {int(error)})")
    os.remove(source)
    return destination


def band_wavelengths(layer: QgsRasterLayer) -> list[float | None]:
    """Band centre wavelengths (nm) parsed from the band names QGIS shows (``Band 12: b12 580.4 nm``)."""
    result = []
    for band in range(1, layer.bandCount() + 1):
        match = _WAVELENGTH.search(layer.bandName(band) or "")
        result.append(float(match.group(1)) if match else None)
    return result


def true_colour_bands(wavelengths, targets=(640.0, 550.0, 460.0)) -> tuple[int, int, int] | None:
    """1-based bands nearest red, green and blue (first sample only when several are stacked)."""
    known = [(i + 1, w) for i, w in enumerate(wavelengths) if w is not None]
    if not known:
        return None
    first_sample = []
    for band, w in known:  # a stacked output repeats the wavelengths; stop at the first repeat
        if first_sample and w <= first_sample[-1][1]:
            break
        first_sample.append((band, w))
    return tuple(min(first_sample, key=lambda bw, t=t: abs(bw[1] - t))[0] for t in targets)


class HyperspectralLayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Shows a loaded HSI output in true colour (bands nearest 640/550/460 nm) with a stretch; the
    band names (``Band 12: b12 580.4 nm``) come from the GeoTIFF band descriptions."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
            return
        layer.setName(self.name)
        from qgis.core import QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsRasterBandStats

        bands = true_colour_bands(band_wavelengths(layer))
        if bands is None or layer.bandCount() < 3:
            return
        renderer = QgsMultiBandColorRenderer(layer.dataProvider(), *bands)
        for band, setter in zip(bands, (renderer.setRedContrastEnhancement,
                                        renderer.setGreenContrastEnhancement,
                                        renderer.setBlueContrastEnhancement), strict=True):
            stats = layer.dataProvider().bandStatistics(
                band, QgsRasterBandStats.Min | QgsRasterBandStats.Max, layer.extent(), 250000)
            enhancement = QgsContrastEnhancement(layer.dataProvider().dataType(band))
            enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
            enhancement.setMinimumValue(stats.minimumValue)
            enhancement.setMaximumValue(stats.maximumValue)
            setter(enhancement)
        layer.setRenderer(renderer)
        layer.triggerRepaint()


_STYLERS: dict[str, HyperspectralLayerStyler] = {}


def style_on_load(context, destination: str, name: str) -> None:
    """Attach the true-colour styler when the output is loaded into the project."""
    if context.willLoadLayerOnCompletion(destination):
        styler = HyperspectralLayerStyler(name)
        _STYLERS[destination] = styler  # QGIS keeps no Python reference; this one must outlive the run
        context.layerToLoadOnCompletionDetails(destination).setPostProcessor(styler)

