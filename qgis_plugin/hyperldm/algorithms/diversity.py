"""hyperldm:diversity: K samples from one RGB, the paper's SD and SDM, per-pixel maps, a report."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputHtml,
    QgsProcessingOutputNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingUtils,
)

from .base import (
    DEVICES,
    INPUT_SENSORS,
    HyperLDMAlgorithm,
    advanced,
    deliver_raster,
    device_parameter,
    input_sensor_parameter,
    int_parameter,
    layer_path,
    model_parameter,
    model_path,
    optional_int,
)

#: engine file name for each raster destination
RASTERS = {"SPREAD": "spread.tif", "SD_MAP": "sd_map.tif", "SDM_MAP": "sdm_map.tif"}


def read_report(path: Path) -> dict:
    """``report.json`` of a diversity run; SD and SDM must be finite numbers."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QgsProcessingException(f"The engine's diversity report {path} is unreadable: {exc}") from None
    for key in ("sd", "sdm"):
        value = report.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise QgsProcessingException(f"The engine's diversity report {path} has no finite '{key}'")
    return report


class DiversityAlgorithm(HyperLDMAlgorithm):
    """Run ``hyperldm-engine diversity`` in a temporary folder and deliver its rasters and numbers."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    SAMPLES = "SAMPLES"
    SEED = "SEED"
    STEPS = "STEPS"
    DEVICE = "DEVICE"
    INPUT_SENSOR = "INPUT_SENSOR"
    SPREAD = "SPREAD"
    SD_MAP = "SD_MAP"
    SDM_MAP = "SDM_MAP"
    SD = "SD"
    SDM = "SDM"
    REPORT = "REPORT"

    def name(self):
        return "diversity"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return "Spectral Diversity"

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return (
            "Draws several hyperspectral samples from one RGB raster and measures how diverse they are "
            "with the HyperLDM paper's metrics (Liu et al., TGRS 2023), using the model's spectral "
            "classifier.\n\n"
            "SD (eq. 26-28): diversity of the spectra within a cube (1 = one class everywhere).\n"
            "SDM (eq. 29): diversity between the samples at the same pixel (1 = identical samples).\n"
            "Outputs: the spread between samples (per pixel and band), the per-pixel SD and SDM maps, "
            "both numbers and an HTML report.\n\n"
            "Example: INPUT = orthophoto_rgb.tif, SAMPLES = 4, SEED = 0 gives SD and SDM of four "
            "samples and maps showing where the samples differ.\n"
            "Command line: qgis_process run hyperldm:diversity -- INPUT=rgb.tif SAMPLES=4 "
            "SPREAD=spread.tif SD_MAP=sd.tif SDM_MAP=sdm.tif\n\n"
            "Needs the hyperldm-engine program (see Processing > Options > Providers > HyperLDM)."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input RGB raster"))
        self.addParameter(model_parameter(self.MODEL))
        self.addParameter(int_parameter(self.SAMPLES, "Number of samples (at least 2)", 4, 2, 64))
        self.addParameter(int_parameter(self.SEED, "Random seed", 0, 0, 2**31 - 1))
        self.addParameter(advanced(int_parameter(
            self.STEPS, "Sampling steps (empty = model default)", None, 1, 1000, optional=True)))
        self.addParameter(input_sensor_parameter(self.INPUT_SENSOR))
        self.addParameter(device_parameter(self.DEVICE))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.SPREAD, "Spread between samples (standard deviation per band)"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.SD_MAP, "SD map (per pixel)"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.SDM_MAP, "SDM map (per pixel)"))
        self.addOutput(QgsProcessingOutputNumber(self.SD, "SD (spectral diversity within a sample)"))
        self.addOutput(QgsProcessingOutputNumber(self.SDM, "SDM (diversity between samples)"))
        self.addOutput(QgsProcessingOutputHtml(self.REPORT, "Diversity report"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        source = layer_path(self, parameters, self.INPUT, context)
        destinations = {key: self.parameterAsOutputLayer(parameters, key, context) for key in RASTERS}
        args = ["diversity", source, None,
                "--samples", str(self.parameterAsInt(parameters, self.SAMPLES, context)),
                "--seed", str(self.parameterAsInt(parameters, self.SEED, context)), "--overwrite",
                "--device", DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]]
        args += ["--input-sensor", INPUT_SENSORS[self.parameterAsEnum(parameters, self.INPUT_SENSOR, context)]]
        steps = optional_int(self, parameters, self.STEPS, context)
        if steps is not None:
            args += ["--steps", str(steps)]
        model = model_path(self, parameters, self.MODEL, context)
        if model:
            args += ["--model", model]

        work = Path(tempfile.mkdtemp(prefix="hyperldm-diversity-", dir=QgsProcessingUtils.tempFolder()))
        args[2] = str(work / "out")
        try:
            outputs = self.run_engine(args, feedback, cleanup=[str(work / "out")])
            if outputs is None:  # cancelled
                return {}
            out = work / "out"
            missing = [name for name in [*RASTERS.values(), "report.json", "report.html"]
                       if not (out / name).is_file()]
            if missing:
                raise QgsProcessingException(f"The engine's diversity run left out {', '.join(missing)} in {out}")
            report = read_report(out / "report.json")
            results = {key: deliver_raster(str(out / RASTERS[key]), dest, feedback)
                       for key, dest in destinations.items()}
            # the report links its figures by relative name: move it together with them
            html = QgsProcessingUtils.generateTempFilename("report.html")
            Path(html).parent.mkdir(parents=True, exist_ok=True)
            for item in out.iterdir():
                if item.suffix.lower() in (".html", ".json", ".md", ".png"):
                    shutil.move(str(item), str(Path(html).parent / item.name))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        feedback.pushInfo(f"SD = {report['sd']:.4f}, SDM = {report['sdm']:.4f}")
        results.update({self.SD: float(report["sd"]), self.SDM: float(report["sdm"]), self.REPORT: html})
        return results
