"""Sensor products as users download them, read like any raster (`open_raster`).

| product | given as | reader |
| --- | --- | --- |
| EnMAP L2A | its folder, `ENMAP*-METADATA.XML`, or the `ENMAP*.ZIP` | enmap.EnmapL2AReader |
| DESIS L2A | its folder or `DESIS*-METADATA.xml` | enmap.DesisL2AReader |
| PRISMA L2D | `PRS_*.he5`, or any `.he5` with PRISMA's L2D swath group | prisma.PrismaL2DReader |
| EMIT L2A reflectance | `EMIT_L2A_RFL*.nc`, or any `.nc` with EMIT's GLT and band groups | emit.EmitL2AReader |

Anything else goes to `RasterReader`. A file recognised here that does not hold what its product
must is refused with one sentence naming what is missing.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..raster import RasterReader
from ..raster import unreadable_reason as raster_unreadable_reason

ENMAP, DESIS, PRISMA, EMIT = "enmap", "desis", "prisma", "emit"
PRISMA_SWATH = "HDFEOS/SWATHS/PRS_L2D_HCO"  # a .he5 not named PRS_* is PRISMA L2D when it holds this
EMIT_LAYOUT = ("reflectance", "sensor_band_parameters", "location/glt_x")


def product_kind(path: str | os.PathLike) -> str | None:
    """Which product `path` is given as (see the module's table), or None for any other input.

    By name, and for a `.he5` or `.nc` not named as PRISMA or EMIT name theirs, by its groups (any
    other goes to GDAL, which names what it holds); a missing path is None.
    """
    path = Path(path)
    if path.is_dir():
        from .enmap import metadata_in_folder

        path = metadata_in_folder(path)
        if path is None:
            return None
    if not path.is_file():
        return None
    name = path.name.upper()
    if name.endswith("-METADATA.XML"):
        return ENMAP if name.startswith("ENMAP") else DESIS if name.startswith("DESIS") else None
    if name.endswith(".ZIP"):
        return ENMAP if name.startswith("ENMAP") else None
    if name.endswith(".HE5"):
        return PRISMA if name.startswith("PRS_") or _holds(path, PRISMA_SWATH) else None
    if name.endswith(".NC"):
        return EMIT if name.startswith("EMIT_L2A_RFL") or _holds(path, *EMIT_LAYOUT) else None
    return None


def display_name(path: str | os.PathLike) -> str | None:
    """A short name for a product's results, from its file name: mission, level and acquisition
    date, for example `ENMAP01 L2A 2022-06-09`; None for any other input."""
    kind = product_kind(path)
    if kind is None:
        return None
    path = Path(path)
    name = path.name if not path.is_dir() else path.resolve().name
    mission = {ENMAP: name.split("-")[0].upper(), DESIS: "DESIS", PRISMA: "PRISMA", EMIT: "EMIT"}[kind]
    level = re.search(r"L[12][A-D]", name.upper())
    date = re.search(r"(?<![0-9])(20[0-9]{2})([0-9]{2})([0-9]{2})", name)
    parts = [mission, level.group(0) if level else None, "-".join(date.groups()) if date else None]
    return " ".join(p for p in parts if p)


def output_stem(path: str | os.PathLike) -> str:
    """The name an output of `path` starts with: its stem, or for an EnMAP or DESIS METADATA.XML
    the product's id (`<id>-METADATA.XML` gives `<id>`); by the name alone."""
    name = Path(path).name
    return name[:-len("-METADATA.XML")] if name.upper().endswith("-METADATA.XML") else Path(path).stem


def open_raster(path: str | os.PathLike, parameter: str = "INPUT"):
    """The reader of an input: a product reader for a sensor product, else a `RasterReader`.

    Both read windows as float32 reflectance and validity and give the grid, CRS, wavelengths,
    FWHM, bad bands and nodata in the same way; close them (or use them as context managers).
    """
    kind = product_kind(path)
    if kind in (ENMAP, DESIS):
        from .enmap import DesisL2AReader, EnmapL2AReader

        return (EnmapL2AReader if kind == ENMAP else DesisL2AReader)(path, parameter)
    if kind == PRISMA:
        from .prisma import PrismaL2DReader

        return PrismaL2DReader(path, parameter)
    if kind == EMIT:
        from .emit import EmitL2AReader

        return EmitL2AReader(path, parameter)
    return RasterReader(path, parameter)


def unreadable_reason(path: str | os.PathLike, parameter: str = "INPUT") -> str | None:
    """Why `path` cannot be read as an input (raster or product), in one sentence; None when it can."""
    if product_kind(path) is None:
        return raster_unreadable_reason(path, parameter)
    from ...errors import DualSRError

    try:
        open_raster(path, parameter).close()
    except DualSRError as exc:  # InputError, or MissingDependencyError where h5py is missing
        return str(exc)
    return None


def files_of_product(path: str | os.PathLike) -> list[Path]:
    """The files a product given as `path` is made of ([] for any other input): the files of an
    EnMAP or DESIS product beside its METADATA.XML (its images, headers, quality layers), else the
    product file itself. No output may replace one of them."""
    kind = product_kind(path)
    if kind is None:
        return []
    path = Path(path)
    if path.is_dir():
        from .enmap import metadata_in_folder

        path = metadata_in_folder(path)
    if kind not in (ENMAP, DESIS) or path.suffix.lower() == ".zip":
        return [path]
    prefix = path.name[:-len("-METADATA.XML")] + "-"
    return sorted(p for p in path.parent.iterdir() if p.is_file() and p.name.startswith(prefix))


def is_product_member(path: str | os.PathLike) -> bool:
    """Whether `path` is one of the files of an EnMAP or DESIS product folder other than its
    METADATA.XML (the spectral image, quality layers, quicklooks): a folder scan takes the product
    once, through its metadata, instead of each of its images."""
    path = Path(path)
    name = path.name
    if name.upper().endswith("-METADATA.XML"):
        return False
    at = name.find("-")
    while at > 0:
        for spelling in ("-METADATA.XML", "-METADATA.xml"):
            if (path.parent / (name[:at] + spelling)).is_file():
                return True
        at = name.find("-", at + 1)
    return False


def _holds(path: Path, *names: str) -> bool:
    """Whether an HDF5 file holds all these groups or variables; False for any other file, and
    without h5py (GDAL reads the file then, as any netCDF or HDF5)."""
    try:
        import h5py
    except ImportError:
        return False

    try:
        with h5py.File(path, "r") as file:
            return all(name in file for name in names)
    except OSError:
        return False
