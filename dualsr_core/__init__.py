"""dualsr_core: DualSR hyperspectral super-resolution without QGIS.

Model, band partition, back-projection, tiling, raster I/O, training and metrics. Importing the
package imports neither QGIS nor torch; functions that need torch call `require_torch()` first.
"""

__version__ = "0.1.0"
