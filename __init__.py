"""DualSR for QGIS: QGIS loads the plugin through classFactory."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Return the plugin; imported lazily so QGIS starts fast and qgis_process works without a GUI."""
    from .plugin import DualSRPlugin

    return DualSRPlugin(iface)
