"""What the algorithms share: common parameters, engine calls, raster delivery, band names, styles.

Qt and QGIS enums are always written fully qualified (``QgsProcessingParameterNumber.Type.Integer``),
the form that exists in QGIS 3.22 (PyQt5) and QGIS 4 (PyQt6); user-visible text goes through
:func:`tr`. ``tests/qgis/test_package.py`` checks both statically.
"""

from __future__ import annotations

import math
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
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterFileWriter,
    QgsRasterLayer,
    QgsRasterPipe,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from .. import contract
from ..engine import EngineError, run_engine
from ..provider import ICON_PATH

DEFAULTS = contract.DEFAULTS

DEVICES = ["auto", "cpu", "cuda"]
RGB_CONSISTENCY = ["auto", "on", "off"]
RGB_CORRECTION = ["auto", "minimum", "spectral", "ensemble", "anchored"]
HARMONISE = ["auto", "surface", "toa", "off"]
#: --input-sensor choices: the engine's registry (hyperldm_engine.spectral.input_sensors.names()) after
#: "auto"; the plugin cannot import the engine, so tests/spectral/test_input_sensors.py checks the copy
INPUT_SENSORS = ["auto", "generic-camera", "nikon-5100", "sigma-sdmerill", "sentinel2-msi", "sentinel2b-msi",
                 "landsat8-oli", "landsat7-etm", "paper-bands"]
GTIFF_EXTENSIONS = (".tif", ".tiff")
#: a wavelength in a band name as QGIS shows it: "b12 545.7 nm" (the description) or, when GDAL reads the
#: band's wavelength metadata, "b12 (545.7 Nanometers)" / "(0.5457 Micrometers)"
_WAVELENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(nm|nanometers|um|µm|micrometers)\b", re.IGNORECASE)
#: cumulative cut of the true-colour style (fractions of the pixels below the low / the high end)
CUT_LOW, CUT_HIGH = 0.02, 0.98


def tr(text: str) -> str:
    """Translate user-visible text (context "HyperLDM", as QGIS's own algorithms do)."""
    return QCoreApplication.translate("HyperLDM", text)


#: the last line of every engine algorithm's help
NEEDS_ENGINE = "Needs the hyperldm-engine program: run 'Set up or update the engine' once."


class HyperLDMAlgorithm(QgsProcessingAlgorithm):
    """Base class: id, display name and help from class constants, group, icon, and the engine call
    that maps failures to QgsProcessingException.

    An algorithm sets ``ID`` (stable lowercase, ``hyperldm:<ID>``), ``DISPLAY_NAME`` and ``HELP`` (what
    it does, with an example; ``{}`` fields filled from :meth:`help_values`); engine algorithms get
    :data:`NEEDS_ENGINE` appended.
    """

    ID = ""
    DISPLAY_NAME = ""
    HELP = ""
    RUNS_ENGINE = True

    def name(self):
        return self.ID

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr(self.DISPLAY_NAME)

    def help_values(self) -> tuple:
        """Values for the ``{}`` fields of ``HELP`` (defaults read from the contract)."""
        return ()

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        text = self.tr(self.HELP).format(*self.help_values())
        return f"{text}\n\n{self.tr(NEEDS_ENGINE)}" if self.RUNS_ENGINE else text

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

    def tr(self, text: str) -> str:
        return tr(text)

    def run_engine(self, args, feedback, cleanup=(), keep_on_cancel=(), term_grace_s=None):
        """Run the engine; None when cancelled, else its ``done`` event (:class:`contract.Done`);
        errors become one line."""
        try:
            return run_engine(args, feedback=feedback, cleanup=cleanup, keep_on_cancel=keep_on_cancel,
                              term_grace_s=term_grace_s)
        except EngineError as exc:
            raise QgsProcessingException(str(exc)) from None


