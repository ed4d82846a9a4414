"""The DualSR Processing provider. Importing it imports neither torch nor any weights."""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..algorithms.coarse import CoarseAlgorithm
from ..algorithms.degrade import DegradeAlgorithm
from ..algorithms.dualsr import CoarseFineAlgorithm
from ..algorithms.evaluate import EvaluateAlgorithm
from ..algorithms.fine import FineAlgorithm
from ..algorithms.train import TrainAlgorithm


class DualSRProvider(QgsProcessingProvider):
    def id(self):
        return "dualsr"

    def name(self):
        return "DualSR"

    def longName(self):  # noqa: N802 (QGIS API name)
        return "DualSR hyperspectral super-resolution"

    def icon(self):
        return QIcon(str(Path(__file__).with_name("icon.svg")))

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 (QGIS API name)
        return ["tif", "img"]

    def loadAlgorithms(self):  # noqa: N802 (QGIS API name)
        for algorithm in (CoarseAlgorithm(), FineAlgorithm(), CoarseFineAlgorithm(), TrainAlgorithm(),
                          EvaluateAlgorithm(), DegradeAlgorithm()):
            self.addAlgorithm(algorithm)
