"""Whole hyperspectral scenes for training and validation: any GDAL raster, or a MATLAB `.mat` file.

A scene is a float32 reflectance cube (L,H,W), a mask of the pixels valid in every good band, and
which bands are good. Rasters go through `RasterReader` (band scale applied, nodata masked, bands
with `bbl` = 0 or without a single valid pixel are bad). `.mat` files hold one cube in one of the
layouts of the research benchmarks (see `read_mat_scene`): their values are brought to reflectance,
an all-zero band is bad, and a mask array or wavelengths in the file are honoured. Bad bands stay
in the cube, so band indices keep meaning file bands.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..tools.tiling import Region, band_groups, window_grid
from .atomic import ENVI_SUFFIXES, GDAL_SUFFIXES
from .bands import good_bands, wavelength_order
from .products import is_product_member, open_raster, product_kind

MAT_SUFFIX = ".mat"
# A scene is read into memory in square tiles of this side (a product in sensor geometry reads the
# box each covers), each in groups of bands (tools.tiling.band_groups).
SCENE_TILE = 512
# Image size of bands x pixels matrices whose file does not say it (by file-name prefix).
KNOWN_SIZES = {"samson": (95, 95), "moffett": (50, 50)}
# Scalar variables that give the image size of a bands x pixels matrix.
SIZE_KEYS = (("nRow", "nCol"), ("H", "W"), ("nrow", "ncol"), ("rows", "cols"), ("height", "width"))
# H x W arrays whose 0 marks a pixel outside the imaged area (CASI MUUFL's `mask_sub`). Not `map` or
# `gt`: the anomaly and class maps of the benchmarks mark valid pixels too.
MASK_KEYS = ("mask_sub", "mask", "valid")
# One centre wavelength per band (any unit: only their order is used).
WAVELENGTH_KEYS = ("wavelengths", "wavelength", "wavelengths_nm", "wl")


@dataclass
class Scene:
    """One scene in memory.

    Args:
        name: short unique name (file stem), used in logs, holdout windows and weights headers.
        cube: (L,H,W) float32 reflectance; invalid pixels hold 0.
        valid: (H,W) bool, True where the pixel is valid in every good band.
        good_bands: (L,) bool, False for bad bands (kept in the cube, never used).
        order: good bands in processing order (ascending wavelength when known, else file order).
        path: the file the scene came from.
    """

    name: str
    cube: np.ndarray
    valid: np.ndarray
    good_bands: np.ndarray
    order: np.ndarray
    path: Path

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.cube.shape)


def find_scenes(folder_or_files: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Scene files in folders (searched recursively) and files given directly, sorted, no duplicates.

    A folder contributes `.tif`, `.tiff`, `.vrt`, `.mat` files and ENVI `.img`/`.dat` files that have
    a `.hdr` beside them, and sensor products (io/products: an EnMAP or DESIS product once, through
    its METADATA.XML, not its images). A file given directly is taken whatever its extension.
    """
    items = [folder_or_files] if isinstance(folder_or_files, (str, os.PathLike)) else list(folder_or_files)
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and _is_scene_file(p))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"Training data '{path}' is neither a file nor a folder. Give scene files or folders.")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise InputError(f"No scene files (.tif, .tiff, .vrt, .mat, ENVI .img/.dat with .hdr) found in "
                         f"{', '.join(str(i) for i in items)}.")
    return unique


def _is_scene_file(path: Path) -> bool:
    if product_kind(path) is not None:  # a sensor product, taken once through its entry file
        return True
    if is_product_member(path):
        return False
    suffix = path.suffix.lower()
    if suffix in GDAL_SUFFIXES or suffix == MAT_SUFFIX:
        return True
    return suffix in ENVI_SUFFIXES and (path.with_suffix(".hdr").is_file() or
                                        Path(str(path) + ".hdr").is_file())


