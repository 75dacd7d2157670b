"""hyperldm:train: fit a model bundle to the user's own hyperspectral scene (resumable)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingUtils,
)

from .. import contract
from .base import (
    DEFAULTS,
    DEVICES,
    INPUT_SENSORS,
    HyperLDMAlgorithm,
    advanced,
    device_parameter,
    input_sensor_parameter,
    int_parameter,
    layer_path,
    model_parameter,
    model_path,
    optional_int,
)

CHECKPOINT_GRACE_S = 30.0


class TrainAlgorithm(HyperLDMAlgorithm):
    """Run ``hyperldm-engine train``; a cancelled run keeps its checkpoints so a rerun resumes."""

    HSI = "HSI"
    RGB = "RGB"
    LABELS = "LABELS"
    ITERATIONS = "ITERATIONS"
    INIT = "INIT"
    DEVICE = "DEVICE"
    INPUT_SENSOR = "INPUT_SENSOR"
    WAVELENGTHS = "WAVELENGTHS"
    OUTPUT = "OUTPUT"

    ID = "train"
    DISPLAY_NAME = "Train on scene"
    HELP = (
        "Trains a HyperLDM model bundle (VQGAN, latent diffusion and spectral classifier) on a "
        "hyperspectral scene, so that Synthesize and Spectral Diversity can use a model that knows "
        "your sensor and land cover. The output folder is a model bundle for their Model parameter.\n\n"
        "RGB (optional): the matching RGB raster; empty = made from the HSI bands.\n"
        "Labels (optional): a class raster for the spectral classifier used by SD and SDM.\n"
        "Wavelengths (optional): a text or CSV file of band centres (and FWHM) in nm, for a raster "
        "whose metadata does not carry them.\n"
        "Iterations: the most iterations of every stage (VQGAN, diffusion and, with labels, the "
        "classifier); empty = the engine's defaults, {} per stage and {} for the classifier.\n"
        "Initial model (optional): fine-tune from this bundle instead of starting afresh.\n"
        "Checkpoints are kept beside the output (OUTPUT.checkpoints); running again with the same "
        "parameters, also after a cancel, resumes where it stopped. Training is slow on a CPU: use "
        "a CUDA GPU for real work.\n\n"
        "Example: HSI = casi_scene.tif, LABELS = landcover.tif, ITERATIONS = 4000, "
        "OUTPUT = my_model gives a bundle folder my_model.\n"
        "Command line: qgis_process run hyperldm:train -- HSI=hsi.tif ITERATIONS=200 OUTPUT=my_model"
    )

    def help_values(self):
        return DEFAULTS["iterations"], DEFAULTS["classifier_iterations"]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterRasterLayer(self.HSI, self.tr("Hyperspectral raster")))
        self.addParameter(QgsProcessingParameterFile(
            self.WAVELENGTHS, self.tr("Band wavelengths file, nm (empty = from the raster's metadata)"),
            behavior=QgsProcessingParameterFile.Behavior.File, fileFilter="Text (*.txt *.csv)", optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.RGB, self.tr("Matching RGB raster (empty = made from the HSI)"), optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.LABELS, self.tr("Class labels raster"), optional=True))
        self.addParameter(int_parameter(
            self.ITERATIONS, self.tr("Iterations, at most, of every stage (empty = engine default, {} per stage, "
                                     "{} for the classifier)").format(DEFAULTS["iterations"],
                                                                       DEFAULTS["classifier_iterations"]),
            None, 1, 10_000_000, optional=True))
        init = model_parameter(self.INIT)
        init.setDescription(self.tr("Initial model bundle to fine-tune: a folder (or a .zip of one); empty = train "
                                   "from scratch"))
        self.addParameter(advanced(init))
        self.addParameter(input_sensor_parameter(self.INPUT_SENSOR))
        self.addParameter(device_parameter(self.DEVICE))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT, self.tr("Output model bundle folder (required: a temporary folder is deleted when QGIS "
                                 "exits)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        hsi = layer_path(self, parameters, self.HSI, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        temp = Path(QgsProcessingUtils.tempFolder()).resolve()
        if not output or temp in Path(output).resolve().parents:
            raise QgsProcessingException(self.tr(
                "Choose an output folder for the model bundle: a temporary folder is deleted when QGIS exits, "
                "and training takes long"))
        if Path(output).is_dir() and not any(Path(output).iterdir()):
            Path(output).rmdir()  # an empty folder made for the destination; the engine writes the bundle
        args = ["train", hsi, output, "--overwrite",
                "--device", DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]]
        args += ["--input-sensor", INPUT_SENSORS[self.parameterAsEnum(parameters, self.INPUT_SENSOR, context)]]
        rgb = layer_path(self, parameters, self.RGB, context, required=False)
        if rgb:
            args += ["--rgb", rgb]
        labels = layer_path(self, parameters, self.LABELS, context, required=False)
        if labels:
            args += ["--labels", labels]
        wavelengths = self.parameterAsFile(parameters, self.WAVELENGTHS, context)
        if wavelengths:
            if not Path(wavelengths).is_file():
                raise QgsProcessingException(self.tr("Wavelengths file not found: {}").format(wavelengths))
            args += ["--wavelengths", wavelengths]
        iterations = optional_int(self, parameters, self.ITERATIONS, context)
        if iterations is not None:  # bounds every stage, the classifier's included
            args += ["--iterations", str(iterations)]
            if labels:
                args += ["--classifier-iterations", str(min(iterations, DEFAULTS["classifier_iterations"]))]
        init = model_path(self, parameters, self.INIT, context)
        if init:
            args += ["--init", init]
        # On cancel the unfinished bundle goes; OUTPUT.checkpoints stays so that a rerun resumes.
        # SIGTERM first, with time to write the checkpoint, before a SIGKILL.
        done = self.run_engine(args, feedback, cleanup=[output], term_grace_s=CHECKPOINT_GRACE_S)
        if done is None:
            feedback.pushInfo(self.tr("Checkpoints kept in {}.checkpoints; run again to resume.").format(output))
            return {}
        for role in (contract.REPORT, contract.LOSS_PLOT):
            for path in done.paths(role):
                feedback.pushInfo(self.tr("Wrote {}").format(path))
        return {self.OUTPUT: done.path(contract.BUNDLE)}
