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
            self.tr("The fine stage of DualSR. U, the coarse result at the chosen scale, is downsampled to the grid "
                    "of a reference V; the difference V - down(U), weighted by c = the mean spectral angle between "
                    "them in degrees capped at 1, is upsampled and added to U. Resizing is MATLAB's antialiased "
                    "bicubic imresize."),
            self.tr("x4 and x8: V is the coarse result at half the scale (x4 uses x2, x8 uses x4), made with the "
                    "bundled weights for that scale unless you give a REFERENCE raster or REFERENCE_WEIGHTS. x2 and "
                    "x3: half the scale is no CoarSR scale, so V is the low-resolution input itself (classic "
                    "back-projection). Bands flagged bad pass through unchanged."),
            self.tr("COARSE: leave empty to run DualSR Coarse first (with WEIGHTS; bundled for x2, x3 and x4, "
                    "none for x8), or give its output to reuse it. Rasters given must be on the input grid divided "
                    "by their scale. EXTENT and BANDS apply only when COARSE and REFERENCE are empty."),
            self.tr("Output: like DualSR Coarse, on the input extent and CRS with the pixel size divided by the "
                    "scale, in the input's data type, with nodata and spectral metadata."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.add_input_parameters(default_scale="4")
        coarse = QgsProcessingParameterRasterLayer(self.COARSE, self.tr("Coarse result at the scale (U, optional)"),
                                                   optional=True)
        coarse.setHelp(self.tr("Output of DualSR Coarse at SCALE for this input; empty runs it."))
        reference = QgsProcessingParameterRasterLayer(self.REFERENCE,
                                                      self.tr("Coarse result at half the scale (V, optional)"),
                                                      optional=True)
        reference.setHelp(self.tr("Output of DualSR Coarse at SCALE/2 for this input; empty runs it. "
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
