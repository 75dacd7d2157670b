"""hyperldm:synthesize: an RGB raster in, a georeferenced 48-band hyperspectral GeoTIFF out."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterExtent,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import (
    DEVICES,
    INPUT_SENSORS,
    HyperLDMAlgorithm,
    advanced,
    deliver_raster,
    device_parameter,
    engine_target,
    input_sensor_parameter,
    int_parameter,
    layer_path,
    model_parameter,
    model_path,
    optional_int,
    style_on_load,
)


def format_extent(rect, authid: str) -> str:
    """The engine's ``--extent`` value: ``xmin,xmax,ymin,ymax [EPSG:xxxx]`` (CRS units)."""
    text = ",".join(repr(float(v)) for v in (rect.xMinimum(), rect.xMaximum(),
                                             rect.yMinimum(), rect.yMaximum()))
    return f"{text} [{authid}]" if authid else text


def creation_options(text: str) -> list[str]:
    """GDAL creation options from ``KEY=VALUE`` items separated by ``|`` or whitespace (the QGIS
    GDAL algorithms' convention)."""
    items = [item for chunk in (text or "").split("|") for item in chunk.split()]
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise QgsProcessingException(f"Creation option '{item}' is not KEY=VALUE (e.g. COMPRESS=ZSTD)")
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
    CREATION_OPTIONS = "CREATION_OPTIONS"
    ABUNDANCES = "ABUNDANCES"
    OUTPUT = "OUTPUT"

    def name(self):
        return "synthesize"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return "Synthesize HSI from RGB"

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return (
            "Synthesizes a hyperspectral cube (48 bands, 400-1000 nm, reflectance 0-1) from a "
            "georeferenced RGB raster with the HyperLDM latent diffusion model. The output keeps the "
            "input's CRS and pixel grid; band names give the wavelength (for example 'b12 580.4 nm'). "
            "Large scenes are processed in overlapping tiles with seamless noise, so memory stays flat.\n\n"
            "Samples: with more than one, the output stacks the samples as consecutive groups of 48 "
            "bands (sample 1 = bands 1-48). The same seed gives the same result.\n"
            "Extent (optional): synthesize only this part of the input.\n"
            "Abundances (optional): also write per-pixel abundances of the library spectra, summed by class.\n\n"
            "Example: INPUT = orthophoto_rgb.tif, SAMPLES = 3, SEED = 7, OUTPUT = hsi.tif gives a "
            "144-band GeoTIFF with three diverse cubes of the same scene.\n"
            "Command line: qgis_process run hyperldm:synthesize -- INPUT=rgb.tif SAMPLES=3 OUTPUT=hsi.tif\n\n"
            "Needs the hyperldm-engine program (see Processing > Options > Providers > HyperLDM)."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input RGB raster"))
        self.addParameter(model_parameter(self.MODEL))
        self.addParameter(int_parameter(self.SAMPLES, "Number of samples (diverse cubes)", 1, 1, 64))
        self.addParameter(int_parameter(self.SEED, "Random seed", 0, 0, 2**31 - 1))
        self.addParameter(advanced(int_parameter(
            self.STEPS, "Sampling steps (empty = model default)", None, 1, 1000, optional=True)))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Extent (empty = whole input)",
                                                       optional=True))
        self.addParameter(advanced(int_parameter(
            self.TILE_SIZE, "Tile size in pixels (empty = engine default)", None, 16, 16384, optional=True)))
        self.addParameter(advanced(int_parameter(
            self.OVERLAP, "Tile overlap in pixels (empty = engine default)", None, 0, 4096, optional=True)))
        self.addParameter(advanced(int_parameter(
            self.BATCH_SIZE, "Tiles per model call (larger helps on a GPU; empty = 1)", None, 1, 256,
            optional=True)))
        self.addParameter(input_sensor_parameter(self.INPUT_SENSOR))
        self.addParameter(device_parameter(self.DEVICE))
        options = advanced(QgsProcessingParameterString(
            self.CREATION_OPTIONS, "GDAL creation options (KEY=VALUE separated by |)", "", optional=True))
        options.setMetadata({"widget_wrapper": {
            "class": "processing.algs.gdal.ui.RasterOptionsWidget.RasterOptionsWidgetWrapper"}})
        self.addParameter(options)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.ABUNDANCES, "Abundances", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Hyperspectral output"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        source = layer_path(self, parameters, self.INPUT, context)
        destination = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        abundances_dest = self.parameterAsOutputLayer(parameters, self.ABUNDANCES, context)
        samples = self.parameterAsInt(parameters, self.SAMPLES, context)
        seed = self.parameterAsInt(parameters, self.SEED, context)
        feedback.pushInfo(f"Input: {source} ({layer.width()} x {layer.height()} px, {layer.bandCount()} "
                          f"bands, CRS {layer.crs().authid() or 'custom'}, pixel "
                          f"{layer.rasterUnitsPerPixelX():g} x {layer.rasterUnitsPerPixelY():g})")

        target = engine_target(destination, context)
        args = ["synthesize", source, target, "--samples", str(samples), "--seed", str(seed),
                "--device", DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)], "--overwrite"]
        args += ["--input-sensor", INPUT_SENSORS[self.parameterAsEnum(parameters, self.INPUT_SENSOR, context)]]
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
        if parameters.get(self.EXTENT) not in (None, ""):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            if not rect.isNull() and not rect.isEmpty():
                args += ["--extent", format_extent(rect, layer.crs().authid())]
                feedback.pushInfo(f"Extent in the input CRS: {args[-1]}")
        for option in creation_options(self.parameterAsString(parameters, self.CREATION_OPTIONS, context)):
            args += ["--co", option]
        abundances_target = engine_target(abundances_dest, context) if abundances_dest else None
        if abundances_target:
            args += ["--abundances", abundances_target]

        outputs = self.run_engine(args, feedback, cleanup=[target, abundances_target])
        if outputs is None:  # cancelled
            return {}
        deliver_raster(target, destination, feedback)
        results = {self.OUTPUT: destination}
        if abundances_target:
            results[self.ABUNDANCES] = deliver_raster(abundances_target, abundances_dest, feedback)
        style_on_load(context, destination, "HSI" if samples == 1 else f"HSI ({samples} samples)")
        return results
