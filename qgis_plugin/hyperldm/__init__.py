"""HyperLDM QGIS plugin: a Processing provider that runs the hyperldm-engine command line program."""


def classFactory(iface):  # noqa: N802 (QGIS's required name)
    """Called by QGIS (``iface`` is None under qgis_process) to create the plugin object."""
    from .plugin import HyperLDMPlugin

    return HyperLDMPlugin(iface)
