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
# Coarse, Fine and DualSR: the side of the largest window the network reads, overlap included, in
# input pixels. 256 rather than 128: the overlap (16 pixels) is computed but not kept, so an inner
# 128-pixel read computes 1.78 times its core, a 256-pixel one 1.31 times; measured 1.4 to 1.5 times
# as fast at the same peak memory when the tile was the core (docs/benchmarks.md#tile-size).
DEFAULT_TILE = 256
DEGRADE_TILE = 256  # Degrade: tile side in output pixels
EVALUATE_TILE = 256  # Evaluate: tile side in pixels (read with a halo)