def scene_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Unique short names: the file stem, prefixed by parent folders where stems collide."""
    paths = [Path(p) for p in paths]
    names = [p.stem for p in paths]
    depth = 1
    while len(set(names)) < len(names) and depth < 8:
        names = ["_".join([*p.parent.parts[-depth:], p.stem]) if names.count(n) > 1 else n
                 for p, n in zip(paths, names)]
        depth += 1
    for i, name in enumerate(names):  # identical paths given twice: number them
        if names.count(name) > 1:
            names[i] = f"{name}_{names[:i].count(name) + 1}"
    return names


def load_scene(path: str | os.PathLike, name: str | None = None) -> Scene:
    """Load a whole scene into memory.

    Args:
        path: a raster GDAL opens, or a `.mat` file (see `read_mat_scene`).
        name: the scene name (default: the file stem).
    """
    path = Path(path)
    name = name or path.stem
    if path.suffix.lower() == MAT_SUFFIX:
        mat = read_mat_scene(path)
        cube, valid_bands, wavelengths = mat.cube, mat.valid_bands, mat.wavelengths
        flagged = [not band.any() for band in cube]  # an all-zero band of a .mat is a removed band
    else:
        with open_raster(path) as reader:
            cube, valid_bands = _read_whole(reader)
            flagged, wavelengths = reader.bad_band_list(), reader.wavelengths_um()
    empty = ~valid_bands.any(axis=(1, 2))
    good_list = good_bands(flagged, empty)
    order = wavelength_order(good_list, wavelengths) or good_list
    good = np.zeros(len(cube), bool)
    good[good_list] = True
    valid = valid_bands[good].all(axis=0) if good.any() else np.zeros(cube.shape[1:], bool)
    if not good.any():
        raise InputError(f"Scene '{path}' has no good band (every band is flagged bad or holds no valid pixel).")
    return Scene(name=name, cube=np.ascontiguousarray(cube, dtype=np.float32), valid=valid,
                 good_bands=good, order=np.asarray(order, dtype=np.int64), path=path)


def _read_whole(reader) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (B,H,W) and validity of a whole raster or product, read into them in square
    tiles and groups of bands of at most READ_BYTES: only the scene itself is held, not a copy of it
    in its stored encoding (nor, for a product in sensor geometry, the sensor cube)."""
    cube = np.empty((reader.count, reader.height, reader.width), dtype=np.float32)
    valid = np.empty(cube.shape, dtype=bool)
    for tile in window_grid(Region(0, 0, reader.height, reader.width), SCENE_TILE):
        rows, cols = slice(tile.row0, tile.row0 + tile.height), slice(tile.col0, tile.col0 + tile.width)
        for group in band_groups(reader.count, tile.height * tile.width):
            bands = slice(group[0], group[-1] + 1)
            cube[bands, rows, cols], valid[bands, rows, cols] = reader.read(tile, group)
    return cube, valid


class MatScene(NamedTuple):
    """A `.mat` scene: cube (L,H,W) float32 reflectance (0 where invalid), valid_bands (L,H,W) bool,
    and wavelengths (one per band, any unit, or None each)."""

    cube: np.ndarray
    valid_bands: np.ndarray
    wavelengths: list[float | None]


def read_mat_scene(path: str | os.PathLike) -> MatScene:
    """The cube of a `.mat` file in reflectance, its valid pixels and wavelengths.

    * The cube is the largest array in a layout of `load_mat_cube`.
    * Values are brought to reflectance by `reflectance_factor`; negatives (sensor noise over dark
      water and shade) are clipped to 0.
    * Non-finite values are invalid; so is every pixel where an H x W array named in `MASK_KEYS`
      is 0 (CASI's `mask_sub`: outside the flight line).
    * An array named in `WAVELENGTH_KEYS` with one value per band gives the wavelengths.
    """
    path = Path(path)
    variables = _read_mat(path)
    cube = load_mat_cube(path, variables)
    valid_bands = np.isfinite(cube)
    for key in MASK_KEYS:
        mask = variables.get(key)
        if mask is None:
            continue
        if np.shape(mask) != cube.shape[1:]:
            raise InputError(f"Scene '{path}' has a mask '{key}' of {np.shape(mask)} pixels, but its cube is "
                             f"{cube.shape[1]} x {cube.shape[2]}.")
        valid_bands &= np.asarray(mask != 0)[None]
    factor = reflectance_factor(cube[valid_bands])
    cube = np.where(valid_bands, np.maximum(cube * np.float32(factor), 0), 0).astype(np.float32)
    wavelengths: list[float | None] = [None] * len(cube)
    for key in WAVELENGTH_KEYS:
        values = variables.get(key)
        if isinstance(values, np.ndarray) and values.size == len(cube) and values.dtype.kind in "fiu":
            wavelengths = [float(v) for v in values.ravel()]
            break
    return MatScene(cube, valid_bands, wavelengths)


