"""DualSR Coarse: CoarSR super-resolution of a hyperspectral raster."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFile

from ..provider.compat import FILE_BEHAVIOR_FILE
from .superres_base import SuperResolutionAlgorithm


class CoarseAlgorithm(SuperResolutionAlgorithm):
    WEIGHTS = "WEIGHTS"

    def name(self):
        return "coarse"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("DualSR Coarse")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        return self.tr("Super-resolves a hyperspectral raster band by band with the CoarSR network.")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.help_text(
            self.tr("Raises the spatial resolution of a hyperspectral raster by 2, 3, 4 or 8 with CoarSR, the "
                    "coarse stage of DualSR: each band is super-resolved from itself, its four spectral neighbours "
                    "and a feature state carried from the previous band."),
            self.tr("Input: a raster of reflectance with any number of bands (hyperspectral works best; fewer "
                    "than 5 bands repeat neighbours). Integer rasters are read with their scale factor, or as "
                    "reflectance x 10000 when they have none. Nodata pixels stay nodata and do not affect their "
                    "neighbours. Bands flagged bad (bbl = 0) are written as nodata, or as their bicubic upsampling "
                    "(\"Write bad bands as\", under Advanced)."),
            self.tr("Output: a tiled, compressed GeoTIFF on the same extent and CRS with the pixel size divided "
                    "by the scale, the input's data type, nodata, band names and wavelength metadata; a "
                    "Cloud-Optimised GeoTIFF with \"Write a Cloud-Optimised GeoTIFF\", ENVI for an output name "
                    "ending in .img, .bsq, .bil, .bip or .dat."),
            self.tr("Weights file: leave it empty to use the weights bundled for the chosen scale (x2, x3 and x4; "
                    "none for x8), or choose a .pt file made by Train; its scale must match."),
            shell=self.tr("The weights file is WEIGHTS."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.add_input_parameters()
        weights = QgsProcessingParameterFile(self.WEIGHTS, self.tr("Weights file (empty: bundled weights)"),
                                             behavior=FILE_BEHAVIOR_FILE, extension="pt", optional=True)
        weights.setHelp(self.tr("A .pt file written by DualSR Train for the same scale."))
        self.addParameter(weights)
        self.add_run_parameters()
        self.add_output_parameter()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        from ..dualsr_core.stages.coarse import super_resolve  # not at load time: see base.py

        result = self.run_core(
            super_resolve,
            self.raster_path(parameters, self.INPUT, context),
            self.output_layer(parameters, context),
            self.scale(parameters, context),
            weights=self.optional_file(self.parameterAsFile(parameters, self.WEIGHTS, context)),
            feedback=self.core_feedback(feedback),
            **self.run_options(parameters, context),
        )
        return {self.OUTPUT: result["OUTPUT"]}
