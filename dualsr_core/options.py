"""The choices and defaults of the run options, one list each (no torch, no QGIS).

The core checks its arguments against these, and the QGIS algorithms and the command line offer
them, so a new choice is added here once.
"""
from __future__ import annotations

SCALES = (2, 3, 4, 8)  # CoarSR's upsampling factors
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "int8")  # appended only: QGIS models store the index
SCHEDULES = ("auto", "band", "batched")  # band order of the inference engine (network/engine.py)
BAD_BAND_MODES = ("nodata", "bicubic")  # how Coarse writes bands flagged bad or empty
DEFAULT_TILE = 128  # Coarse, Fine and DualSR: tile side in input pixels
DEGRADE_TILE = 256  # Degrade: tile side in output pixels
EVALUATE_TILE = 256  # Evaluate: tile side in pixels (read with a halo)
