"""Import sensor product: an EnMAP, DESIS, PRISMA or EMIT product as a raster with its metadata."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterRasterDestination

from ..provider.compat import FILE_BEHAVIOR_FILE
from .base import DualSRAlgorithm
from .superres_base import DefaultStyle, _post_processors

PRODUCT_FILTER = ("Sensor products (*-METADATA.XML *-METADATA.xml *.ZIP *.zip *.he5 *.nc);;"
                  "All files (*.*)")


class ImportProductAlgorithm(DualSRAlgorithm):
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"
    group_id = "data"
    group_name = "Data"
    needs_torch = False

    def name(self):
        return "importproduct"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Import sensor product")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        return self.tr("Writes an EnMAP, DESIS, PRISMA or EMIT product as downloaded as a raster with its "
                       "wavelengths, FWHM, bad bands and true-colour style.")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.help_text(
            self.tr("Reads a hyperspectral product as its mission delivers it: EnMAP L2A (the METADATA.XML, its "
                    "folder or the ZIP), DESIS L2A (the METADATA.xml or its folder), PRISMA L2D (the .he5) or EMIT "
                    "L2A reflectance (the .nc, orthorectified through its geometry lookup table). Every DualSR "
                    "tool reads these products directly; import one to look at it first or to chain it in the "
                    "graphical modeler. In this dialog pick the product's METADATA.XML (EnMAP, DESIS), its ZIP, "
                    "the .he5 or the .nc: the file picker cannot choose a folder."),
            self.tr("The output keeps the product's grid, CRS, encoding (stored integers with their scale and "
                    "offset, or float reflectance) and nodata, and carries per band the wavelength, FWHM and bad "
                    "band flag (bbl), with the true-colour style beside it. Bands are in increasing wavelength "
                    "(PRISMA's cubes are stored reversed). Bad bands: EnMAP's no-data bands and the VNIR bands of "
                    "the VNIR/SWIR overlap (the SWIR bands are kept there), PRISMA's unused bands, EMIT's bands "
                    "outside good_wavelengths. Quality layers, PRISMA's panchromatic cube and EMIT's uncertainty "
                    "are not read."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFile(self.INPUT, self.tr("Sensor product (as downloaded)"),
                                                     behavior=FILE_BEHAVIOR_FILE, fileFilter=PRODUCT_FILTER))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Imported raster")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        from ..dualsr_core.io.products import display_name
        from ..dualsr_core.stages.product_import import import_product  # not at load time: see base.py

        source = self.parameterAsFile(parameters, self.INPUT, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if context.willLoadLayerOnCompletion(output):
            details = context.layerToLoadOnCompletionDetails(output)
            details.name = display_name(source) or details.name
            details.forceName = True
            _post_processors.append(DefaultStyle())
            details.setPostProcessor(_post_processors[-1])
        result = self.run_core(import_product, source, output, feedback=self.core_feedback(feedback))
        return {self.OUTPUT: result["OUTPUT"]}