class SceneAlgorithm(HyperLDMAlgorithm):
    """An engine command over an RGB scene (``synthesize``, ``diversity``): the parameters they share,
    added in one order by :meth:`add_scene_parameters`, and their engine arguments from
    :meth:`scene_arguments` (checked here, before the engine starts, where the plugin can)."""

    INPUT = "INPUT"
    INPUT_BANDS = "INPUT_BANDS"
    INPUT_SCALE = "INPUT_SCALE"
    MODEL = "MODEL"
    SAMPLES = "SAMPLES"
    SEED = "SEED"
    STEPS = "STEPS"
    EXTENT = "EXTENT"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    INPUT_SENSOR = "INPUT_SENSOR"
    DEVICE = "DEVICE"
    RGB_CONSISTENCY = "RGB_CONSISTENCY"
    RGB_CORRECTION = "RGB_CORRECTION"
    HARMONISE = "HARMONISE"

    def consistency_parameters(self):
        """RGB consistency, its correction and the harmonisation (advanced): the same for synthesize and
        diversity, whose numbers then describe the cubes synthesize writes."""
        return [
            advanced(QgsProcessingParameterEnum(
                self.RGB_CONSISTENCY, tr("RGB consistency: every cube reproduces the input RGB through the input "
                                         "sensor (auto = when the sensor is known; top-of-atmosphere input: its "
                                         "estimated surface RGB)"),
                options=RGB_CONSISTENCY, defaultValue=RGB_CONSISTENCY.index(DEFAULTS["rgb_consistency"]))),
            advanced(QgsProcessingParameterEnum(
                self.RGB_CORRECTION, tr("RGB correction: auto = anchored (on top-of-atmosphere input only if the "
                                        "model's anchor has seen TOA scenes, else minimum); "
                                        "minimum = smallest change, visible bands only; spectral = every band, "
                                        "near infrared included, by the model's error covariance (least diverse); "
                                        "ensemble = the samples' mean so, their spread kept; anchored = ensemble "
                                        "about the mean fused with the model's deterministic map of the RGB (a "
                                        "ridge in the default model)"),
                options=RGB_CORRECTION, defaultValue=RGB_CORRECTION.index(DEFAULTS["rgb_correction"]))),
            advanced(QgsProcessingParameterEnum(
                self.HARMONISE, tr("Harmonise: map a known input sensor's colours onto the model's training camera "
                                   "(auto = the raster's radiometry tag, else surface; toa for Level-1 imagery)"),
                options=HARMONISE, defaultValue=HARMONISE.index(DEFAULTS["harmonise"]))),
        ]

    def consistency_arguments(self, parameters, context) -> list[str]:
        """The engine arguments of :meth:`consistency_parameters`."""
        return ["--rgb-consistency", RGB_CONSISTENCY[self.parameterAsEnum(parameters, self.RGB_CONSISTENCY, context)],
                "--rgb-correction", RGB_CORRECTION[self.parameterAsEnum(parameters, self.RGB_CORRECTION, context)],
                "--harmonise", HARMONISE[self.parameterAsEnum(parameters, self.HARMONISE, context)]]

    def add_scene_parameters(self, samples, after_seed=(), after_sensor=()):
        """Input, bands, scale, model, ``samples``, seed, ``after_seed``, steps, extent, tile size,
        overlap, batch size, input sensor, ``after_sensor``, device."""
        for param in (
            QgsProcessingParameterRasterLayer(self.INPUT, tr("Input RGB raster")),
            bands_parameter(self.INPUT_BANDS), scale_parameter(self.INPUT_SCALE), model_parameter(self.MODEL),
            samples, int_parameter(self.SEED, tr("Random seed"), 0, 0, 2**31 - 1), *after_seed,
            advanced(int_parameter(self.STEPS, tr("Sampling steps (empty = engine default, {})").format(
                DEFAULTS["steps"]), None, 1, 1000, optional=True)),
            QgsProcessingParameterExtent(self.EXTENT, tr("Extent (empty = whole input; the outputs cover the "
                                                         "extent snapped to the input's pixels)"), optional=True),
            advanced(int_parameter(self.TILE_SIZE, tr("Tile size in pixels (empty = engine default, {})").format(
                DEFAULTS["tile_size"]), None, 16, 16384, optional=True)),
            advanced(int_parameter(self.OVERLAP, tr("Tile overlap in pixels (empty = engine default, {})").format(
                DEFAULTS["overlap"]), None, 0, 4096, optional=True)),
            advanced(int_parameter(self.BATCH_SIZE, tr("Tiles per model call (larger helps on a GPU; empty = engine "
                                                       "default, {})").format(DEFAULTS["batch_size"]),
                                   None, 1, 256, optional=True)),
            input_sensor_parameter(self.INPUT_SENSOR), *after_sensor, device_parameter(self.DEVICE),
        ):
            self.addParameter(param)

    def scene_arguments(self, parameters, context, feedback):
        """``(layer, source, args)``: the input layer, its file and the engine arguments of the shared
        parameters; the input is described in the log and an extent that selects no pixel refused."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        source = layer_path(self, parameters, self.INPUT, context)
        bands = input_bands(self, parameters, self.INPUT_BANDS, context, layer)  # checked before the engine starts
        feedback.pushInfo(f"Input: {source} ({layer.width()} x {layer.height()} px, {layer.bandCount()} "
                          f"bands, CRS {layer.crs().authid() or 'custom'}, pixel "
                          f"{layer.rasterUnitsPerPixelX():g} x {layer.rasterUnitsPerPixelY():g})")
        args = ["--seed", str(self.parameterAsInt(parameters, self.SEED, context)),
                "--device", DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
                "--input-sensor", INPUT_SENSORS[self.parameterAsEnum(parameters, self.INPUT_SENSOR, context)]]
        if bands:
            args += ["--bands", bands]
            feedback.pushInfo(tr("Input bands used as red, green, blue: {}").format(bands))
        scale = optional_float(self, parameters, self.INPUT_SCALE, context)
        if scale is not None:
            args += ["--scale", repr(scale)]
        model = model_path(self, parameters, self.MODEL, context)
        if model:
            args += ["--model", model]
        for name, flag in ((self.STEPS, "--steps"), (self.TILE_SIZE, "--tile-size"),
                           (self.OVERLAP, "--overlap"), (self.BATCH_SIZE, "--batch-size")):
            value = optional_int(self, parameters, name, context)
            if value is not None:
                args += [flag, str(value)]
        if parameters.get(self.EXTENT) not in (None, ""):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            if not rect.isNull() and not rect.isEmpty():
                window = pixel_window(layer, rect)
                if window is None:
                    raise QgsProcessingException(tr("The extent selects no pixel of the input"))
                args += ["--extent", format_extent(rect, layer.crs().authid())]
                feedback.pushInfo(tr("Extent in the input CRS: {}; output clipped to {} x {} px").format(
                    args[-1], window[2], window[3]))
        return layer, source, args


def format_extent(rect, authid: str) -> str:
    """The engine's ``--extent`` value: ``xmin,xmax,ymin,ymax [EPSG:xxxx]`` (CRS units)."""
    text = ",".join(repr(float(v)) for v in (rect.xMinimum(), rect.xMaximum(),
                                             rect.yMinimum(), rect.yMaximum()))
    return f"{text} [{authid}]" if authid else text


