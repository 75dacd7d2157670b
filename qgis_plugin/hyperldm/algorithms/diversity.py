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
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
)

from .. import contract
from .base import DEFAULTS, SceneAlgorithm, deliver_raster, int_parameter, style_on_load, tr, write_default_style

#: the contract's output role of each raster destination
RASTERS = {"MEAN": contract.MEAN, "SPREAD": contract.SPREAD, "SD_MAP": contract.SD_MAP, "SDM_MAP": contract.SDM_MAP}


def read_report(path: Path) -> dict:
    """``report.json`` of a diversity run; SD and SDM must be finite numbers."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QgsProcessingException(tr("The engine's diversity report {} is unreadable: {}").format(path, exc)) \
            from None
    for key in ("sd", "sdm"):
        value = report.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise QgsProcessingException(tr("The engine's diversity report {} has no finite '{}'").format(path, key))
    return report


class DiversityAlgorithm(SceneAlgorithm):
    """Run ``hyperldm-engine diversity`` in a temporary folder and deliver its rasters, numbers and
    report (the report to a lasting folder the user chooses, beside the outputs by default)."""

    ID = "diversity"
    DISPLAY_NAME = "Spectral Diversity"
    HELP = (
        "Draws several hyperspectral samples from one RGB raster and measures how diverse they are "
        "with the HyperLDM paper's metrics (Liu et al., TGRS 2023), using the model's spectral "
        "classifier.\n\n"
        "SD (eq. 26-28): diversity of the spectra within a cube; SDM (eq. 29): diversity between the "
        "samples at the same pixel.\n"
        "Units: the SD and SDM maps hold a Kullback-Leibler divergence per pixel in nats, where 0 means "
        "no diversity. The SD and SDM numbers are exponentials of such means, where 1 means no "
        "diversity: SDM = exp(mean of the SDM map); SD = the average over the classifier's classes of "
        "exp(mean KL of the pixels of that class).\n\n"
        "The samples are made to reproduce the input RGB as Synthesize makes them (advanced: RGB "
        "consistency, RGB correction, Harmonise), so the numbers describe the cubes Synthesize writes.\n\n"
        "Extent (optional): measure only this part of the input: the maps cover the extent snapped "
        "to the input's pixels, only the tiles that touch it are computed, and SD and SDM are those of "
        "the extent's pixels.\n\n"
        "Outputs:\n"
        "- Mean: the mean of the samples (48 bands, reflectance 0-1, true-colour style).\n"
        "- Spread: 2 bands; band 1 = standard deviation between the samples averaged over the "
        "wavelengths (reflectance), band 2 = mean spectral angle between the samples (radians).\n"
        "- SD map and SDM map: 1 band each, nats (see Units).\n"
        "- Report folder: report.html with its figures, report.md and report.json; empty = a folder "
        "'<Spread name>_report' beside the Spread output.\n\n"
        "Example: INPUT = orthophoto_rgb.tif, SAMPLES = 4, SEED = 0 gives SD and SDM of four "
        "samples and maps showing where the samples differ.\n"
        "Command line: qgis_process run hyperldm:diversity -- INPUT=rgb.tif SAMPLES=4 "
        "SPREAD=spread.tif SD_MAP=sd.tif SDM_MAP=sdm.tif REPORT_FOLDER=report"
    )

    MEAN = "MEAN"
    SPREAD = "SPREAD"
    SD_MAP = "SD_MAP"
    SDM_MAP = "SDM_MAP"
    REPORT_FOLDER = "REPORT_FOLDER"
    SD = "SD"
    SDM = "SDM"
    REPORT = "REPORT"

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.add_scene_parameters(int_parameter(
            self.SAMPLES, self.tr("Number of samples (at least 2; engine default {})").format(
                DEFAULTS["diversity_samples"]), DEFAULTS["diversity_samples"], 2, 64),
            after_sensor=self.consistency_parameters())
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.MEAN, self.tr("Mean of the samples (48 bands, reflectance 0-1)"), optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.SPREAD, self.tr("Spread between samples (band 1: std, reflectance; band 2: spectral angle, rad)")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.SD_MAP, self.tr("SD map (KL per pixel, nats; 0 = no diversity)")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.SDM_MAP, self.tr("SDM map (KL per pixel, nats; 0 = identical samples)")))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.REPORT_FOLDER, self.tr("Report folder (HTML, figures, JSON; empty = beside the Spread output)"),
            optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.SD, self.tr("SD (diversity within a sample; 1 = none)")))
        self.addOutput(QgsProcessingOutputNumber(self.SDM, self.tr("SDM (diversity between samples; 1 = none)")))
        self.addOutput(QgsProcessingOutputHtml(self.REPORT, self.tr("Diversity report")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        _, source, scene_args = self.scene_arguments(parameters, context, feedback)  # checked before the engine
        destinations = {key: self.parameterAsOutputLayer(parameters, key, context) for key in RASTERS}
        destinations = {key: dest for key, dest in destinations.items() if dest}
        report_dir = self.parameterAsString(parameters, self.REPORT_FOLDER, context)
        if not report_dir:
            spread = Path(destinations[self.SPREAD])
            report_dir = str(spread.with_name(spread.stem + "_report"))
        args = ["diversity", source, None, "--samples", str(self.parameterAsInt(parameters, self.SAMPLES, context)),
                *scene_args, *self.consistency_arguments(parameters, context)]

        work = Path(tempfile.mkdtemp(prefix="hyperldm-diversity-", dir=QgsProcessingUtils.tempFolder()))
        args[2] = str(work / "out")
        try:
            done = self.run_engine(args, feedback, cleanup=[str(work / "out")])
            if done is None:  # cancelled
                return {}
            missing = [role for role in (*RASTERS.values(), contract.REPORT_JSON, contract.REPORT_HTML)
                       if not all(Path(p).is_file() for p in done.paths(role)) or not done.paths(role)]
            if missing:
                raise QgsProcessingException(self.tr("The engine's diversity run lists no file for {}").format(
                    ", ".join(missing)))
            report = read_report(Path(done.path(contract.REPORT_JSON)))
            results = {}
            for key, dest in destinations.items():
                results[key] = deliver_raster(done.path(RASTERS[key]), dest, feedback)
                if key == self.MEAN:
                    write_default_style(dest, feedback)
            # the report links its figures by relative name: they move together, to a lasting folder
            target = Path(report_dir)
            target.mkdir(parents=True, exist_ok=True)
            for role in (contract.REPORT_HTML, contract.REPORT_MD, contract.REPORT_JSON, contract.FIGURES):
                for item in done.paths(role):
                    shutil.move(item, str(target / Path(item).name))
            html = str(target / Path(done.path(contract.REPORT_HTML)).name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        feedback.pushInfo(self.tr("SD = {:.4f}, SDM = {:.4f} (1 = no diversity); report in {}").format(
            report["sd"], report["sdm"], report_dir))
        for key, name in ((self.MEAN, self.tr("Mean of the samples")), (self.SPREAD, self.tr("Spread")),
                          (self.SD_MAP, self.tr("SD map (nats)")), (self.SDM_MAP, self.tr("SDM map (nats)"))):
            if key in results:
                style_on_load(context, results[key], name, true_colour=key == self.MEAN)
        results.update({self.SD: done.number("sd"), self.SDM: done.number("sdm"), self.REPORT: html,
                        self.REPORT_FOLDER: report_dir})
        return results
