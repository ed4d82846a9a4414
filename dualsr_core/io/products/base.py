"""What every product reader shares: the reader interface of `RasterReader` over a product's own
layout, so that Coarse, Fine, Degrade, Evaluate, training and batch read a product like a raster.

A reader subclass says where the pixels are (`_read_raw`: a window in the product's encoding, bands
in the reader's order) and fills the metadata: grid, encoding, nodata and, per band, the centre
wavelength and FWHM in nanometres and whether the product flags it bad. Everything else (reflectance
and validity, the bad-band survey, extents, band metadata for the writer) is here, by the rules
`RasterReader` applies to any raster.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from rasterio.transform import Affine

from ...errors import InputError, MissingDependencyError
from ..raster import RasterReader
from ..raster import _is_nodata as is_nodata
from ...tools.tiling import Region, window_grid

# The survey of invalid pixels reads square windows of this side: a product in sensor geometry
# (EMIT) reads, for a window of its map grid, the box of sensor pixels that the window covers, and
# a square window keeps that box small where a strip of whole rows would cover most of the scene.
SURVEY_SIDE = 256


class ProductTags:
    """The product-level metadata items that `RasterWriter` copies from a reader's `dataset`."""

    def __init__(self, items: dict[str, str]):
        self.items = items

    def tags(self, bidx: int = 0, ns: str | None = None) -> dict[str, str]:
        return dict(self.items) if not ns else {}


