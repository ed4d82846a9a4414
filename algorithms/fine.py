"""DualSR Fine: enhanced back-projection of a coarse result onto a coarser reference."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer

from ..provider.compat import FILE_BEHAVIOR_FILE, NUMBER_INTEGER
from .superres_base import SuperResolutionAlgorithm


class FineAlgorithm(SuperResolutionAlgorithm):
    COARSE = "COARSE"
    REFERENCE = "REFERENCE"
    WEIGHTS = "WEIGHTS"
    REFERENCE_WEIGHTS = "REFERENCE_WEIGHTS"
    ITERATIONS = "ITERATIONS"

    def name(self):
        return "fine"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("DualSR Fine")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        return self.tr("Refines a coarse super-resolution by back-projection weighted by the spectral angle.")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.help_text(
            self.tr("The fine stage of DualSR. The coarse result at the chosen scale is downsampled to the grid of "
                    "a reference; the difference between the reference and the downsampled result, weighted by "
                    "the mean spectral angle between them (in degrees, at most 1), is upsampled and added to the "
                    "coarse result. Resizing is MATLAB's antialiased bicubic imresize."),
            self.tr("x4 and x8: the reference is the coarse result at half the scale (x4 uses x2, x8 uses x4), made "
                    "with the bundled weights for that scale unless you give a reference raster or weights for "
                    "half the scale. x2 and x3: half the scale is no CoarSR scale, so the reference is the "
                    "low-resolution input itself (classic back-projection). Bands flagged bad pass through "
                    "unchanged."),
            self.tr("Leave the coarse result at the scale empty to run DualSR Coarse first (with the weights for "
                    "the scale; bundled for x2, x3 and x4, none for x8), or give its output to reuse it. Rasters "
                    "given must be on the input grid divided by their scale. \"Process only this extent\" and "
                    "\"Bands\" apply only when both coarse results are left empty."),
            self.tr("Output: like DualSR Coarse, on the input extent and CRS with the pixel size divided by the "
                    "scale, in the input's data type, with nodata and spectral metadata."),
            shell=self.tr("The coarse result at the scale is COARSE, the reference REFERENCE, their weights WEIGHTS "
                          "and REFERENCE_WEIGHTS."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.add_input_parameters()
        coarse = QgsProcessingParameterRasterLayer(self.COARSE, self.tr("Coarse result at the scale (optional)"),
                                                   optional=True)
        coarse.setHelp(self.tr("Output of DualSR Coarse at the scale factor for this input; empty runs it."))
        reference = QgsProcessingParameterRasterLayer(self.REFERENCE,
                                                      self.tr("Reference: coarse result at half the scale (optional)"),
                                                      optional=True)
        reference.setHelp(self.tr("Output of DualSR Coarse at half the scale factor for this input; empty runs it. "
                                  "Not used for x2 and x3."))
        for param in (coarse, reference, *self.weights_and_iterations()):
            self.addParameter(param)
        self.add_run_parameters()
        self.add_output_parameter()

    def weights_and_iterations(self) -> tuple:
        """WEIGHTS, REFERENCE_WEIGHTS and ITERATIONS, shared with the one-step DualSR."""
        weights = QgsProcessingParameterFile(self.WEIGHTS, self.tr("Weights for the scale (empty: bundled)"),
                                             behavior=FILE_BEHAVIOR_FILE, extension="pt", optional=True)
        reference_weights = QgsProcessingParameterFile(self.REFERENCE_WEIGHTS,
                                                       self.tr("Weights for half the scale (empty: bundled)"),
                                                       behavior=FILE_BEHAVIOR_FILE, extension="pt", optional=True)
        iterations = QgsProcessingParameterNumber(self.ITERATIONS, self.tr("Back-projection iterations"),
                                                  NUMBER_INTEGER, defaultValue=1, minValue=1, maxValue=20)
        iterations.setHelp(self.tr("The method uses one."))
        return weights, reference_weights, iterations

    def optional_raster(self, parameters, name, context):
        """A raster parameter's path, None when empty or when the algorithm has no such parameter."""
        return self.raster_path(parameters, name, context) if parameters.get(name) else None

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        from ..dualsr_core.stages.fine import refine  # not at load time: see base.py

        result = self.run_core(
            refine,
            self.raster_path(parameters, self.INPUT, context),
            self.output_layer(parameters, context),
            self.scale(parameters, context),
            coarse_path=self.optional_raster(parameters, self.COARSE, context),
            reference_path=self.optional_raster(parameters, self.REFERENCE, context),
            weights=self.optional_file(self.parameterAsFile(parameters, self.WEIGHTS, context)),
            reference_weights=self.optional_file(self.parameterAsFile(parameters, self.REFERENCE_WEIGHTS, context)),
            iterations=self.parameterAsInt(parameters, self.ITERATIONS, context),
            feedback=self.core_feedback(feedback),
            **self.run_options(parameters, context),
        )
        return {self.OUTPUT: result["OUTPUT"]}
