"""DualSR (coarse + fine) in one step."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterNumber

from ..provider.compat import FILE_BEHAVIOR_FILE, NUMBER_INTEGER
from .superres_base import SuperResolutionAlgorithm


class CoarseFineAlgorithm(SuperResolutionAlgorithm):
    WEIGHTS = "WEIGHTS"
    REFERENCE_WEIGHTS = "REFERENCE_WEIGHTS"
    ITERATIONS = "ITERATIONS"

    def name(self):
        return "dualsr"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("DualSR (coarse + fine)")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        return self.tr("Super-resolves a hyperspectral raster with both stages of DualSR in one step.")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.help_text(
            self.tr("Runs DualSR Coarse at the chosen scale and, for x4 and x8, at half the scale, then DualSR "
                    "Fine (back-projection weighted by the spectral angle). x2 and x3 back-project onto the input "
                    "itself. Intermediate rasters are temporary and removed."),
            self.tr("Input and output as DualSR Coarse: reflectance of any band count; the output keeps the CRS, "
                    "extent, data type, nodata and spectral metadata with the pixel size divided by the scale."),
            self.tr("Weights: empty uses the bundled weights for the scale and for half the scale."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.add_input_parameters(default_scale="4")
        self.addParameter(QgsProcessingParameterFile(self.WEIGHTS, self.tr("Weights for the scale (empty: bundled)"),
                                                     behavior=FILE_BEHAVIOR_FILE, extension="pt", optional=True))
        self.addParameter(QgsProcessingParameterFile(self.REFERENCE_WEIGHTS,
                                                     self.tr("Weights for half the scale (empty: bundled)"),
                                                     behavior=FILE_BEHAVIOR_FILE, extension="pt", optional=True))
        self.addParameter(self.adv(QgsProcessingParameterNumber(
            self.ITERATIONS, self.tr("Back-projection iterations"), NUMBER_INTEGER, defaultValue=1, minValue=1,
            maxValue=20)))
        self.add_run_parameters()
        self.add_output_parameter()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        from ..dualsr_core.fine import refine  # not at load time: see base.py

        result = self.run_core(
            refine,
            self.raster_path(parameters, self.INPUT, context),
            self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            self.scale(parameters, context),
            weights=self.optional_file(self.parameterAsFile(parameters, self.WEIGHTS, context)),
            reference_weights=self.optional_file(self.parameterAsFile(parameters, self.REFERENCE_WEIGHTS, context)),
            iterations=self.parameterAsInt(parameters, self.ITERATIONS, context),
            feedback=self.core_feedback(feedback),
            **self.run_options(parameters, context),
        )
        return {self.OUTPUT: result["OUTPUT"]}
