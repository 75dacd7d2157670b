"""hyperldm:synthesize: an RGB raster in, a georeferenced 48-band hyperspectral GeoTIFF out."""

from __future__ import annotations

import math
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .. import contract
from .base import (
    DEFAULTS,
    DEVICES,
    INPUT_SENSORS,
    HyperLDMAlgorithm,
    advanced,
    bands_parameter,
    deliver_raster,
    device_parameter,
    engine_target,
    input_bands,
    input_sensor_parameter,
    int_parameter,
    layer_path,
    model_parameter,
    model_path,
    optional_float,
    optional_int,
    scale_parameter,
    style_on_load,
    tr,
    write_default_style,
)

MODES = ["sample", "mean"]
RGB_CONSISTENCY = ["auto", "on", "off"]


def clip_to_window(source: str, window, options, context, feedback) -> str:
    """Copy the ``window`` (col, row, width, height) of ``source`` beside it with gdal:translate
    (band descriptions, wavelengths and nodata come along), remove ``source``, return the copy."""
    import processing

    clipped = str(Path(source).with_name(Path(source).name.replace(".hyperldm-full", ".hyperldm-clip")))
    try:
        processing.run("gdal:translate", {
            "INPUT": source, "EXTRA": "-srcwin {} {} {} {}".format(*window),
            "OPTIONS": "|".join([*CLIP_OPTIONS, *options]), "OUTPUT": clipped},
            context=context, feedback=feedback, is_child_algorithm=True)
    finally:
        Path(source).unlink(missing_ok=True)
        Path(source + ".aux.xml").unlink(missing_ok=True)
    if not Path(clipped).is_file():
        raise QgsProcessingException(tr("Could not clip the output to the extent ({})").format(clipped))
    return clipped


def format_extent(rect, authid: str) -> str:
    """The engine's ``--extent`` value: ``xmin,xmax,ymin,ymax [EPSG:xxxx]`` (CRS units)."""
    text = ",".join(repr(float(v)) for v in (rect.xMinimum(), rect.xMaximum(),
                                             rect.yMinimum(), rect.yMaximum()))
    return f"{text} [{authid}]" if authid else text


def pixel_window(layer, rect) -> tuple[int, int, int, int] | None:
    """(col, row, width, height) of the input pixels whose centres lie in ``rect`` (input CRS): the
    extent snapped to the input grid, as the engine's --extent selects pixels. None if none."""
    e = layer.extent()
    px, py = layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY()
    c0 = max(0, math.ceil((rect.xMinimum() - e.xMinimum()) / px - 0.5))
    c1 = min(layer.width() - 1, math.floor((rect.xMaximum() - e.xMinimum()) / px - 0.5))
    r0 = max(0, math.ceil((e.yMaximum() - rect.yMaximum()) / py - 0.5))
    r1 = min(layer.height() - 1, math.floor((e.yMaximum() - rect.yMinimum()) / py - 0.5))
    if c1 < c0 or r1 < r0:
        return None
    return c0, r0, c1 - c0 + 1, r1 - r0 + 1


#: what the engine's GeoTIFF writer uses; the clipped copy keeps it (user options come after and win)
CLIP_OPTIONS = ["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=3", "BIGTIFF=IF_SAFER"]


def creation_options(text: str) -> list[str]:
    """GDAL creation options from ``KEY=VALUE`` items separated by ``|`` or whitespace (the QGIS
    GDAL algorithms' convention)."""
    items = [item for chunk in (text or "").split("|") for item in chunk.split()]
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise QgsProcessingException(tr("Creation option '{}' is not KEY=VALUE (e.g. COMPRESS=ZSTD)").format(item))
    return items


