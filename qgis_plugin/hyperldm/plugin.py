"""The plugin object QGIS creates: it only registers (and removes) the Processing provider."""

from __future__ import annotations

from qgis.core import QgsApplication


class HyperLDMPlugin:
    """Registers the "HyperLDM" provider; has no GUI of its own beyond the Processing toolbox."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        """Create and register the provider, keeping a reference so Python does not collect it."""
        if self.provider is None:
            from .provider import HyperLDMProvider

            self.provider = HyperLDMProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS API name)
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
