"""DualSR (coarse + fine) in one step: DualSR Fine without the COARSE and REFERENCE inputs, so
both coarse results are always computed (and removed) inside the run."""
from __future__ import annotations

from .fine import FineAlgorithm


class CoarseFineAlgorithm(FineAlgorithm):
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
            self.tr("Weights: empty uses the bundled weights for the scale and for half the scale (bundled for x2, "
                    "x3 and x4; x8 needs weights made by Train)."),
            shell=self.tr("The weights for the scale are WEIGHTS, for half the scale REFERENCE_WEIGHTS."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.add_input_parameters()
        weights, reference_weights, iterations = self.weights_and_iterations()
        for param in (weights, reference_weights, self.adv(iterations)):
            self.addParameter(param)
        self.add_run_parameters()
        self.add_output_parameter()
