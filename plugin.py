"""Plugin object: registers the DualSR Processing provider, and in the desktop offers to install PyTorch.

qgis_process calls only initProcessing(), never initGui(), so initProcessing needs no interface;
the menu entry, the message bar and the installer dialog live in initGui.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from qgis.core import Qgis, QgsApplication

MENU = "&DualSR"


def torch_missing() -> bool:
    """True when no torch can be found. Cheap (no import): it runs while QGIS starts."""
    try:
        return importlib.util.find_spec("torch") is None
    except (ImportError, ValueError):
        return True


class DualSRPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.install_action = None
        self.message = None
        self.dialog = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        from .provider.provider import DualSRProvider

        self.provider = DualSRProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS API name)
        self.initProcessing()
        try:
            from qgis.PyQt.QtGui import QAction  # Qt6
        except ImportError:
            from qgis.PyQt.QtWidgets import QAction  # Qt5
        from qgis.PyQt.QtGui import QIcon

        icon = QIcon(str(Path(__file__).resolve().parent / "provider" / "icons" / "install.svg"))
        self.install_action = QAction(icon, "Install PyTorch...", self.iface.mainWindow())
        self.install_action.triggered.connect(self.show_installer)
        self.iface.addPluginToMenu(MENU, self.install_action)
        if torch_missing():
            self.offer_install()

    def offer_install(self):
        """A message-bar message with an "Install PyTorch" button (no dialog opens by itself)."""
        from qgis.PyQt.QtWidgets import QPushButton

        bar = self.iface.messageBar()
        self.message = bar.createMessage("DualSR", "PyTorch is not installed in the Python that runs QGIS; the "
                                                   "DualSR tools need it.")
        button = QPushButton("Install PyTorch", self.message)
        button.clicked.connect(self.show_installer)
        self.message.layout().addWidget(button)
        bar.pushWidget(self.message, Qgis.MessageLevel.Warning)

    def show_installer(self):
        from .installer.dialog import InstallDialog

        if self.dialog is None:
            self.dialog = InstallDialog(QgsApplication.qgisSettingsDirPath(), parent=self.iface.mainWindow())
            self.dialog.installed.connect(self._installed)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()

    def _installed(self, _result):
        self._dismiss_message()

    def _dismiss_message(self):
        if self.message is not None:
            try:
                self.iface.messageBar().popWidget(self.message)
            except RuntimeError:  # the user already closed it, and Qt deleted it
                pass
            self.message = None

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.install_action is not None:
            self.iface.removePluginMenu(MENU, self.install_action)
            self.install_action.deleteLater()
            self.install_action = None
        self._dismiss_message()
        if self.dialog is not None:
            self.dialog.stop()  # cancels a running pip without asking: the plugin is going away
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
