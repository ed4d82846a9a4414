"""Exceptions raised by dualsr_core.

Every message is one line that names the parameter or file, what was found, what was expected
and what to do; the QGIS algorithms re-raise them as QgsProcessingException unchanged.
"""


class DualSRError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(DualSRError):
    """A raster or parameter given by the user cannot be used."""


class WeightsError(DualSRError):
    """A weights file is missing, corrupt, or does not fit the request."""


class MissingDependencyError(DualSRError):
    """A Python package needed for this step is not importable."""


class Cancelled(DualSRError):
    """The user cancelled the run; partial outputs have been removed."""
