"""The DualSR Processing provider. Importing it imports neither torch nor any weights."""
from __future__ import annotations

import re
from pathlib import Path

from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..algorithms.coarse import CoarseAlgorithm
from ..algorithms.degrade import DegradeAlgorithm
from ..algorithms.dualsr import CoarseFineAlgorithm
from ..algorithms.evaluate import EvaluateAlgorithm
from ..algorithms.fine import FineAlgorithm
from ..algorithms.import_product import ImportProductAlgorithm
from ..algorithms.train import TrainAlgorithm

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


class ShippedModel(QgsProcessingModelAlgorithm):
    """A graphical model of models/, listed in the toolbox under its group ("Models").

    Its id is the file name in lowercase letters and digits (dualsr:dualsrcoarsethenfine), not the
    model's title with spaces, which QGIS would use otherwise.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.fromFile(str(path))

    def name(self):
        return re.sub(r"[^a-z0-9]", "", self.path.stem.lower())

    def createInstance(self):  # noqa: N802 (QGIS API name)
        return ShippedModel(self.path)

    def icon(self):
        return QIcon(str(Path(__file__).with_name("icon.svg")))

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """The model's description as plain text (QGIS would give its HTML page, which qgis_process prints)."""
        return self.helpContent().get("ALG_DESC", "")


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
                          EvaluateAlgorithm(), DegradeAlgorithm(), ImportProductAlgorithm()):
            self.addAlgorithm(algorithm)
        for path in sorted(MODELS_DIR.glob("*.model3")):
            self.addAlgorithm(ShippedModel(path))
