"""Train: CoarSR weights from the user's own high-resolution scenes."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
)

from ..dualsr_core.training.config import TrainConfig as Defaults  # torch-free
from ..provider.compat import FILE_BEHAVIOR_FILE, FILE_BEHAVIOR_FOLDER, NUMBER_DOUBLE, NUMBER_INTEGER, TYPE_RASTER
from .base import DualSRAlgorithm
from .superres_base import DEFAULT_SCALE, DEVICES, SCALES


class TrainAlgorithm(DualSRAlgorithm):
    INPUT = "INPUT"
    FOLDER = "FOLDER"
    SCALE = "SCALE"
    EPOCHS = "EPOCHS"
    BATCH_SIZE = "BATCH_SIZE"
    PATCH_SIZE = "PATCH_SIZE"
    LEARNING_RATE = "LEARNING_RATE"
    VAL_FRACTION = "VAL_FRACTION"
    DEVICE = "DEVICE"
    WEIGHTS = "WEIGHTS"
    FEATURES = "FEATURES"
    BLOCKS = "BLOCKS"
    DELETE_WORK = "DELETE_WORK"
    SEED = "SEED"
    MAX_ITERATIONS = "MAX_ITERATIONS"
    SPECTRAL_WEIGHT = "SPECTRAL_WEIGHT"
    POSITIONS_PER_KILOPIXEL = "POSITIONS_PER_KILOPIXEL"
    OUTPUT_WEIGHTS = "OUTPUT_WEIGHTS"
    PSNR = "PSNR"
    CSV = "CSV"
    CURVE = "CURVE"
    group_id = "training"
    group_name = "Training and evaluation"
    needs_packages = ("numpy", "scipy", "rasterio", "h5py")

    def name(self):
        return "train"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Train")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        return self.tr("Trains DualSR Coarse weights on your own high-resolution hyperspectral scenes.")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.help_text(
            self.tr("Builds low/high-resolution training pairs from the given scenes by the degradation of the "
                    "method (MATLAB antialiased bicubic downsampling by the scale) with its augmentation (rescaled "
                    "copies at 1, 0.75 and 0.5, 90 degree rotations and a flip), stores the patches in an HDF5 "
                    "file, and trains CoarSR with an L1 loss, Adam and a learning rate halved every third of the "
                    "epochs. \"Weight of the spectral-gradient loss term\" (under Advanced, default 0) adds the L1 "
                    "between the predicted and the true change from each band to the next, which weighs errors "
                    "that bend the spectrum (SAM); it did not improve the bundled weights, so it is off by default."),
            self.tr("The defaults are the recipe of the first stage of the bundled x2 weights: 32 feature "
                    "channels and 1 residual block, each mini-batch trained on a random run of 16 consecutive "
                    "bands, and a network that starts as the bicubic upsampling. The x3 and x4 files used smaller "
                    "patches and fewer epochs (weights/README.md)."),
            self.tr("\"Patches in proportion to area\" (under Advanced) draws patch positions from each scene in "
                    "proportion to its area instead of the same number from every scene, so that a large scene is "
                    "not under-sampled beside small ones; the bundled weights' last stage used 4."),
            self.tr("A part of each scene (the validation fraction of its area) is held out and never trained on; "
                    "PSNR, SSIM and SAM are measured on it after every epoch and the best weights are kept. A scene "
                    "too small for a window is all training; with no window at all the last epoch's weights are "
                    "kept and PSNR is empty. Bad bands (bbl = 0) and nodata pixels never enter the loss or the "
                    "metrics."),
            self.tr("The patches and a checkpoint live in a folder beside the output named after it; running again "
                    "with the same output resumes where a cancelled or killed run stopped. A CSV log and a "
                    "training-curve PNG are written beside the weights."),
            self.tr("The trained weights are the weights file of DualSR Coarse, Fine and DualSR, also in a model. "
                    "\"Start from weights\" fine-tunes existing weights instead of starting from scratch."),
            shell=self.tr("The scenes are INPUT (or a FOLDER), the trained weights OUTPUT_WEIGHTS, the weights to "
                          "start from WEIGHTS; the CSV log and the curve are the outputs CSV and CURVE. 'python -m "
                          "dualsr_core train' has the options this dialog lacks (--band-window, --zero-last)."),
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        layers = QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("High-resolution scenes"),
                                                      TYPE_RASTER, optional=True)
        layers.setHelp(self.tr("Reflectance rasters at the resolution you want to reach."))
        self.addParameter(layers)
        self.addParameter(QgsProcessingParameterFile(self.FOLDER, self.tr("Or a folder of scenes"),
                                                     behavior=FILE_BEHAVIOR_FOLDER, optional=True))
        self.addParameter(QgsProcessingParameterEnum(self.SCALE, self.tr("Scale factor"), options=SCALES,
                                                     defaultValue=DEFAULT_SCALE, usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterNumber(self.EPOCHS, self.tr("Epochs"), NUMBER_INTEGER,
                                                       defaultValue=Defaults.epochs, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Batch size"), NUMBER_INTEGER,
                                                       defaultValue=Defaults.batch_size, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(self.PATCH_SIZE, self.tr("Patch size (low-resolution px)"),
                                                       NUMBER_INTEGER, defaultValue=Defaults.patch_size, minValue=8))
        self.addParameter(QgsProcessingParameterNumber(self.LEARNING_RATE, self.tr("Learning rate"), NUMBER_DOUBLE,
                                                       defaultValue=Defaults.lr, minValue=1e-7, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(self.VAL_FRACTION, self.tr("Validation fraction"),
                                                       NUMBER_DOUBLE, defaultValue=Defaults.val_fraction, minValue=0.0,
                                                       maxValue=0.49))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), options=DEVICES,
                                                     defaultValue=Defaults.device, usesStaticStrings=True))
        weights = QgsProcessingParameterFile(self.WEIGHTS, self.tr("Start from weights (optional)"),
                                             behavior=FILE_BEHAVIOR_FILE, extension="pt", optional=True)
        weights.setHelp(self.tr("Fine-tune these weights (same scale); their network size is used."))
        self.addParameter(weights)
        for param in (
            QgsProcessingParameterNumber(self.FEATURES, self.tr("Feature channels"), NUMBER_INTEGER,
                                         defaultValue=Defaults.n_feats, minValue=4, maxValue=256),
            QgsProcessingParameterNumber(self.BLOCKS, self.tr("Residual blocks per branch"), NUMBER_INTEGER,
                                         defaultValue=Defaults.n_blocks, minValue=1, maxValue=8),
            QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), NUMBER_INTEGER,
                                         defaultValue=Defaults.seed),
            QgsProcessingParameterNumber(self.MAX_ITERATIONS, self.tr("Stop after this many batches (0: no limit)"),
                                         NUMBER_INTEGER, defaultValue=0, minValue=0),
            QgsProcessingParameterNumber(self.SPECTRAL_WEIGHT, self.tr("Weight of the spectral-gradient loss term"),
                                         NUMBER_DOUBLE, defaultValue=Defaults.spectral_weight, minValue=0.0),
            QgsProcessingParameterNumber(self.POSITIONS_PER_KILOPIXEL,
                                         self.tr("Patches in proportion to area: positions per 1000 pixels "
                                                 f"(0: {Defaults.positions_per_scale} per scene and copy)"),
                                         NUMBER_DOUBLE, defaultValue=0.0, minValue=0.0, maxValue=100.0),
            self.delete_work_parameter(),
        ):
            self.addParameter(self.adv(param))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_WEIGHTS, self.tr("Trained weights"),
                                                                self.tr("DualSR weights (*.pt)")))
        self.addOutput(QgsProcessingOutputNumber(self.PSNR, self.tr("Best validation PSNR (dB)")))
        self.addOutput(QgsProcessingOutputFile(self.CSV, self.tr("Training log (CSV)")))
        self.addOutput(QgsProcessingOutputFile(self.CURVE, self.tr("Training curve (PNG)")))

    def delete_work_parameter(self):
        delete = QgsProcessingParameterBoolean(self.DELETE_WORK, self.tr("Delete the work folder at the end"),
                                               defaultValue=Defaults.delete_work)
        delete.setHelp(self.tr("The work folder beside the weights (name.work) holds the training patches and the "
                               "last checkpoint: a cancelled or killed training resumes from it when run again with "
                               "the same settings. Delete it at the end of a successful run to free the space."))
        return delete

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        if not parameters.get(self.INPUT) and not parameters.get(self.FOLDER):
            return False, self.tr("Give the high-resolution scenes as INPUT layers or a FOLDER.")
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        from ..dualsr_core.training.trainer import train  # not at load time: see base.py

        scenes = [layer.source() for layer in self.parameterAsLayerList(parameters, self.INPUT, context)]
        folder = self.parameterAsFile(parameters, self.FOLDER, context)
        max_iterations = self.parameterAsInt(parameters, self.MAX_ITERATIONS, context)
        result = self.run_core(
            train,
            scenes + ([folder] if folder else []),
            self.parameterAsFileOutput(parameters, self.OUTPUT_WEIGHTS, context),
            int(self.parameterAsEnumString(parameters, self.SCALE, context)),
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            patch_size=self.parameterAsInt(parameters, self.PATCH_SIZE, context),
            lr=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            val_fraction=self.parameterAsDouble(parameters, self.VAL_FRACTION, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context),
            resume_from=self.optional_file(self.parameterAsFile(parameters, self.WEIGHTS, context)),
            n_feats=self.parameterAsInt(parameters, self.FEATURES, context),
            n_blocks=self.parameterAsInt(parameters, self.BLOCKS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            max_iterations=max_iterations or None,
            spectral_weight=self.parameterAsDouble(parameters, self.SPECTRAL_WEIGHT, context),
            positions_per_kilopixel=self.parameterAsDouble(parameters, self.POSITIONS_PER_KILOPIXEL, context) or None,
            delete_work=self.parameterAsBool(parameters, self.DELETE_WORK, context),
            feedback=self.core_feedback(feedback),
        )
        return {self.OUTPUT_WEIGHTS: result["OUTPUT_WEIGHTS"], self.PSNR: result["best"].get("psnr"),
                self.CSV: result["CSV"], self.CURVE: result["CURVE"]}
