"""QGIS-version shims in one place.

QGIS 3.22 exposes the old unscoped enum names; 3.36 added scoped `Qgis.ProcessingParameterFlag`
and friends and later releases deprecate the old names. Everything else imports these constants.
"""
from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
)

if Qgis.QGIS_VERSION_INT >= 33600:
    FLAG_ADVANCED = Qgis.ProcessingParameterFlag.Advanced
    NUMBER_INTEGER = Qgis.ProcessingNumberParameterType.Integer
    NUMBER_DOUBLE = Qgis.ProcessingNumberParameterType.Double
    FILE_BEHAVIOR_FILE = Qgis.ProcessingFileParameterBehavior.File
    FILE_BEHAVIOR_FOLDER = Qgis.ProcessingFileParameterBehavior.Folder
    TYPE_RASTER = Qgis.ProcessingSourceType.Raster
else:
    FLAG_ADVANCED = QgsProcessingParameterDefinition.FlagAdvanced
    NUMBER_INTEGER = QgsProcessingParameterNumber.Integer
    NUMBER_DOUBLE = QgsProcessingParameterNumber.Double
    FILE_BEHAVIOR_FILE = QgsProcessingParameterFile.File
    FILE_BEHAVIOR_FOLDER = QgsProcessingParameterFile.Folder
    TYPE_RASTER = QgsProcessing.TypeRaster