class SynthesizeAlgorithm(HyperLDMAlgorithm):
    """Run ``hyperldm-engine synthesize`` on the input RGB and load the cube it writes."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    SAMPLES = "SAMPLES"
    SEED = "SEED"
    STEPS = "STEPS"
    EXTENT = "EXTENT"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    DEVICE = "DEVICE"
    INPUT_SENSOR = "INPUT_SENSOR"
    INPUT_BANDS = "INPUT_BANDS"
    INPUT_SCALE = "INPUT_SCALE"
    MODE = "MODE"
    RGB_CONSISTENCY = "RGB_CONSISTENCY"
    OUTPUT_SENSOR = "OUTPUT_SENSOR"
    CREATION_OPTIONS = "CREATION_OPTIONS"
    ABUNDANCES = "ABUNDANCES"
    OUTPUT = "OUTPUT"

    def name(self):
        return "synthesize"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Synthesize HSI from RGB")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.tr(
            "Synthesizes a hyperspectral cube (48 bands, 400-1000 nm, reflectance 0-1) from a "
            "georeferenced RGB raster with the HyperLDM latent diffusion model. The output keeps the "
            "input's CRS and pixel grid; band names give the band and its wavelength (for example "
            "'s0 b12 545.7 nm'). Large scenes are processed in overlapping tiles with seamless noise, so "
            "memory stays flat.\n\n"
            "Samples: with more than one, the output stacks the samples as consecutive groups of 48 "
            "bands; band names start with the sample, s0 (bands 1-48), s1 (bands 49-96) and so on. "
            "The same seed gives the same result.\n"
            "Input bands / scale: a 4-band stack (e.g. Landsat or Sentinel-2 with NIR) needs the red, "
            "green and blue band numbers unless its band descriptions or colours say which they are; "
            "16-bit surface reflectance usually needs scale 10000.\n"
            "Mode: sample draws diverse cubes; mean gives one deterministic cube (accuracy over diversity).\n"
            "Extent (optional): synthesize only this part of the input; only the tiles that touch it are "
            "computed.\n"
            "Abundances (optional): also write per-pixel abundances of the library spectra, summed by class.\n"
            "Each raster output gets a .qml style beside it, so it opens in true colour (bands nearest "
            "640/550/460 nm, 2-98 % stretch) also when opened by hand.\n\n"
            "Example: INPUT = orthophoto_rgb.tif, SAMPLES = 3, SEED = 7, OUTPUT = hsi.tif gives a "
            "144-band GeoTIFF with three diverse cubes of the same scene.\n"
            "Command line: qgis_process run hyperldm:synthesize -- INPUT=rgb.tif SAMPLES=3 OUTPUT=hsi.tif\n\n"
            "Needs the hyperldm-engine program: run 'Set up or update the engine' once."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input RGB raster")))
        self.addParameter(bands_parameter(self.INPUT_BANDS))
        self.addParameter(scale_parameter(self.INPUT_SCALE))
        self.addParameter(model_parameter(self.MODEL))
        self.addParameter(int_parameter(self.SAMPLES, self.tr("Number of samples (diverse cubes)"),
                                        DEFAULTS["samples"], 1, 64))
        self.addParameter(int_parameter(self.SEED, self.tr("Random seed"), 0, 0, 2**31 - 1))
        self.addParameter(QgsProcessingParameterEnum(
            self.MODE, self.tr("Mode (sample = diverse draws; mean = one deterministic cube)"), options=MODES,
            defaultValue=MODES.index(DEFAULTS["mode"])))
        self.addParameter(advanced(int_parameter(
            self.STEPS, self.tr("Sampling steps (empty = engine default, {})").format(DEFAULTS["steps"]),
            None, 1, 1000, optional=True)))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent (empty = whole input)"),
                                                       optional=True))
        self.addParameter(advanced(int_parameter(
            self.TILE_SIZE, self.tr("Tile size in pixels (empty = engine default, {})").format(DEFAULTS["tile_size"]),
            None, 16, 16384, optional=True)))
        self.addParameter(advanced(int_parameter(
            self.OVERLAP, self.tr("Tile overlap in pixels (empty = engine default, {})").format(DEFAULTS["overlap"]),
            None, 0, 4096, optional=True)))
        self.addParameter(advanced(int_parameter(
            self.BATCH_SIZE, self.tr("Tiles per model call (larger helps on a GPU; empty = engine default, {})"
                                     ).format(DEFAULTS["batch_size"]), None, 1, 256, optional=True)))
        self.addParameter(input_sensor_parameter(self.INPUT_SENSOR))
        self.addParameter(advanced(QgsProcessingParameterEnum(
            self.RGB_CONSISTENCY, self.tr("RGB consistency: every cube reproduces the input RGB through the input "
                                          "sensor (auto = when the sensor is known)"),
            options=RGB_CONSISTENCY, defaultValue=RGB_CONSISTENCY.index(DEFAULTS["rgb_consistency"]))))
        self.addParameter(advanced(QgsProcessingParameterString(
            self.OUTPUT_SENSOR, self.tr("Output sensor: resample the cube to its bands, a name (e.g. sentinel2-msi, "
                                        "landsat8-oli, enmap) or a CSV of band centres and FWHM (empty = the "
                                        "model's 48 bands; see 'hyperldm-engine synthesize --help')"),
            "", optional=True)))
        self.addParameter(device_parameter(self.DEVICE))
        options = advanced(QgsProcessingParameterString(
            self.CREATION_OPTIONS, self.tr("GDAL creation options (KEY=VALUE separated by |)"), "", optional=True))
        options.setMetadata({"widget_wrapper": {
            "class": "processing.algs.gdal.ui.RasterOptionsWidget.RasterOptionsWidgetWrapper"}})
        self.addParameter(options)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.ABUNDANCES, self.tr("Abundances (one band per library class, fraction 0-1)"), optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Hyperspectral output (GeoTIFF, reflectance 0-1, 48 bands per sample)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        source = layer_path(self, parameters, self.INPUT, context)
        destination = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        abundances_dest = self.parameterAsOutputLayer(parameters, self.ABUNDANCES, context)
        samples = self.parameterAsInt(parameters, self.SAMPLES, context)
        seed = self.parameterAsInt(parameters, self.SEED, context)
        bands = input_bands(self, parameters, self.INPUT_BANDS, context, layer)  # checked before the engine starts
        feedback.pushInfo(f"Input: {source} ({layer.width()} x {layer.height()} px, {layer.bandCount()} "
                          f"bands, CRS {layer.crs().authid() or 'custom'}, pixel "
                          f"{layer.rasterUnitsPerPixelX():g} x {layer.rasterUnitsPerPixelY():g})")

        target = engine_target(destination, context)
        args = ["synthesize", source, target, "--samples", str(samples), "--seed", str(seed),
                "--device", DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)], "--overwrite"]
        args += ["--input-sensor", INPUT_SENSORS[self.parameterAsEnum(parameters, self.INPUT_SENSOR, context)]]
        args += ["--mode", MODES[self.parameterAsEnum(parameters, self.MODE, context)],
                 "--rgb-consistency", RGB_CONSISTENCY[self.parameterAsEnum(parameters, self.RGB_CONSISTENCY, context)]]
        if bands:
            args += ["--bands", bands]
            feedback.pushInfo(self.tr("Input bands used as red, green, blue: {}").format(bands))
        scale = optional_float(self, parameters, self.INPUT_SCALE, context)
        if scale is not None:
            args += ["--scale", repr(scale)]
        output_sensor = (self.parameterAsString(parameters, self.OUTPUT_SENSOR, context) or "").strip()
        if output_sensor:
            args += ["--output-sensor", output_sensor]
        if samples > 1:
            args += ["--sample-layout", "bands"]
        model = model_path(self, parameters, self.MODEL, context)
        if model:
            args += ["--model", model]
        for name, flag in ((self.STEPS, "--steps"), (self.TILE_SIZE, "--tile-size"),
                           (self.OVERLAP, "--overlap"), (self.BATCH_SIZE, "--batch-size")):
            value = optional_int(self, parameters, name, context)
            if value is not None:
                args += [flag, str(value)]
        window = None
        if parameters.get(self.EXTENT) not in (None, ""):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            if not rect.isNull() and not rect.isEmpty():
                window = pixel_window(layer, rect)
                if window is None:
                    raise QgsProcessingException(self.tr("The extent selects no pixel of the input"))
                args += ["--extent", format_extent(rect, layer.crs().authid())]
                feedback.pushInfo(self.tr("Extent in the input CRS: {}; output clipped to {} x {} px").format(
                    args[-1], window[2], window[3]))
        options = creation_options(self.parameterAsString(parameters, self.CREATION_OPTIONS, context))
        for option in options:
            args += ["--co", option]
        if window is not None:  # the engine computes only the tiles touching the extent; the plugin clips
            target = str(Path(target).with_name(f".{Path(target).stem}.hyperldm-full.tif"))
            args[2] = target
        abundances_target = engine_target(abundances_dest, context) if abundances_dest else None
        if abundances_target:
            args += ["--abundances", abundances_target]

        done = self.run_engine(args, feedback, cleanup=[target, abundances_target])
        if done is None:  # cancelled
            return {}
        written = done.paths(contract.HSI)  # what the engine says it wrote, not a guessed name
        if len(written) != 1:
            raise QgsProcessingException(self.tr("The engine wrote {} cubes where one file was asked for: {}").format(
                len(written), ", ".join(written)))
        if window is not None:
            written[0] = clip_to_window(written[0], window, options, context, feedback)
        deliver_raster(written[0], destination, feedback)
        results = {self.OUTPUT: destination}
        write_default_style(destination, feedback)
        if abundances_target:
            written_abundances = done.path(contract.ABUNDANCES)
            if window is not None:
                full = str(Path(written_abundances).with_name(f".{Path(written_abundances).stem}.hyperldm-full.tif"))
                Path(written_abundances).replace(full)
                written_abundances = clip_to_window(full, window, options, context, feedback)
            results[self.ABUNDANCES] = deliver_raster(written_abundances, abundances_dest, feedback)
        style_on_load(context, destination, "HSI" if samples == 1 else f"HSI ({samples} samples)")
        return results
