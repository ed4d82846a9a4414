"""Parameters shared by the inference algorithms (Coarse, Fine, one-step DualSR)."""
from __future__ import annotations

from collections import deque
from pathlib import Path

from qgis.core import (
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QVariant

from ..dualsr_core import options
from ..provider.compat import NUMBER_INTEGER
from .base import DualSRAlgorithm

# The core's choices (dualsr_core/options.py), as the strings QGIS enums offer.
SCALES = [str(scale) for scale in options.SCALES]
DEVICES = list(options.DEVICES)
PRECISIONS = list(options.PRECISIONS)
BAD_BAND_MODES = list(options.BAD_BAND_MODES)
SCHEDULES = list(options.SCHEDULES)
DEFAULT_TILE = options.DEFAULT_TILE
RESULT_LABELS = {"coarse": "Coarse", "fine": "Fine", "dualsr": "DualSR", "degrade": "Degraded"}
# One default scale for every algorithm: the scale of the first bundled weights and of Train's recipe.
DEFAULT_SCALE = "2"
# A stat, not a read: the Scale list says x8 needs the user's own weights when none are bundled.
BUNDLED_X8 = (Path(__file__).resolve().parents[1] / "weights" / "coarsr_x8.pt").is_file()


class DefaultStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies the default style (the true-colour .qml dualsr_core writes beside the output) to a
    loaded result: Processing loads results without their default style."""

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        if layer is not None and layer.isValid():
            layer.loadDefaultStyle()
            layer.triggerRepaint()


_post_processors = deque(maxlen=256)  # QGIS keeps a bare pointer: the Python objects must stay alive


def name_loaded_result(algorithm, parameters, context, output: str, scale_text: str):
    """When QGIS will load `output`, name the layer `<input layer> <scale_text> (<label>)`, for
    example `enmap_potsdam x2 (DualSR)` (a sensor product by its mission, level and date:
    `ENMAP01 L2A 2022-07-24 x2 (DualSR)`), and give it the style written beside the file."""
    if not context.willLoadLayerOnCompletion(output):
        return
    from ..dualsr_core.io.products import display_name

    value = parameters.get("INPUT")
    product = display_name(value) if isinstance(value, str) else None
    layer = None if product else algorithm.parameterAsRasterLayer(parameters, "INPUT", context)
    details = context.layerToLoadOnCompletionDetails(output)
    source = product or (layer.name() if layer else "result")
    details.name = f"{source} {scale_text} ({RESULT_LABELS[algorithm.name()]})"
    details.forceName = True
    _post_processors.append(DefaultStyle())
    details.setPostProcessor(_post_processors[-1])


class SuperResolutionAlgorithm(DualSRAlgorithm):
    INPUT = "INPUT"
    SCALE = "SCALE"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    DEVICE = "DEVICE"
    PRECISION = "PRECISION"
    OUTPUT_FLOAT = "OUTPUT_FLOAT"
    EXTENT = "EXTENT"
    BANDS = "BANDS"
    BAD_BANDS = "BAD_BANDS"
    COG = "COG"
    SCHEDULE = "SCHEDULE"
    BAND_CHUNK = "BAND_CHUNK"
    OUTPUT = "OUTPUT"

    def add_input_parameters(self):
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Low-resolution hyperspectral raster")))
        label = self.tr("Scale factor") if BUNDLED_X8 else self.tr("Scale factor (x8 needs weights you trained)")
        scale = QgsProcessingParameterEnum(self.SCALE, label, options=SCALES, defaultValue=DEFAULT_SCALE,
                                           usesStaticStrings=True)
        without_x8 = "" if BUNDLED_X8 else self.tr(" Weights are bundled for x2, x3 and x4; x8 needs weights made "
                                                   "by Train.")
        scale.setHelp(self.tr("Output pixel size = input pixel size / scale.") + without_x8)
        self.addParameter(scale)
        extent = QgsProcessingParameterExtent(self.EXTENT, self.tr("Process only this extent"), optional=True)
        extent.setHelp(self.tr("In any CRS; transformed to the raster's and snapped outwards to whole input pixels. "
                               "The output covers exactly that window: a quick way to preview a large scene."))
        bands = QgsProcessingParameterBand(self.BANDS, self.tr("Bands (empty: all)"),
                                           parentLayerParameterName=self.INPUT,
                                           optional=True, allowMultiple=True)
        bands.setHelp(self.tr("A subset of bands to super-resolve and write, in the order given."))
        self.addParameter(extent)
        self.addParameter(bands)

    def add_run_parameters(self):
        tile = QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (input pixels)"), NUMBER_INTEGER,
                                            defaultValue=DEFAULT_TILE, minValue=8, maxValue=4096)
        tile.setHelp(self.tr("Side of the largest block of input pixels the network reads at once, overlap included; "
                             "it sets the memory of a run whatever the input's size. Smaller uses less memory and "
                             "more time; it must be more than twice the overlap."))
        overlap = QgsProcessingParameterNumber(self.OVERLAP, self.tr("Tile overlap (input pixels, empty: automatic)"),
                                               NUMBER_INTEGER, optional=True, minValue=0, maxValue=512)
        overlap.setHelp(self.tr("Context read around each tile's kept pixels, inside the tile, and cut off after the "
                                "network. Empty uses the network's receptive radius (16 pixels for the bundled x2 and "
                                "x3 weights, 17 for x4), which makes the result independent of the tile size."))
        device = QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), options=DEVICES, defaultValue="auto",
                                            usesStaticStrings=True)
        device.setHelp(self.tr("auto uses a CUDA GPU when PyTorch sees one, else the CPU."))
        precision = QgsProcessingParameterEnum(self.PRECISION, self.tr("Precision"), options=PRECISIONS,
                                               defaultValue="auto", usesStaticStrings=True)
        precision.setHelp(self.tr(
            "auto uses bfloat16 on CUDA. On a CPU it times float32, bfloat16 (where the CPU has AVX512-BF16 or AMX) "
            "and int8 (where the optional OpenVINO is installed: Plugins > DualSR > Install PyTorch...) on the first "
            "tile of a large input and keeps the fastest; small inputs use bfloat16 where the CPU has it natively, "
            "else float32. The log gives the timings and the choice. "
            "int8 changes PSNR by less than 0.05 dB on the validation scenes."))
        as_float = QgsProcessingParameterBoolean(self.OUTPUT_FLOAT, self.tr("Write float32 reflectance"),
                                                 defaultValue=False)
        as_float.setHelp(self.tr("By default the output keeps the input's data type and scale factor."))
        bad = QgsProcessingParameterEnum(self.BAD_BANDS, self.tr("Write bad bands as"), options=BAD_BAND_MODES,
                                         defaultValue="nodata", usesStaticStrings=True)
        bad.setHelp(self.tr("Bands flagged bad (bbl = 0) or without valid pixels are never neighbours of good bands; "
                            "they are written as nodata or as their bicubic upsampling."))
        cog = QgsProcessingParameterBoolean(self.COG, self.tr("Write a Cloud-Optimised GeoTIFF"), defaultValue=False)
        cog.setHelp(self.tr("With overviews; needs a .tif output name (ENVI names such as .img are refused)."))
        schedule = QgsProcessingParameterEnum(self.SCHEDULE, self.tr("Band schedule"), options=SCHEDULES,
                                              defaultValue="auto", usesStaticStrings=True)
        schedule.setHelp(self.tr("band: one band at a time (small working set, usually fastest on CPUs); batched: "
                                 "as many bands at once as \"Bands per batch\" says (GPUs). Both give the same "
                                 "result; auto times both on the first tile and takes batched, which needs more "
                                 "memory, only when it is at least 1.5 times as fast."))
        chunk = QgsProcessingParameterNumber(self.BAND_CHUNK, self.tr("Bands per batch (batched schedule)"),
                                             NUMBER_INTEGER, defaultValue=16, minValue=1, maxValue=512)
        chunk.setHelp(self.tr("More bands per batch keep a GPU busier and need more memory."))
        for param in (tile, overlap, device, precision, schedule, chunk, as_float, bad, cog):
            self.addParameter(self.adv(param))

    def add_output_parameter(self):
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Super-resolved raster")))

    def run_options(self, parameters, context) -> dict:
        """Keyword arguments of the dualsr_core run shared by every inference algorithm."""
        extent, extent_crs = None, None
        rectangle = self.parameterAsExtent(parameters, self.EXTENT, context)
        if parameters.get(self.EXTENT) and not rectangle.isNull():
            extent = (rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(), rectangle.yMaximum())
            crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
            extent_crs = crs.toWkt() if crs.isValid() else None
        bands = [b - 1 for b in self.band_numbers(parameters, context)] or None
        return dict(
            extent=extent,
            extent_crs=extent_crs,
            bands=bands,
            bad_bands=self.parameterAsEnumString(parameters, self.BAD_BANDS, context),
            driver="COG" if self.parameterAsBool(parameters, self.COG, context) else None,
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            overlap=self.parameterAsInt(parameters, self.OVERLAP, context) if parameters.get(self.OVERLAP) is not None
            else None,
            device=self.parameterAsEnumString(parameters, self.DEVICE, context),
            precision=self.parameterAsEnumString(parameters, self.PRECISION, context),
            schedule=self.parameterAsEnumString(parameters, self.SCHEDULE, context),
            band_chunk=self.parameterAsInt(parameters, self.BAND_CHUNK, context),
            output_float=self.parameterAsBool(parameters, self.OUTPUT_FLOAT, context),
        )

    def band_numbers(self, parameters, context) -> list[int]:
        """BANDS as given, [] (all bands) when empty: QGIS turns an empty value, text and a band number
        the raster lacks into band 0, which would hide them from the messages naming them."""
        value = parameters.get(self.BANDS)
        if value is None or isinstance(value, QVariant) and value.isNull():
            return []
        items = value.replace(";", ",").split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            return self.parameterAsInts(parameters, self.BANDS, context)  # an expression from a model
        try:
            return [int(str(item).strip()) for item in items if str(item).strip()]
        except ValueError:
            raise self.failure(f"BANDS is '{value}'; give band numbers separated by commas, such as 1,5,9, or "
                               "leave it empty for all bands.") from None

    def scale(self, parameters, context) -> int:
        return int(self.parameterAsEnumString(parameters, self.SCALE, context))

    def output_layer(self, parameters, context) -> str:
        """The OUTPUT path; a result QGIS loads is named after the input and scale, in true colour."""
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        name_loaded_result(self, parameters, context, output, f"x{self.scale(parameters, context)}")
        return output
