"""Plugin object: registers the DualSR Processing provider.

qgis_process calls only initProcessing(), never initGui(), so nothing here needs an interface.
"""
from __future__ import annotations

from qgis.core import QgsApplication


class DualSRPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        from .provider.provider import DualSRProvider

        self.provider = DualSRProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS API name)
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