class ProductReader:
    """Windows of a sensor product as float32 reflectance and a validity mask, like `RasterReader`.

    Subclasses set, in `__init__`: `path` (as given), `parameter`, `width`, `height`, `crs`,
    `transform`, `dtype` (the stored values), `nodata` (a stored value, or None), `scales` and
    `offsets` (reflectance = stored x scale + offset, per band), `scale_source` (where they come
    from), `wavelengths_nm` and `fwhm_nm` (per band, None where unknown), `flagged` (per band, True
    where the product says the band is bad), `band_names` and `scene_id`; set as class attributes `product`
    (the phrase of error messages, for example "an EnMAP L2A product") and `label` (the product's
    name in the outputs' PRODUCT tag, for example "EnMAP L2A"); and implement `_read_raw` and `close`.
    """

    scale_assumed = False  # the encoding is the product's own, never the x10000 guess

    path: str
    parameter: str
    width: int
    height: int
    crs: object
    transform: Affine
    dtype: np.dtype
    nodata: float | None
    scales: np.ndarray
    offsets: np.ndarray
    scale_source: str
    wavelengths_nm: list[float | None]
    fwhm_nm: list[float | None]
    flagged: list[bool]
    band_names: list[str]
    product: str
    label: str
    scene_id: str

    _invalid: np.ndarray | None = None

    # Extents and the problem report follow the raster rules exactly: they read only the grid,
    # the CRS, the parameter name and `invalid_counts`.
    region_from_bounds = RasterReader.region_from_bounds
    report_problems = RasterReader.report_problems

    @property
    def count(self) -> int:
        return len(self.wavelengths_nm)

    @property
    def is_integer(self) -> bool:
        return np.issubdtype(self.dtype, np.integer)

    @property
    def dataset(self) -> ProductTags:
        """Product-level items the writer copies into every output: which product and scene."""
        return ProductTags({"PRODUCT": self.label, "SCENE_ID": self.scene_id})

    @property
    def descriptions(self) -> list[str]:
        return list(self.band_names)

    def band_tags(self, band: int, domain: str = "") -> dict:
        """Metadata of a band (0-based) as EnMAP-Box writes it for GeoTIFF: wavelength and fwhm in
        nanometres and `bbl`, in the default domain; the writer derives the IMAGERY items."""
        if domain:
            return {}
        tags = {"bbl": "0" if self.flagged[band] else "1"}
        if self.wavelengths_nm[band] is not None:
            tags.update(wavelength=repr(float(self.wavelengths_nm[band])), wavelength_units="Nanometers")
        if self.fwhm_nm[band] is not None:
            tags["fwhm"] = repr(float(self.fwhm_nm[band]))
        return tags

    def wavelengths_um(self) -> list[float | None]:
        """Centre wavelength of each band in micrometres (nanometres x 1e-3, as RasterReader converts)."""
        return [None if w is None else float(w) * 1e-3 for w in self.wavelengths_nm]

    def bad_band_list(self) -> list[bool]:
        """True for the bands the product flags bad."""
        return list(self.flagged)

    def empty_bands(self) -> list[bool]:
        """True for bands without a single valid pixel; stops at the first window where every band
        has shown one, unless the full survey already ran."""
        if self._invalid is not None:
            return (self._invalid == self.width * self.height).tolist()
        empty = np.ones(self.count, dtype=bool)
        for window in self._survey_windows():
            every = list(range(self.count))
            empty &= ~self._validity(window, every, self._read_raw(window, every)).reshape(self.count, -1).any(axis=1)
            if not empty.any():
                break
        return empty.tolist()

    def invalid_counts(self) -> np.ndarray:
        """Invalid pixels (nodata, NaN, infinite) per band in the whole product, counted once."""
        if self._invalid is None:
            counts = np.zeros(self.count, dtype=np.int64)
            every = list(range(self.count))
            for window in self._survey_windows():
                valid = self._validity(window, every, self._read_raw(window, every))
                counts += valid.size // self.count - np.count_nonzero(valid.reshape(self.count, -1), axis=1)
            self._invalid = counts
        return self._invalid

    def _survey_windows(self):
        return window_grid(Region(0, 0, self.height, self.width), SURVEY_SIDE, SURVEY_SIDE)

    def block_cache(self, height: int, width: int, bands: int):
        """Nothing to size: HDF5 products keep their own chunk cache (opened with one)."""
        return contextlib.nullcontext()

    def read(self, region: Region, bands: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Reflectance (B,h,w) float32 and validity mask (B,h,w) bool of a window, as RasterReader.read.

        Args:
            region: the window, inside the product's grid.
            bands: 0-based band indices of this reader (default: all).
        """
        bands = list(range(self.count)) if bands is None else list(bands)
        raw = self._read_raw(region, bands)
        valid = self._validity(region, bands, raw)
        scales = self.scales[bands].astype(np.float32)[:, None, None]
        offsets = self.offsets[bands].astype(np.float32)[:, None, None]
        reflectance = raw.astype(np.float32) * scales + offsets
        reflectance[~valid] = 0.0
        return reflectance, valid

    def _validity(self, region: Region, bands: list[int], raw: np.ndarray) -> np.ndarray:
        """Validity (B,h,w) of `raw`, the stored values of `bands` in `region`: value by value
        (`_valid`), unless a product marks no data by pixel across its bands."""
        return self._valid(raw)

    def _valid(self, raw: np.ndarray) -> np.ndarray:
        valid = np.ones(raw.shape, dtype=bool) if self.nodata is None else ~is_nodata(raw, self.nodata)
        if raw.dtype.kind == "f":
            valid &= np.isfinite(raw)
        return valid

    def _read_raw(self, region: Region, bands: list[int]) -> np.ndarray:
        """Stored values (B,h,w) of `bands` (0-based, this reader's order) in `region`."""
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Hdf5ProductReader(ProductReader):
    """A product in one HDF5 file (PRISMA's .he5, EMIT's netCDF-4), read with h5py: the file stays
    open, and `_describe` reads its metadata or raises; either way a failed open leaves no file open.

    Subclasses set `file_kind`, what the file must be ("an HDF5 file"), and write `_describe`.
    """

    file_kind = "an HDF5 file"
    # h5py's chunk cache per dataset: the chunks of a tile are decompressed once, not per band group.
    chunk_cache_bytes = 64 * 2**20

    def __init__(self, path: str | os.PathLike, parameter: str = "INPUT"):
        h5py = require_h5py(f"Reading {self.product}")
        self.path, self.parameter = str(path), parameter
        self.scene_id = Path(path).stem
        try:
            self.file = h5py.File(self.path, "r", rdcc_nbytes=self.chunk_cache_bytes)
        except OSError as exc:
            raise product_error(parameter, path, self.product, f"it is not {self.file_kind} h5py can read") from exc
        try:
            self._describe()
        except BaseException:
            self.close()
            raise

    def _describe(self):
        raise NotImplementedError

    def close(self):
        if getattr(self, "file", None) is not None:
            self.file.close()
            self.file = None


def sorted_subset(indices: list[int]) -> tuple[list[int], np.ndarray]:
    """The distinct `indices` in increasing order (what HDF5 selections need) and, for each of
    `indices`, its position in that order."""
    unique = sorted(set(indices))
    position = {index: k for k, index in enumerate(unique)}
    return unique, np.array([position[i] for i in indices], dtype=np.intp)


def band_name(number: int, wavelength_nm: float | None) -> str:
    """A band description in EnMAP-Box's form, which RasterReader parses back to a wavelength."""
    return f"band {number}" if wavelength_nm is None else f"band {number} ({float(wavelength_nm):g} Nanometers)"


def decimal(value) -> float:
    """A stored number as the decimal it was written as: a float32 450.2 is 450.2, not
    450.20001220703125 (numpy prints the shortest decimal that reads back as the same float32)."""
    return float(str(value))


def product_error(parameter: str, path: str | os.PathLike, product: str, missing: str) -> InputError:
    """The one sentence for a file that looks like `product` but is not: what is missing."""
    return InputError(f"{parameter} '{path}' looks like {product} but {missing}.")


def require_h5py(subject: str):
    """h5py, or an error that says how to install it; `subject` is what needs it ("Training",
    "Reading a PRISMA L2D product": the HDF5 products and the training patches, not EnMAP or DESIS)."""
    try:
        import h5py
    except ImportError as exc:
        import sys

        raise MissingDependencyError(f"{subject} needs h5py, which is not importable ({exc}). Install it into "
                                     f"the Python that runs QGIS: '{sys.executable} -m pip install h5py'.") from exc
    return h5py
