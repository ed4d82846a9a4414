"""DualSR for QGIS: QGIS loads the plugin through classFactory."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Return the plugin; imported lazily so QGIS starts fast and qgis_process works without a GUI.

    QGIS desktop and qgis_process both call this first, so the packages folder that the PyTorch
    installer fills is appended to sys.path here (after QGIS's own folders: QGIS's packages win).
    """
    from qgis.core import QgsApplication

    from .installer.paths import add_to_sys_path, packages_dir

    profile = QgsApplication.qgisSettingsDirPath()
    if profile:
        add_to_sys_path(packages_dir(profile))
    from .plugin import DualSRPlugin

    return DualSRPlugin(iface)
