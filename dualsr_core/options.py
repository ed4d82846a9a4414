"""The choices and defaults of the run options, one list each (no torch, no QGIS).

The core checks its arguments against these, and the QGIS algorithms and the command line offer
them, so a new choice is added here once.
"""
from __future__ import annotations

SCALES = (2, 3, 4, 8)  # CoarSR's upsampling factors
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "int8")  # the algorithms take these values (static strings)
SCHEDULES = ("auto", "band", "batched")  # band order of the inference engine (network/engine.py)
BAD_BAND_MODES = ("nodata", "bicubic")  # how Coarse writes bands flagged bad or empty
DRIVERS = ("GTiff", "COG", "ENVI")  # output formats (GDAL drivers) of Coarse, Fine, DualSR and batch
# Coarse, Fine and DualSR: tile side in input pixels. 256 rather than 128: a tile reads its
# receptive radius around it, so 128 computed (128 + 2 x 16)^2 / 128^2 = 1.56 times its core, 256
# only 1.27 times; measured 1.4 to 1.5 times as fast at the same peak memory (docs/benchmarks.md#tile-size).
DEFAULT_TILE = 256
DEGRADE_TILE = 256  # Degrade: tile side in output pixels
EVALUATE_TILE = 256  # Evaluate: tile side in pixels (read with a halo)
