"""Degrade: simulate the low-resolution raster of a high-resolution one."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..dualsr_core.options import DEGRADE_TILE
from ..provider.compat import NUMBER_INTEGER
from .base import DualSRAlgorithm
from .superres_base import DEFAULT_SCALE, SCALES, name_loaded_result


class DegradeAlgorithm(DualSRAlgorithm):
    INPUT = "INPUT"
    SCALE = "SCALE"
    TILE_SIZE = "TILE_SIZE"
    OUTPUT_FLOAT = "OUTPUT_FLOAT"
    OUTPUT = "OUTPUT"
    group_id = "training"
    group_name = "Training and evaluation"
    needs_torch = False

    def name(self):
        return "degrade"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Degrade")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        return self.tr("Simulates a low-resolution raster from a high-resolution one, as training does.")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.help_text(
            self.tr("Downsamples a raster by the scale with MATLAB's antialiased bicubic imresize, the degradation "
                    "that builds DualSR's training pairs. Use it to make test pairs: degrade a high-resolution "
                    "raster, super-resolve the result, then Evaluate it against the original."),
            self.tr("The raster is first cropped to a multiple of the scale. The output pixel size is the input's "
                    "times the scale, same origin and CRS, same data type, nodata and spectral metadata; a "
                    "low-resolution pixel is nodata when any pixel under its kernel is."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("High-resolution raster")))
        self.addParameter(QgsProcessingParameterEnum(self.SCALE, self.tr("Scale factor"), options=SCALES,
                                                     defaultValue=DEFAULT_SCALE, usesStaticStrings=True))
        self.addParameter(self.adv(QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (output pixels)"),
                                                                NUMBER_INTEGER, defaultValue=DEGRADE_TILE, minValue=8)))
        self.addParameter(self.adv(QgsProcessingParameterBoolean(self.OUTPUT_FLOAT,
                                                                 self.tr("Write float32 reflectance"), False)))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Low-resolution raster")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        from ..dualsr_core.stages.degrade import degrade  # not at load time: see base.py

        scale = int(self.parameterAsEnumString(parameters, self.SCALE, context))
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        name_loaded_result(self, parameters, context, output, f"x1/{scale}")
        result = self.run_core(
            degrade,
            self.raster_path(parameters, self.INPUT, context),
            output,
            scale,
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            output_float=self.parameterAsBool(parameters, self.OUTPUT_FLOAT, context),
            feedback=self.core_feedback(feedback),
        )
        return {self.OUTPUT: result["OUTPUT"]}
