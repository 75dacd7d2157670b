"""hyperldm:synthesize: an RGB raster in, a georeferenced 48-band hyperspectral GeoTIFF out."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from .. import contract
from .base import (
    DEFAULTS,
    SceneAlgorithm,
    advanced,
    deliver_raster,
    engine_target,
    int_parameter,
    style_on_load,
    tr,
    write_default_style,
)

MODES = ["sample", "mean"]
ABUNDANCE_PRIOR = ["auto", "off"]


def creation_options(text: str) -> list[str]:
    """GDAL creation options from ``KEY=VALUE`` items separated by ``|`` or whitespace (the QGIS
    GDAL algorithms' convention)."""
    items = [item for chunk in (text or "").split("|") for item in chunk.split()]
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise QgsProcessingException(tr("Creation option '{}' is not KEY=VALUE (e.g. COMPRESS=ZSTD)").format(item))
    return items


class SynthesizeAlgorithm(SceneAlgorithm):
    """Run ``hyperldm-engine synthesize`` on the input RGB and load the cube it writes."""

    ID = "synthesize"
    DISPLAY_NAME = "Synthesize HSI from RGB"
    HELP = (
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
        "RGB consistency (advanced): when the input sensor is known, every cube reproduces the input RGB "
        "exactly; the RGB correction says how: auto (default) centres the samples on their mean fused with "
        "the model's deterministic map of the RGB (a ridge in the default model) and spreads the "
        "correction over every band, near infrared "
        "included, by the measured errors, keeping the samples' spread (on top-of-atmosphere input only when "
        "the model's anchor has seen such scenes, as the default model's has; else the smallest change).\n"
        "Abundances: re-weighted by the model's land-cover group prior from the RGB, so that their dominant "
        "material group reads as land cover.\n"
        "Extent (optional): synthesize only this part of the input: the output covers the extent "
        "snapped to the input's pixels, and only the tiles that touch it are computed.\n"
        "Abundances (optional): also write per-pixel abundances of the library spectra, summed by class.\n"
        "Each raster output gets a .qml style beside it, so it opens in true colour (bands nearest "
        "640/550/460 nm, 2-98 % stretch) also when opened by hand.\n\n"
        "Example: INPUT = orthophoto_rgb.tif, SAMPLES = 3, SEED = 7, OUTPUT = hsi.tif gives a "
        "144-band GeoTIFF with three diverse cubes of the same scene.\n"
        "Command line: qgis_process run hyperldm:synthesize -- INPUT=rgb.tif SAMPLES=3 OUTPUT=hsi.tif"
    )

    MODE = "MODE"
    ABUNDANCE_PRIOR = "ABUNDANCE_PRIOR"
    OUTPUT_SENSOR = "OUTPUT_SENSOR"
    CREATION_OPTIONS = "CREATION_OPTIONS"
    ABUNDANCES = "ABUNDANCES"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        mode = QgsProcessingParameterEnum(
            self.MODE, self.tr("Mode (sample = diverse draws; mean = one deterministic cube)"), options=MODES,
            defaultValue=MODES.index(DEFAULTS["mode"]))
        output_sensor = advanced(QgsProcessingParameterString(
            self.OUTPUT_SENSOR, self.tr("Output sensor: resample the cube to its bands, a name (e.g. sentinel2-msi, "
                                        "landsat8-oli, enmap) or a CSV of band centres and FWHM (empty = the "
                                        "model's 48 bands; see 'hyperldm-engine synthesize --help')"),
            "", optional=True))
        self.add_scene_parameters(int_parameter(self.SAMPLES, self.tr("Number of samples (diverse cubes)"),
                                                DEFAULTS["samples"], 1, 64),
                                  after_seed=[mode], after_sensor=[*self.consistency_parameters(), output_sensor])
        options = advanced(QgsProcessingParameterString(
            self.CREATION_OPTIONS, self.tr("GDAL creation options (KEY=VALUE separated by |)"), "", optional=True))
        options.setMetadata({"widget_wrapper": {
            "class": "processing.algs.gdal.ui.RasterOptionsWidget.RasterOptionsWidgetWrapper"}})
        self.addParameter(options)
        self.addParameter(advanced(QgsProcessingParameterEnum(
            self.ABUNDANCE_PRIOR, self.tr("Abundance prior: auto = re-weighted by the model's land-cover group prior "
                                          "from the RGB (dominant group reads as land cover); off = the decoder's "
                                          "own mix"), options=ABUNDANCE_PRIOR, defaultValue=0)))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.ABUNDANCES, self.tr("Abundances (one band per library class, fraction 0-1)"), optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Hyperspectral output (GeoTIFF, reflectance 0-1, 48 bands per sample)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        _, source, scene_args = self.scene_arguments(parameters, context, feedback)  # checked before the engine
        destination = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        abundances_dest = self.parameterAsOutputLayer(parameters, self.ABUNDANCES, context)
        samples = self.parameterAsInt(parameters, self.SAMPLES, context)
        target = engine_target(destination, context)
        args = ["synthesize", source, target, "--samples", str(samples), "--overwrite", *scene_args,
                "--mode", MODES[self.parameterAsEnum(parameters, self.MODE, context)],
                *self.consistency_arguments(parameters, context)]
        output_sensor = (self.parameterAsString(parameters, self.OUTPUT_SENSOR, context) or "").strip()
        if output_sensor:
            args += ["--output-sensor", output_sensor]
        if samples > 1:
            args += ["--sample-layout", "bands"]
        for option in creation_options(self.parameterAsString(parameters, self.CREATION_OPTIONS, context)):
            args += ["--co", option]
        abundances_target = engine_target(abundances_dest, context) if abundances_dest else None
        if abundances_target:
            args += ["--abundances", abundances_target, "--abundance-prior",
                     ABUNDANCE_PRIOR[self.parameterAsEnum(parameters, self.ABUNDANCE_PRIOR, context)]]

        # with an extent the engine writes the extent's pixels only (computing only the tiles that touch it)
        done = self.run_engine(args, feedback, cleanup=[target, abundances_target])
        if done is None:  # cancelled
            return {}
        written = done.paths(contract.HSI)  # what the engine says it wrote, not a guessed name
        if len(written) != 1:
            raise QgsProcessingException(self.tr("The engine wrote {} cubes where one file was asked for: {}").format(
                len(written), ", ".join(written)))
        deliver_raster(written[0], destination, feedback)
        results = {self.OUTPUT: destination}
        write_default_style(destination, feedback)
        if abundances_target:
            results[self.ABUNDANCES] = deliver_raster(done.path(contract.ABUNDANCES), abundances_dest, feedback)
        style_on_load(context, destination, "HSI" if samples == 1 else f"HSI ({samples} samples)")
        return results
