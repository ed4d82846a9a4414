"""Shared base of the DualSR algorithms: naming, help plumbing, parameters, errors, feedback.

Algorithms import their dualsr_core function inside processAlgorithm: loading the provider then
needs only QGIS, so every tool is listed even where torch, rasterio, scipy or h5py is missing,
and canExecute() / the run say which package to install (as the Gusnet plugin does).
"""
from __future__ import annotations

from qgis.core import QgsApplication, QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

import html
import importlib.util
import sys
from pathlib import Path

from ..dualsr_core.network.torch_support import require_torch, running_python, torch_status
from ..dualsr_core.errors import Cancelled, DualSRError
from ..dualsr_core.io.atomic import folders_removed_on_failure
from ..dualsr_core.feedback import Feedback
from ..provider.compat import FLAG_ADVANCED, NUMBER_INTEGER

HELP_URL = "https://github.com/dualsr-qgis/dualsr-qgis#readme"
ICONS = Path(__file__).resolve().parents[1] / "provider" / "icons"  # <algorithm name>.svg
# qgis_process help lists a choice's options by number, but these algorithms take the value itself.
SHELL_CHOICES = "give a choice by its value (SCALE=4, DEVICE=cpu), not by the option number its help lists."
CITATION = ("Method: Q. Li, Y. Yuan, X. Jia, Q. Wang, Dual-Stage Approach Toward Hyperspectral Image "
            "Super-Resolution, IEEE Transactions on Image Processing 31, 2022.")


def _finite(limit: float) -> str | None:
    """A number parameter's limit as written ('512', '1e-07'), None where unset (QGIS's +-DBL_MAX)."""
    if abs(limit) >= sys.float_info.max:
        return None
    return str(int(limit)) if float(limit).is_integer() else repr(float(limit))