def reflectance_factor(values: np.ndarray) -> float:
    """The factor that brings a `.mat` cube's stored values to reflectance.

    The files carry no scale, so it is read from the values' 99.9th percentile: up to 2 they are
    reflectance already; from 1000 on they are reflectance x 10000 (AVIRIS, ROSIS, HYDICE
    products); between the two the unit is unknown (raw counts of an uncalibrated file), and the
    percentile is mapped to 0.5, a bright surface's reflectance (the calibrated AVIRIS scenes in
    ../shared/data put it between 0.42 and 0.74).
    """
    if values.size == 0:
        return 1.0
    high = float(np.percentile(values, 99.9))
    if high <= 2.0:  # reflectance as stored
        return 1.0
    if high >= 1000.0:  # reflectance x 10000
        return 1e-4
    return 0.5 / high  # unknown unit


def load_mat_cube(path: str | os.PathLike, variables: dict | None = None) -> np.ndarray:
    """The (L,H,W) cube of a `.mat` file, float32, values as stored.

    The largest 2D/3D array (floating point, or integers of 16 bits or more: 8-bit arrays are
    masks and labels) that fits a known layout is taken:
    * H x W x B (`im`, `HSim`, `data`, CAVE/Harvard style);
    * bands x pixels (`V`, `Y`), column-major pixels of an H x W image, where H and W come from
      scalar variables in the file (`nRow`/`nCol`, `H`/`W`), from the known sizes of Samson (95 x 95)
      and Moffett (50 x 50), or from a square pixel count. A pixels x bands matrix is accepted too.
    MATLAB v7.3 files (HDF5) are read with h5py.

    Args:
        path: the file.
        variables: its arrays, when already read (`_read_mat`).
    """
    path = Path(path)
    variables = _read_mat(path) if variables is None else variables
    sizes = _size_hints(variables, path)
    best, best_size = None, 0
    for value in variables.values():
        if not (isinstance(value, np.ndarray) and value.ndim in (2, 3) and _may_be_a_cube(value.dtype)):
            continue
        cube = _as_cube(value, sizes)
        if cube is not None and value.size > best_size:
            best, best_size = cube, value.size
    if best is None:
        described = ", ".join(f"{k} {getattr(v, 'shape', '?')}" for k, v in variables.items()) or "none"
        raise InputError(f"Scene '{path}' holds no cube in a known layout (H x W x B, or bands x pixels with a "
                         f"known image size); arrays found: {described}.")
    return np.ascontiguousarray(best, dtype=np.float32)


def _may_be_a_cube(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or (dtype.kind in "iu" and dtype.itemsize >= 2)


def _read_mat(path: Path) -> dict:
    from scipy import io

    try:
        return {k: v for k, v in io.loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:  # MATLAB v7.3: an HDF5 file with every array stored transposed
        import h5py

        with h5py.File(path, "r") as f:
            return {k: np.asarray(v[()]).T for k, v in f.items() if isinstance(v, h5py.Dataset)}
    except (ValueError, OSError) as exc:
        raise InputError(f"Scene '{path}' is not a readable .mat file ({exc}).") from exc


def _size_hints(variables: dict, path: Path) -> list[tuple[int, int]]:
    hints = []
    for rows_key, cols_key in SIZE_KEYS:
        rows, cols = variables.get(rows_key), variables.get(cols_key)
        if rows is not None and cols is not None and np.size(rows) == 1 and np.size(cols) == 1:
            hints.append((int(np.ravel(rows)[0]), int(np.ravel(cols)[0])))
    stem = path.stem.lower()
    hints += [size for prefix, size in KNOWN_SIZES.items() if stem.startswith(prefix)]
    return hints


def _as_cube(value: np.ndarray, sizes: list[tuple[int, int]]) -> np.ndarray | None:
    if value.ndim == 3:
        return value.transpose(2, 0, 1)  # H x W x B
    rows, cols = value.shape
    for height, width in sizes + _square(cols) + _square(rows):
        if cols == height * width and rows > 1:  # bands x pixels
            return value.T.reshape(height, width, rows, order="F").transpose(2, 0, 1)
        if rows == height * width and cols > 1:  # pixels x bands
            return value.reshape(height, width, cols, order="F").transpose(2, 0, 1)
    return None


def _square(count: int) -> list[tuple[int, int]]:
    side = math.isqrt(count)
    return [(side, side)] if side > 1 and side * side == count else []
