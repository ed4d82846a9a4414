"""DualSR Evaluate: quality metrics of a super-resolved raster against its high-resolution reference."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..dualsr_core.options import EVALUATE_TILE
from ..provider.compat import NUMBER_DOUBLE, NUMBER_INTEGER
from .base import DualSRAlgorithm
from .superres_base import DEFAULT_SCALE, SCALES


class EvaluateAlgorithm(DualSRAlgorithm):
    REFERENCE = "REFERENCE"
    RESULT = "RESULT"
    DATA_RANGE = "DATA_RANGE"
    SCALE = "SCALE"
    TILE_SIZE = "TILE_SIZE"
    OUTPUT_CSV = "OUTPUT_CSV"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_PLOT = "OUTPUT_PLOT"
    METRICS = ("PSNR", "SSIM", "SAM", "ERGAS", "RMSE", "CC", "VALID_PIXELS", "BANDS_USED")

    group_id = "training"
    group_name = "Training and evaluation"
    needs_torch = False

    def name(self):
        return "evaluate"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Evaluate")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        return self.tr("Compares a super-resolved raster with its high-resolution reference: PSNR, SSIM, SAM, "
                       "ERGAS, RMSE and CC.")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.help_text(
            self.tr("Computes the DualSR paper's quality metrics of a super-resolved raster against the "
                    "high-resolution reference it should reproduce: PSNR over the whole cube and per band, SSIM "
                    "(11 x 11 Gaussian window, sigma 1.5, averaged over bands), SAM (mean spectral angle in degrees), "
                    "ERGAS, RMSE and CC (mean per-band correlation)."),
            self.tr("Both rasters must be on the same grid: same size, band count, CRS and pixel size. Values are "
                    "compared as reflectance (scale factors applied; integer rasters without one are read as "
                    "reflectance x 10000)."),
            self.tr("Excluded: pixels that are nodata in either raster in any used band, bands flagged bad "
                    "(bbl = 0) in either raster, and bands with no valid pixel."),
            self.tr("Reflectance range: the peak value for PSNR and SSIM, 1.0 for reflectance between 0 and 1. "
                    "Identical rasters give PSNR 100. Scale: the super-resolution factor, used by ERGAS only."),
            self.tr("Outputs: the metrics as numbers (a model can pass them on), a CSV table with the per-band "
                    "PSNR, and optionally an HTML report and a PNG plot of PSNR against wavelength."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE, self.tr("High-resolution reference")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.RESULT, self.tr("Super-resolved result")))
        data_range = QgsProcessingParameterNumber(self.DATA_RANGE, self.tr("Reflectance range for PSNR"),
                                                  NUMBER_DOUBLE, defaultValue=1.0, minValue=1e-6)
        data_range.setHelp(self.tr("Peak reflectance for PSNR and SSIM: 1.0 for reflectance between 0 and 1."))
        self.addParameter(data_range)
        scale = QgsProcessingParameterEnum(self.SCALE, self.tr("Scale factor (for ERGAS)"), options=SCALES,
                                           defaultValue=DEFAULT_SCALE, usesStaticStrings=True)
        scale.setHelp(self.tr("The factor the result was super-resolved by; only ERGAS uses it."))
        self.addParameter(scale)
        tile = QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (pixels)"), NUMBER_INTEGER,
                                            defaultValue=EVALUATE_TILE, minValue=16, maxValue=4096)
        tile.setHelp(self.tr("Side of the block of pixels read at once; the metrics do not depend on it."))
        self.addParameter(self.adv(tile))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, self.tr("Metrics table"), self.tr("CSV files (*.csv)"),
            defaultValue=QgsProcessing.TEMPORARY_OUTPUT))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, self.tr("Report"), self.tr("HTML files (*.html)"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_PLOT, self.tr("Per-band PSNR plot"), self.tr("PNG files (*.png)"), optional=True,
            createByDefault=False))
        for metric in self.METRICS:
            self.addOutput(QgsProcessingOutputNumber(metric, metric))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        from ..dualsr_core.evaluation.evaluate import evaluate  # not at load time: see base.py

        result = self.run_core(
            evaluate,
            self.raster_path(parameters, self.REFERENCE, context),
            self.raster_path(parameters, self.RESULT, context),
            data_range=self.parameterAsDouble(parameters, self.DATA_RANGE, context),
            scale=int(self.parameterAsEnumString(parameters, self.SCALE, context)),
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            output_csv=self.optional_file(self.parameterAsFileOutput(parameters, self.OUTPUT_CSV, context)),
            output_html=self.optional_file(self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)),
            output_plot=self.optional_file(self.parameterAsFileOutput(parameters, self.OUTPUT_PLOT, context)),
            feedback=self.core_feedback(feedback),
        )
        outputs = (self.OUTPUT_CSV, self.OUTPUT_HTML, self.OUTPUT_PLOT)
        return {key: result[key] for key in self.METRICS + outputs if result[key] is not None}