class DualSRAlgorithm(QgsProcessingAlgorithm):
    """Base of every DualSR algorithm; subclasses set `group_id`/`group_name` and the QGIS methods."""

    group_id = "superresolution"
    group_name = "Super-resolution"
    needs_torch = True
    needs_packages = ("numpy", "scipy", "rasterio")

    def createInstance(self):  # noqa: N802 (QGIS API name)
        return type(self)()

    def tr(self, text):
        return QCoreApplication.translate(type(self).__name__, text)

    def group(self):
        return self.tr(self.group_name)

    def groupId(self):  # noqa: N802 (QGIS API name)
        return self.group_id

    def helpUrl(self):  # noqa: N802 (QGIS API name)
        return HELP_URL

    def icon(self):
        return QIcon(str(ICONS / f"{self.name()}.svg"))

    def missing_packages(self) -> str:
        """A message naming the Python packages this tool needs and lacks ('' when none)."""
        missing = [name for name in self.needs_packages if importlib.util.find_spec(name) is None]
        if not missing:
            return ""
        python = running_python()
        return (f"Missing Python package(s): {', '.join(missing)}. Install them into the Python that runs QGIS "
                f"({python}), e.g. '{python} -m pip install {' '.join(missing)}'.")

    def canExecute(self):  # noqa: N802 (QGIS API name)
        """Only the desktop asks, and it shows the reason as HTML: escaped, so no path or `<...>` is lost."""
        missing = self.missing_packages()
        if missing:
            return False, html.escape(missing)
        if not self.needs_torch:
            return True, ""
        ok, message = torch_status()
        return ok, "" if ok else html.escape(message)

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Tell a missing path, a folder, an empty file and a file GDAL cannot read apart, by name,
        before QGIS's generic "could not load source layer". A sensor product (dualsr_core/io/products)
        is checked by its reader: QGIS cannot load it as a layer, so QGIS's own check skips it."""
        products = []
        if not self.missing_packages():
            from ..dualsr_core.io.products import product_kind, unreadable_reason

            for definition in self.parameterDefinitions():
                value = parameters.get(definition.name())
                if definition.type() != "raster" or not isinstance(value, str) or not value.strip():
                    continue
                if context.project() is not None and context.project().mapLayer(value) is not None:
                    continue  # a layer id of the open project
                reason = unreadable_reason(value, definition.name())
                if reason:
                    return False, reason
                if product_kind(value) is not None:
                    products.append(definition.name())
        for definition in self.parameterDefinitions():  # QGIS's check, without the products, saying why
            value = parameters.get(definition.name())
            if definition.name() not in products and not definition.checkValueIsAcceptable(value, context):
                return False, self.unacceptable(definition, value)
        return True, ""

    def unacceptable(self, definition, value) -> str:
        """Why QGIS refuses `value` for `definition`, in one sentence with the values it takes (QGIS
        itself says only "Incorrect parameter value for X")."""
        name = definition.name()
        if definition.type() == "number":
            whole = "whole " if definition.dataType() == NUMBER_INTEGER else ""
            low, high = (_finite(definition.minimum()), _finite(definition.maximum()))
            limits = f"from {low} to {high}" if low is not None and high is not None else \
                f"of at least {low}" if low is not None else f"of at most {high}" if high is not None else ""
            return f"{name} is {value} but must be a {whole}number {limits}".strip() + "."
        if definition.type() == "enum":
            return f"{name} is '{value}' but must be one of {', '.join(definition.options())}."
        if definition.type() == "raster" and isinstance(value, str) and ":" in value and not Path(value).exists() \
                and not self.missing_packages():
            from ..dualsr_core.io.raster import vrt_command

            return (f"{name} '{value}' is a GDAL subdataset, which QGIS does not load as a layer: make a VRT of it "
                    f"with {vrt_command(value)} and give that VRT as {name}.")
        if definition.type() == "multilayer" and not self.missing_packages():
            from ..dualsr_core.io.products import unreadable_reason

            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                reason = isinstance(item, str) and unreadable_reason(item, name)
                if reason:
                    return reason
        return self.tr("Incorrect parameter value for {}").format(name)

    @staticmethod
    def adv(param):
        """Mark a parameter as advanced and return it."""
        param.setFlags(param.flags() | FLAG_ADVANCED)
        return param

    def raster_path(self, parameters, name, context) -> str:
        """File path of a raster parameter; only GDAL-backed layers and sensor products (given by their
        path) can be read by dualsr_core."""
        value = parameters.get(name)
        if isinstance(value, str) and not self.missing_packages():
            from ..dualsr_core.io.products import product_kind

            if product_kind(value) is not None:
                return value
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            raise self.failure(self.invalidRasterError(parameters, name))
        if layer.providerType() != "gdal":
            raise self.failure(f"{name} is a '{layer.providerType()}' layer; DualSR reads rasters "
                               "through GDAL only. Save it as a GeoTIFF first.")
        return layer.source()

    @staticmethod
    def optional_file(value) -> str | None:
        """An optional file parameter's value, None when empty."""
        return value if value and str(value).strip() else None

    @staticmethod
    def core_feedback(feedback) -> Feedback:
        """Map dualsr_core's callbacks onto a QgsProcessingFeedback."""
        return Feedback(progress=lambda f: feedback.setProgress(100.0 * f), is_cancelled=feedback.isCanceled,
                        log=feedback.pushInfo, warn=feedback.pushWarning)

    def run_core(self, function, *args, **kwargs):
        """Call a dualsr_core function; its errors become QgsProcessingException with the same text."""
        missing = self.missing_packages()
        if missing:
            raise self.failure(missing)
        try:
            if self.needs_torch:
                require_torch()
            with folders_removed_on_failure():
                return function(*args, **kwargs)
        except Cancelled as exc:
            detail = str(exc).replace("Cancelled by user.", "").strip()
            raise self.failure(" ".join([self.tr("Canceled by user."), detail]).strip()) from exc
        except DualSRError as exc:
            raise self.failure(str(exc)) from exc

    @staticmethod
    def failure(message: str) -> QgsProcessingException:
        """The exception that ends a failed run. qgis_process prints it as "ERROR: ..." and, through
        the message log, twice more (its feedback and its algorithm runner each log it); the run is
        over, so there the message log is silenced and the user reads the sentence once. Not with
        --json, whose only report of the error is the message log."""
        if QgsApplication.platform() == "qgis_process" and "--json" not in QCoreApplication.arguments():
            QgsApplication.messageLog().blockSignals(True)
        return QgsProcessingException(message)

    @staticmethod
    def help_text(*paragraphs: str, shell: str = "") -> str:
        """Plain-text help: paragraphs joined by newlines, readable in the dialog and in qgis_process help.

        The paragraphs speak of the parameters by the labels the dialog shows; what only a shell user
        needs (parameter ids, choices by value) goes into `shell`, on a last "From the shell" line."""
        last = " ".join(filter(None, ["From the shell (qgis_process):", SHELL_CHOICES, shell]))
        return "\n".join(paragraphs + (CITATION, last))


