"""hyperldm:train: fit a model bundle to the user's own hyperspectral scene (resumable)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import (
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
    OUTPUT = "OUTPUT"

    def name(self):
        return "train"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return "Train on scene"

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return (
            "Trains a HyperLDM model bundle (VQGAN, latent diffusion and spectral classifier) on a "
            "hyperspectral scene, so that Synthesize and Spectral Diversity can use a model that knows "
            "your sensor and land cover. The output folder is a model bundle for their Model parameter.\n\n"
            "RGB (optional): the matching RGB raster; empty = made from the HSI bands.\n"
            "Labels (optional): a class raster for the spectral classifier used by SD and SDM.\n"
            "Initial model (optional): fine-tune from this bundle instead of starting afresh.\n"
            "Checkpoints are kept beside the output (OUTPUT.checkpoints); running again with the same "
            "parameters, also after a cancel, resumes where it stopped. Training is slow on a CPU: use "
            "a CUDA GPU for real work.\n\n"
            "Example: HSI = casi_scene.tif, LABELS = landcover.tif, ITERATIONS = 4000, "
            "OUTPUT = my_model gives a bundle folder my_model.\n"
            "Command line: qgis_process run hyperldm:train -- HSI=hsi.tif ITERATIONS=200 OUTPUT=my_model\n\n"
            "Needs the hyperldm-engine program (see Processing > Options > Providers > HyperLDM)."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterRasterLayer(self.HSI, "Hyperspectral raster"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.RGB, "Matching RGB raster (empty = made from the HSI)", optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.LABELS, "Class labels raster", optional=True))
        self.addParameter(int_parameter(
            self.ITERATIONS, "Iterations (empty = engine default)", None, 1, 10_000_000, optional=True))
        init = model_parameter(self.INIT)
        init.setDescription("Initial model bundle to fine-tune (empty = train from scratch)")
        self.addParameter(advanced(init))
        self.addParameter(input_sensor_parameter(self.INPUT_SENSOR))
        self.addParameter(device_parameter(self.DEVICE))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Output model bundle folder"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        hsi = layer_path(self, parameters, self.HSI, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
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
        iterations = optional_int(self, parameters, self.ITERATIONS, context)
        if iterations is not None:
            args += ["--iterations", str(iterations)]
        init = model_path(self, parameters, self.INIT, context)
        if init:
            args += ["--init", init]
        # On cancel the unfinished bundle goes; OUTPUT.checkpoints stays so that a rerun resumes.
        # SIGTERM first, with time to write the checkpoint, before a SIGKILL.
        outputs = self.run_engine(args, feedback, cleanup=[output], term_grace_s=CHECKPOINT_GRACE_S)
        if outputs is None:
            feedback.pushInfo(f"Checkpoints kept in {output}.checkpoints; run again to resume.")
            return {}
        return {self.OUTPUT: output}
