"""The "HyperLDM" Processing provider: three algorithms, the engine set-up and the engine-path setting."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from .engine import SETTING_ENGINE_PATH

ICON_PATH = str(Path(__file__).resolve().parent / "icon.svg")


def _processing_config():
    """ProcessingConfig and Setting from QGIS's Processing plugin, or None where it is not loaded."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig, Setting
    except ImportError:
        return None, None
    return ProcessingConfig, Setting


class HyperLDMProvider(QgsProcessingProvider):
    """Provider id ``hyperldm``; loads even when no engine is installed (the algorithms then say
    how to install or point to it when they run)."""

    def id(self):
        return "hyperldm"

    def name(self):
        return "HyperLDM"

    def longName(self):  # noqa: N802 (QGIS API name)
        return QCoreApplication.translate("HyperLDM",
                                          "HyperLDM: hyperspectral synthesis from RGB with latent diffusion")

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 (QGIS API name)
        """GeoTIFF only: the format that keeps the engine's wavelengths, band names, scale and nodata."""
        return ["tif"]

    def defaultRasterFileExtension(self):  # noqa: N802 (QGIS API name)
        return "tif"

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802 (QGIS API name)
        return ICON_PATH

    def load(self):
        config, setting = _processing_config()
        if config is not None:
            config.settingIcons[self.name()] = self.icon()
            config.addSetting(setting(
                self.name(), SETTING_ENGINE_PATH,
                QCoreApplication.translate("HyperLDM", "HyperLDM engine executable (hyperldm-engine)"),
                "", valuetype=setting.FILE))
            config.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self):
        config, _ = _processing_config()
        if config is not None:
            config.removeSetting(SETTING_ENGINE_PATH)

    def loadAlgorithms(self):  # noqa: N802 (QGIS API name)
        from .algorithms.diversity import DiversityAlgorithm
        from .algorithms.setup_engine import SetupEngineAlgorithm
        from .algorithms.synthesize import SynthesizeAlgorithm
        from .algorithms.train import TrainAlgorithm

        for algorithm in (SynthesizeAlgorithm(), DiversityAlgorithm(), TrainAlgorithm(), SetupEngineAlgorithm()):
            self.addAlgorithm(algorithm)