def pixel_window(layer, rect) -> tuple[int, int, int, int] | None:
    """(col, row, width, height) of the input pixels whose centres lie in ``rect`` (input CRS): the
    grid the engine crops its outputs to (``--extent``), for the log and to refuse an extent that
    selects no pixel before the engine starts. None if none."""
    e = layer.extent()
    px, py = layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY()
    c0 = max(0, math.ceil((rect.xMinimum() - e.xMinimum()) / px - 0.5))
    c1 = min(layer.width() - 1, math.floor((rect.xMaximum() - e.xMinimum()) / px - 0.5))
    r0 = max(0, math.ceil((e.yMaximum() - rect.yMaximum()) / py - 0.5))
    r1 = min(layer.height() - 1, math.floor((e.yMaximum() - rect.yMinimum()) / py - 0.5))
    if c1 < c0 or r1 < r0:
        return None
    return c0, r0, c1 - c0 + 1, r1 - r0 + 1


def advanced(param: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    """Flag an expert parameter so the dialog folds it under "Advanced parameters"."""
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    return param


def model_parameter(name: str) -> QgsProcessingParameterFile:
    """A bundle is a folder or a .zip of one. Folder behaviour: the dialog offers a folder picker,
    and (unlike File behaviour in 3.22, which wants a suffix) a typed folder or .zip path is valid.
    ``qgis_process help`` prints "Argument type: file, Path to a file" for every file parameter
    whatever its behaviour (fixed text in QGIS), so the description says "folder" first."""
    return QgsProcessingParameterFile(
        name, tr("Model bundle: a folder (or a .zip of one) written by Train; empty = the bundled default model"),
        behavior=QgsProcessingParameterFile.Behavior.Folder, optional=True)


def device_parameter(name: str) -> QgsProcessingParameterEnum:
    return advanced(QgsProcessingParameterEnum(
        name, tr("Device (auto = CUDA GPU when available, else CPU)"), options=DEVICES, defaultValue=0))


def input_sensor_parameter(name: str) -> QgsProcessingParameterEnum:
    """Which sensor made the RGB: auto reads the raster's metadata (Sentinel-2, Landsat), else a generic camera."""
    return QgsProcessingParameterEnum(
        name, tr("Input sensor (auto = from the raster's metadata, else a generic camera)"), options=INPUT_SENSORS,
        defaultValue=0)


def bands_parameter(name: str) -> QgsProcessingParameterString:
    """Which input bands are red, green and blue (1-based, e.g. ``3,2,1``)."""
    return QgsProcessingParameterString(
        name, tr("Input bands used as red, green, blue, e.g. 3,2,1 (empty = bands 1,2,3 of a 3-band raster; "
                 "with 4 or more bands, the bands whose description or colour says red, green, blue)"),
        "", optional=True)


def scale_parameter(name: str) -> QgsProcessingParameterNumber:
    """Divide input values by this to get reflectance 0-1."""
    param = QgsProcessingParameterNumber(
        name, tr("Input scale: values are divided by this (empty = 255 for 8-bit, 65535 for 16-bit, 1 for float; "
                 "10000 for Sentinel-2 / Landsat surface reflectance)"),
        type=QgsProcessingParameterNumber.Type.Double, optional=True)
    param.setMinimum(1e-9)
    return advanced(param)


def input_bands(alg, parameters, name, context, layer) -> str | None:
    """``--bands`` for the engine: as given, else read from the layer for 4+ bands, else None.

    Checked here, before the engine starts: every band must exist and there must be three."""
    text = (alg.parameterAsString(parameters, name, context) or "").strip()
    count = layer.bandCount()
    if text:
        try:
            bands = [int(b) for b in text.replace(" ", ",").split(",") if b]
        except ValueError:
            raise QgsProcessingException(tr("Input bands '{}' are not three band numbers such as 3,2,1").format(text)) \
                from None
        if len(bands) != 3 or not all(1 <= b <= count for b in bands):
            raise QgsProcessingException(tr("Input bands '{}': give three band numbers between 1 and {} "
                                            "(the raster has {} bands), e.g. 3,2,1").format(text, count, count))
        return ",".join(map(str, bands))
    if count == 3:
        return None
    if count < 3:
        raise QgsProcessingException(tr("The input has {} band(s); it needs red, green and blue").format(count))
    found = rgb_from_layer(layer)
    if found is None:
        names = "; ".join(f"{b}: {layer.bandName(b)}" for b in range(1, count + 1))
        raise QgsProcessingException(tr("The input has {} bands and none of their descriptions or colours says "
                                        "which are red, green and blue; set 'Input bands' (e.g. 3,2,1). "
                                        "Bands: {}").format(count, names))
    return ",".join(map(str, found))


_COLOUR_WORDS = {"red": ("red", "b4", "rot"), "green": ("green", "b3", "grün"), "blue": ("blue", "b2", "blau")}


def rgb_from_layer(layer) -> tuple[int, int, int] | None:
    """Red, green, blue band numbers from GDAL colour interpretation, else from band descriptions."""
    from qgis.core import QgsRaster

    provider = layer.dataProvider()
    interp = {}
    for band in range(1, layer.bandCount() + 1):
        ci = provider.colorInterpretation(band)
        for colour, code in (("red", QgsRaster.ColorInterpretation.RedBand),
                             ("green", QgsRaster.ColorInterpretation.GreenBand),
                             ("blue", QgsRaster.ColorInterpretation.BlueBand)):
            if ci == code:
                interp.setdefault(colour, band)
    if len(interp) == 3:
        return interp["red"], interp["green"], interp["blue"]
    named = {}
    for band in range(1, layer.bandCount() + 1):
        desc = layer.bandName(band).lower()
        desc = desc.split(":", 1)[-1].strip()  # QGIS shows "Band 3: red"
        for colour, words in _COLOUR_WORDS.items():
            if any(re.search(rf"\b{re.escape(w)}\b", desc) for w in words):
                named.setdefault(colour, band)
    if len(named) == 3:
        return named["red"], named["green"], named["blue"]
    return None


def optional_float(alg, parameters, name, context):
    if parameters.get(name) is None or parameters.get(name) == "":
        return None
    return alg.parameterAsDouble(parameters, name, context)


def int_parameter(name, description, default=None, minimum=None, maximum=None, optional=False):
    param = QgsProcessingParameterNumber(name, description, type=QgsProcessingParameterNumber.Type.Integer,
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
        raise QgsProcessingException(tr("Model bundle not found: {}").format(value))
    return str(path)


def layer_path(alg, parameters, name, context, required=True) -> str | None:
    """File path of a raster layer parameter (what the engine opens)."""
    layer = alg.parameterAsRasterLayer(parameters, name, context)
    if layer is None:
        if required:
            raise QgsProcessingException(tr("Could not load the raster layer for {}").format(name))
        return None
    source = layer.source()
    if not os.path.exists(source):
        raise QgsProcessingException(
            tr("{}: the engine reads raster files, and '{}' is not one ({}); save it as a GeoTIFF first").format(
                name, layer.name(), source))
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
    if error != QgsRasterFileWriter.WriterError.NoError:
        raise QgsProcessingException(f"Could not write {destination} (raster writer error {int(error)})")
    os.remove(source)
    return destination


def band_wavelengths(layer: QgsRasterLayer) -> list[float | None]:
    """Band centre wavelengths (nm) parsed from the band names QGIS shows (``Band 12: b12 545.7 nm`` or
    ``Band 12: b12 (545.7 Nanometers)``)."""
    result = []
    for band in range(1, layer.bandCount() + 1):
        match = _WAVELENGTH.search(layer.bandName(band) or "")
        if match is None:
            result.append(None)
        else:
            micro = match.group(2).lower() in ("um", "µm", "micrometers")
            result.append(float(match.group(1)) * (1000.0 if micro else 1.0))
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


def true_colour_renderer(layer: QgsRasterLayer):
    """Bands nearest 640/550/460 nm with a 2-98 % cumulative cut per band, or None for a layer
    without wavelengths in its band names (``Band 12: b12 545.7 nm``) or fewer than 3 bands."""
    from qgis.core import (
        QgsContrastEnhancement,
        QgsMultiBandColorRenderer,
        QgsRasterMinMaxOrigin,
    )

    bands = true_colour_bands(band_wavelengths(layer))
    if bands is None or layer.bandCount() < 3:
        return None
    provider = layer.dataProvider()
    renderer = QgsMultiBandColorRenderer(provider, *bands)
    for band, setter in zip(bands, (renderer.setRedContrastEnhancement, renderer.setGreenContrastEnhancement,
                                    renderer.setBlueContrastEnhancement), strict=True):
        low, high = provider.cumulativeCut(band, CUT_LOW, CUT_HIGH, layer.extent(), 250000)
        enhancement = QgsContrastEnhancement(provider.dataType(band))
        enhancement.setContrastEnhancementAlgorithm(
            QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum)
        enhancement.setMinimumValue(low)
        enhancement.setMaximumValue(high if high > low else low + 1e-6)
        setter(enhancement)
    origin = QgsRasterMinMaxOrigin()
    origin.setLimits(QgsRasterMinMaxOrigin.Limits.CumulativeCut)
    origin.setCumulativeCutLower(CUT_LOW)
    origin.setCumulativeCutUpper(CUT_HIGH)
    renderer.setMinMaxOrigin(origin)
    return renderer


def write_default_style(raster: str, feedback=None) -> str | None:
    """Write ``<stem>.qml`` beside ``raster`` (QGIS's default style for the file): true colour with a
    2-98 % cut, so the output opens right by hand and in new projects. Returns its path or None."""
    layer = QgsRasterLayer(raster, Path(raster).stem, "gdal")
    try:
        if not layer.isValid():
            return None
        renderer = true_colour_renderer(layer)
        if renderer is None:
            return None
        layer.setRenderer(renderer)
        path = contract.style_path(raster)
        message, ok = layer.saveNamedStyle(path)
        if not ok:
            if feedback is not None:
                feedback.pushWarning(tr("Could not write the default style {}: {}").format(path, message))
            return None
        return path
    finally:
        del layer


class HyperspectralLayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Names a loaded output and shows it in true colour (the same style as its .qml side file)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
            return
        layer.setName(self.name)
        renderer = true_colour_renderer(layer)
        if renderer is not None:
            layer.setRenderer(renderer)
            layer.triggerRepaint()


class LayerNamer(QgsProcessingLayerPostProcessorInterface):
    """Gives a loaded single-band output a name that says what it holds."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        if layer is not None and layer.isValid():
            layer.setName(self.name)


_STYLERS: dict[str, QgsProcessingLayerPostProcessorInterface] = {}


def style_on_load(context, destination: str, name: str, true_colour: bool = True) -> None:
    """Attach the true-colour styler (or just the name) when the output is loaded into the project."""
    if context.willLoadLayerOnCompletion(destination):
        styler = HyperspectralLayerStyler(name) if true_colour else LayerNamer(name)
        _STYLERS[destination] = styler  # QGIS keeps no Python reference; this one must outlive the run
        context.layerToLoadOnCompletionDetails(destination).setPostProcessor(styler)
