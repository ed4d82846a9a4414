"""Raster I/O: with style.py (which reads band statistics for the default style), the only code of the
core that touches rasterio and GDAL.

`RasterReader` turns a raster into float32 reflectance windows plus a validity mask: the band
scale/offset is applied, integers without a scale are read as reflectance x 10000 (the EnMAP,
PRISMA and Sentinel-2 convention), nodata becomes a mask. `RasterWriter` writes the result on the
input's grid with the pixel size divided by the scale, the same CRS (WKT), band descriptions and
spectral metadata, and the input's encoding, window by window into a temporary file that is moved
into place only when complete.
"""
from __future__ import annotations

import math
import os
import re
import warnings
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import rasterio
import rasterio.crs
import rasterio.enums
import rasterio.warp
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import Affine
from rasterio.windows import Window

from ..errors import InputError
from ..options import DRIVERS
from ..tools.tiling import Region, window_grid
from .atomic import ENVI_SUFFIXES, atomic_path, remove_quietly

INTEGER_REFLECTANCE_SCALE = 1e-4
# Metadata domains copied to the output (the dataset's here; each band's default and IMAGERY
# domains in RasterWriter._copy_metadata); structural ones (IMAGE_STRUCTURE, ...) are rewritten by
# the driver and must not be copied.
DATASET_DOMAINS = ("", "IMAGERY")
GDAL_CACHE_BYTES = 16 * 2**20
# Two grids are the same when no pixel corner of one lies farther than this from the other's, in
# pixels: far below any registration error, far above the rounding of a written geotransform.
GRID_TOLERANCE = 1e-6
# copy_encoded moves a finished raster in blocks of this many rows and bands (bounded memory).
COPY_ROWS = 256
COPY_BANDS = 16
_UNIT_TO_UM = {"nanometers": 1e-3, "nanometer": 1e-3, "nm": 1e-3, "micrometers": 1.0, "micrometer": 1.0,
               "um": 1.0, "microns": 1.0, "micron": 1.0, "millimeters": 1e3, "mm": 1e3}


def gdal_env(cache_bytes: int = GDAL_CACHE_BYTES):
    """rasterio environment with a bounded GDAL block cache, so memory does not grow with the raster."""
    return rasterio.Env(GDAL_CACHEMAX=cache_bytes, GDAL_TIFF_INTERNAL_MASK=True)


class RasterReader:
    """Read windows of a raster as float32 reflectance and a validity mask.

    Args:
        path: any file GDAL opens as a raster (GeoTIFF, ENVI, netCDF/HDF5 subdataset, VRT).
        parameter: the parameter name used in error messages.
    """

    def __init__(self, path: str | os.PathLike, parameter: str = "INPUT"):
        self.path = str(path)
        self.parameter = parameter
        self._env = gdal_env()
        self._env.__enter__()
        try:
            with warnings.catch_warnings():  # a raster without a CRS is warned about once, by report_problems
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self.dataset = rasterio.open(self.path)
        except RasterioIOError as exc:
            self._env.__exit__(None, None, None)
            # GDAL strings (subdatasets, /vsi paths) are opened as they are; a message about the
            # file itself is clearer when the path names a missing or empty file.
            file = Path(self.path)
            if not file.exists() and not any(mark in self.path for mark in (":", "|", "/vsi")):
                raise InputError(f"{parameter} '{self.path}' does not exist.") from exc
            if file.is_file() and file.stat().st_size == 0:
                raise InputError(f"{parameter} '{self.path}' is an empty (0-byte) file, not a raster.") from exc
            raise InputError(f"{parameter} '{self.path}' is not a raster GDAL can read; choose a GeoTIFF, ENVI or "
                             "other raster file.") from exc
        ds = self.dataset
        if ds.count < 1:
            tags = ds.tags(ns="SUBDATASETS")  # GDAL's own names, quoted as gdal_translate takes them
            subdatasets = [tags.get(f"SUBDATASET_{n}_NAME", name) for n, name in enumerate(ds.subdatasets, 1)]
            self.close()
            if subdatasets:
                raise InputError(_container_advice(self.path, subdatasets, parameter))
            raise InputError(f"{parameter} '{self.path}' has no raster bands.")
        self.width, self.height, self.count = ds.width, ds.height, ds.count
        self.dtype = np.dtype(ds.dtypes[0])
        self.crs = ds.crs
        self.transform = ds.transform
        self.nodata = ds.nodata
        self.is_integer = np.issubdtype(self.dtype, np.integer)
        self._envi = _envi_band_items(ds)
        self._invalid = None
        self.scales, self.offsets = self._encoding()

    def _encoding(self) -> tuple[np.ndarray, np.ndarray]:
        ds = self.dataset
        scales = np.array([s if s not in (None, 0) else 1.0 for s in ds.scales], dtype=np.float64)
        offsets = np.array([o if o is not None else 0.0 for o in ds.offsets], dtype=np.float64)
        self.scale_source = "band scale/offset"
        self.scale_assumed = False
        envi_factor = _to_float(self.dataset.tags(ns="ENVI").get("reflectance_scale_factor", "")) \
            if "ENVI" in self.dataset.tag_namespaces() else None
        if np.all(scales == 1.0) and np.all(offsets == 0.0):
            if envi_factor:
                scales[:] = 1.0 / envi_factor
                self.scale_source = f"ENVI reflectance scale factor {envi_factor:g}"
            elif self.is_integer:
                scales[:] = INTEGER_REFLECTANCE_SCALE
                self.scale_assumed = True
                self.scale_source = "integer raster without a scale: read as reflectance x 10000"
            else:
                self.scale_source = "float raster without a scale: read as reflectance"
        return scales, offsets

    # -- metadata ------------------------------------------------------------------------------
    @property
    def descriptions(self) -> list[str | None]:
        return list(self.dataset.descriptions)

    def band_tags(self, band: int, domain: str = "") -> dict:
        """Metadata of a band (0-based) in a GDAL domain ('' is the default domain).

        For ENVI files the header's per-band lists (wavelength, fwhm, bbl, units) are merged
        into the default domain, as EnMAP-Box writes them for GeoTIFF.
        """
        if domain:
            return self.dataset.tags(band + 1, ns=domain)
        return {**self._envi[band], **self.dataset.tags(band + 1)}

    def wavelengths_um(self) -> list[float | None]:
        """Centre wavelength of each band in micrometres, or None where the metadata lacks it."""
        result = []
        for band in range(self.count):
            tags = self.band_tags(band)
            imagery = self.band_tags(band, "IMAGERY")
            value = None
            if "CENTRAL_WAVELENGTH_UM" in imagery:
                value = _to_float(imagery["CENTRAL_WAVELENGTH_UM"])
            elif "wavelength" in tags:
                factor = _unit_factor_um(tags)
                wavelength = _to_float(tags["wavelength"])
                if wavelength is not None:
                    # Without units, values above 100 are nanometres (no sensor here reaches 100 um).
                    factor = factor or (1e-3 if wavelength > 100 else 1.0)
                    value = wavelength * factor
            else:
                match = re.search(r"\(([\d.]+)\s*(nanometers|nm|micrometers|um)\)", self.descriptions[band] or "", re.I)
                if match:
                    value = float(match.group(1)) * _UNIT_TO_UM[match.group(2).lower()]
            result.append(value)
        return result

    def bad_band_list(self) -> list[bool]:
        """True for bands flagged bad by a `bbl` = 0 item (band-level, or the ENVI header's list)."""
        return [self.band_tags(b).get("bbl", "1").strip() in ("0", "0.0") for b in range(self.count)]

    def empty_bands(self) -> list[bool]:
        """True for bands without a single valid pixel.

        Exact, and usually cheap: the survey of `invalid_counts` if it ran, else one that stops as
        soon as every band has shown a valid pixel, in most scenes within the first window.
        """
        if self._invalid is not None:
            return (self._invalid == self.width * self.height).tolist()
        empty = np.ones(self.count, dtype=bool)
        for window in self._survey_windows():
            valid = self._valid(self.dataset.read(window=window))
            empty &= ~valid.reshape(self.count, -1).any(axis=1)
            if not empty.any():
                break
        return empty.tolist()

    def invalid_counts(self) -> np.ndarray:
        """Invalid pixels (nodata, NaN, infinite) per band in the whole raster, counted once.

        Windows of whole blocks are read with every band, so each block is decompressed once
        whatever the interleaving.
        """
        if self._invalid is None:
            counts = np.zeros(self.count, dtype=np.int64)
            for window in self._survey_windows():
                valid = self._valid(self.dataset.read(window=window))
                counts += valid.size // self.count - np.count_nonzero(valid.reshape(self.count, -1), axis=1)
            self._invalid = counts
        return self._invalid

    def report_problems(self, feedback) -> None:
        """Warn when the raster has no CRS; log how many invalid pixel values (nodata, NaN or
        infinite) it holds."""
        if self.crs is None:
            feedback.warn(f"{self.parameter} has no coordinate reference system: the output keeps its pixel grid "
                          "but cannot be placed on a map. Assign a CRS to the input if it should be.")
        invalid = int(self.invalid_counts().sum())
        if invalid:
            share = invalid / (self.width * self.height * self.count)
            feedback.log(f"{self.parameter} holds {invalid:,} invalid pixel values ({share:.2%}: nodata, NaN or "
                         "infinite); they never reach the network and are written as nodata.")

    def _survey_windows(self, budget: int = 32 * 2**20):
        """Windows on the block grid, about 256 pixels wide and `budget` bytes with every band (at
        least one row of blocks), in file order."""
        block_rows, block_cols = self.dataset.block_shapes[0]
        cols = min(self.width, block_cols * max(1, 256 // block_cols))
        rows = block_rows * max(1, budget // (cols * block_rows * self.count * self.dtype.itemsize))
        for w in window_grid(Region(0, 0, self.height, self.width), rows, cols):
            yield Window(w.col0, w.row0, w.width, w.height)

    def block_cache(self, height: int, width: int, bands: int):
        """A GDAL environment whose block cache holds every block that a window of height x width
        pixels and `bands` bands touches, so that the runs of bands of one tile decompress each
        block once. A pixel-interleaved file stores every band in each block, so there the blocks
        of all bands count. The writer's blocks get GDAL_CACHE_BYTES beside them."""
        block_rows, block_cols = self.dataset.block_shapes[0]
        blocks = (min(math.ceil(height / block_rows) + 1, math.ceil(self.height / block_rows))
                  * min(math.ceil(width / block_cols) + 1, math.ceil(self.width / block_cols)))
        pixel_interleaved = self.count > 1 and self.dataset.interleaving == rasterio.enums.Interleaving.pixel
        per_block = block_rows * block_cols * self.dtype.itemsize * (self.count if pixel_interleaved else bands)
        return gdal_env(blocks * per_block + GDAL_CACHE_BYTES)

    def region_from_bounds(self, bounds: tuple[float, float, float, float], crs_wkt: str | None = None,
                           warn=None) -> Region:
        """The window of whole pixels covering (xmin, ymin, xmax, ymax), snapped outwards.

        Args:
            bounds: the extent, in `crs_wkt` or else in the raster's CRS.
            crs_wkt: CRS of the extent; it is transformed (densified edges) to the raster's CRS.
            warn: called with a line when the extent reaches beyond the raster and is clipped.
        """
        xmin, ymin, xmax, ymax = bounds
        if crs_wkt and not self.crs:
            raise InputError(f"EXTENT is given in {rasterio.crs.CRS.from_user_input(crs_wkt).to_string()} but "
                             f"{self.parameter} has no CRS to place it in; assign {self.parameter} a CRS, or give "
                             "EXTENT in the raster's own coordinates without a CRS.")
        if crs_wkt and rasterio.crs.CRS.from_user_input(crs_wkt) != self.crs:
            xmin, ymin, xmax, ymax = rasterio.warp.transform_bounds(crs_wkt, self.crs, xmin, ymin, xmax, ymax,
                                                                    densify_pts=21)
        inverse = ~self.transform
        corners = [inverse * (x, y) for x in (xmin, xmax) for y in (ymin, ymax)]
        cols, rows = [c for c, _ in corners], [r for _, r in corners]
        eps = 1e-6  # an extent on a pixel edge up to rounding stays on it instead of taking one more pixel
        col0, col1 = math.floor(min(cols) + eps), math.ceil(max(cols) - eps)
        row0, row1 = math.floor(min(rows) + eps), math.ceil(max(rows) - eps)
        inside = (max(col0, 0), max(row0, 0), min(col1, self.width), min(row1, self.height))
        if inside[2] <= inside[0] or inside[3] <= inside[1]:
            west, south, east, north = rasterio.transform.array_bounds(self.height, self.width, self.transform)
            raise InputError(f"EXTENT {_plain(xmin, xmax, ymin, ymax)} (xmin,xmax,ymin,ymax in the raster's CRS) does "
                             f"not overlap {self.parameter}, which covers {_plain(west, east, south, north)}.")
        if inside != (col0, row0, col1, row1) and warn is not None:
            warn(f"EXTENT reaches beyond {self.parameter}: it is clipped to the raster, {inside[2] - inside[0]} x "
                 f"{inside[3] - inside[1]} pixels instead of {col1 - col0} x {row1 - row0}.")
        col0, row0, col1, row1 = inside
        return Region(row0, col0, row1 - row0, col1 - col0)

    # -- pixels --------------------------------------------------------------------------------
    def read(self, region: Region, bands: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Reflectance (B,h,w) float32 and validity mask (B,h,w) bool of a window.

        Args:
            region: the window, inside the raster.
            bands: 0-based band indices (default: all).
        """
        bands = list(range(self.count)) if bands is None else list(bands)
        window = Window(region.col0, region.row0, region.width, region.height)
        raw = self.dataset.read([b + 1 for b in bands], window=window)
        valid = self._valid(raw)
        scales = self.scales[bands].astype(np.float32)[:, None, None]
        offsets = self.offsets[bands].astype(np.float32)[:, None, None]
        reflectance = raw.astype(np.float32) * scales + offsets
        reflectance[~valid] = 0.0
        return reflectance, valid

    def _valid(self, raw: np.ndarray) -> np.ndarray:
        """Pixels that are neither the nodata value nor, in float rasters, NaN or infinite."""
        valid = np.ones(raw.shape, dtype=bool) if self.nodata is None else ~_is_nodata(raw, self.nodata)
        if raw.dtype.kind == "f":
            valid &= np.isfinite(raw)
        return valid

    def close(self):
        if getattr(self, "dataset", None) is not None:
            self.dataset.close()
            self.dataset = None
            self._env.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _plain(*values: float) -> str:
    """Coordinates as QGIS writes an extent: comma-separated plain numbers (5700000, not 5.7e+06)."""
    return ",".join(f"{value:.6f}".rstrip("0").rstrip(".") for value in values)


def _container_advice(path: str, subdatasets: list[str], parameter: str) -> str:
    """The sentence for an HDF5 or netCDF container: QGIS and qgis_process open none of its
    subdataset names as a raster layer, so it names a gdal_translate line that makes a VRT of one."""
    parts = [name.rsplit(":", 1)[-1].strip("/") for name in subdatasets]
    shown = ", ".join(parts[:8]) + (" ..." if len(parts) > 8 else "")
    return (f"{parameter} '{path}' is a container of {len(subdatasets)} subdatasets ({shown}), which QGIS does not "
            f"open as a raster layer: make a VRT of the one to use, e.g. {vrt_command(subdatasets[0])}, and give "
            f"that VRT as {parameter}.")


def vrt_command(subdataset: str) -> str:
    """The gdal_translate line that makes a VRT of a GDAL subdataset name (HDF5:"/x/a.h5"://b), a
    file QGIS loads as a layer, beside its container (/x/a_b.vrt)."""
    quoted = re.search(r'"([^"]+)"', subdataset)
    container = Path(quoted[1] if quoted else subdataset.split(":")[1])
    part = re.sub(r"[^A-Za-z0-9]+", "_", subdataset.rsplit(":", 1)[-1]).strip("_")
    return f"gdal_translate -of VRT '{subdataset}' '{container.with_name(f'{container.stem}_{part}.vrt')}'"


def _disk_full(folder: Path, needed_bytes: int = 1) -> bool:
    """Whether the file system of `folder` has less than `needed_bytes` left (GDAL's ENVI and COG
    writers do not say why a write failed)."""
    try:
        stats = os.statvfs(folder)
        return stats.f_bavail * stats.f_frsize < needed_bytes
    except OSError:
        return False


def unreadable_reason(path: str | os.PathLike, parameter: str = "INPUT") -> str | None:
    """Why `path` cannot be read as a raster (a missing path, a folder, an empty file, a file GDAL
    does not read as a raster), in one sentence naming `parameter`; None when it can."""
    if Path(path).is_dir():
        return f"{parameter} '{path}' is a folder; choose a raster file."
    try:
        RasterReader(path, parameter).close()
    except InputError as exc:
        return str(exc)
    return None


def files_gdal_reads(path: str | os.PathLike) -> list[Path]:
    """The files GDAL reads for the raster `path`, by its own GetFileList: the raster, every header
    form (an ENVI scene.hdr or scene.img.hdr), existing sidecars and, for a VRT, the files it
    references, followed through a VRT of a VRT; [] when GDAL does not open `path` as a raster."""
    found, pending = [], [str(path)]
    while pending:
        current = pending.pop()
        try:
            with gdal_env(), warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(current) as dataset:
                    files, is_vrt = [Path(f) for f in dataset.files], dataset.driver == "VRT"
        except (RasterioIOError, OSError):
            continue
        for file in files:
            if file not in found:
                found.append(file)
                if is_vrt and str(file) != current:
                    pending.append(str(file))
    return found


def _is_nodata(raw: np.ndarray, nodata: float) -> np.ndarray:
    return np.isnan(raw) if math.isnan(nodata) else raw == nodata


def _envi_band_items(ds) -> list[dict]:
    """Per-band wavelength, fwhm, bbl and units from an ENVI header's lists ({} for other formats)."""
    items = [{} for _ in range(ds.count)]
    if "ENVI" not in ds.tag_namespaces():
        return items
    header = ds.tags(ns="ENVI")
    for key in ("wavelength", "fwhm", "bbl"):
        text = header.get(key, header.get(f"_{key}"))  # GDAL prefixes '_' when the key clashes
        values = [v.strip() for v in text.strip().strip("{}").split(",")] if text else []
        if len(values) == ds.count:
            for band, value in enumerate(values):
                items[band][key] = value
    units = header.get("wavelength_units")
    if units:
        for item in items:
            item["wavelength_units"] = units
    return items


def _to_float(text) -> float | None:
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def _unit_factor_um(tags: dict) -> float | None:
    return _UNIT_TO_UM.get(tags.get("wavelength_units", "").strip().lower())


class RasterWriter:
    """Write a super-resolved raster window by window; atomic on success, removed on failure.

    Use as a context manager: leaving the block with an exception (including Cancelled) deletes
    the temporary file, leaving normally moves it to `path`.

    Args:
        path: destination GeoTIFF.
        like: the reader of the input raster; grid, CRS, metadata and encoding come from it.
        scale: output pixel size = input pixel size / scale (an int, or a Fraction such as 1/3).
        region: the input window the output covers (default: the whole raster).
        bands: 0-based input bands written, in this order (default: all).
        output_float: write float32 reflectance instead of the input's encoding.
        nodata: the output's nodata value; default the input's. Intermediate float files use NaN,
            which no reflectance can collide with.
        driver: "GTiff" (tiled, compressed with a predictor), "COG" (cloud-optimised GeoTIFF with
            overviews) or "ENVI" (band-sequential with a complete header); None picks ENVI for
            .img/.bsq/.dat paths and GTiff otherwise.
    """

    def __init__(self, path: str | os.PathLike, like: RasterReader, scale: int | Fraction, region: Region | None = None,
                 bands: list[int] | None = None, output_float: bool = False, nodata: float | None | str = "input",
                 driver: str | None = None, inputs: list | None = None, parameter: str = "OUTPUT",
                 log=None):
        self.path = Path(path)
        self.like = like
        self.bands = list(range(like.count)) if bands is None else list(bands)
        region = region or Region(0, 0, like.height, like.width)
        self.width = max(1, int(round(region.width * scale)))
        self.height = max(1, int(round(region.height * scale)))
        self.transform = scaled_transform(like.transform, region, scale)
        self.output_float = output_float
        self.dtype = np.dtype("float32") if output_float else like.dtype
        self.nodata = like.nodata if nodata == "input" else nodata
        if self.nodata is not None and not _representable(self.nodata, self.dtype):
            self.nodata = None
        if self.nodata is None and self.dtype.kind == "f":
            self.nodata = math.nan  # declared, so that every reader sees the invalid pixels as nodata
        self.driver = output_driver(self.path, driver)
        self.inputs = [(like.parameter, like.path), *(inputs or [])]
        self.parameter = parameter
        self.log = log
        self._dataset = None
        self._gdal_errors: list[str] = []

    def __enter__(self):
        like = self.like
        profile = dict(width=self.width, height=self.height, count=len(self.bands), dtype=self.dtype.name,
                       crs=like.crs, transform=self.transform, nodata=self.nodata)
        if self.driver == "ENVI":
            profile.update(driver="ENVI", interleave="bsq")
        else:
            profile.update(driver="GTiff", compress="deflate", predictor=3 if self.dtype.kind == "f" else 2,
                           tiled=True, blockxsize=256, blockysize=256,
                           interleave="pixel" if len(self.bands) <= 4 else "band", BIGTIFF="IF_SAFER")
        self._output = atomic_path(self.path, self.inputs, self.parameter, verify=self._verify, with_sidecars=True,
                                   log=self.log)
        self.tmp_path = self._output.__enter__()
        self._env = gdal_env()
        self._env.__enter__()
        try:
            with self._gdal_errors_fatal():
                self._dataset = rasterio.open(self.tmp_path, "w", **profile)
                self._copy_metadata()
                if self.driver == "ENVI":
                    self._write_envi_header_items()
        except BaseException as exc:
            self._finish(exc)
            raise
        return self

    @contextmanager
    def _gdal_errors_fatal(self):
        """Collect the GDAL errors of the enclosed calls in this thread; raise the first one.

        GDAL reports a failed block write (a full disk, say) through its error handler only: the
        block cache defers it, and closing a dataset returns no status, so rasterio raises nothing.
        """
        from osgeo import gdal

        def collect(level, _number, message):
            if level >= gdal.CE_Failure:
                self._gdal_errors.append(str(message))

        gdal.PushErrorHandler(collect)
        try:
            yield
        except rasterio.errors.RasterioError as exc:  # newer GDALs raise where older ones only report
            raise write_error(self.path, str(exc).splitlines()[0] if str(exc) else "a GDAL error",
                              self.parameter) from exc
        finally:
            gdal.PopErrorHandler()
        if self._gdal_errors:
            raise write_error(self.path, self._gdal_errors[0], self.parameter)

    def _finish(self, exc: BaseException | None):
        """Close the dataset and leave the atomic output: moved into place, or discarded after `exc`
        (the caller's error, or one of closing)."""
        own = None
        try:
            if self._dataset is not None:
                dataset, self._dataset = self._dataset, None
                with self._gdal_errors_fatal():
                    dataset.close()
                if exc is None and self.driver == "COG":  # only from a GeoTIFF closed without an error
                    with self._gdal_errors_fatal():
                        self._convert_to_cog()
        except BaseException as error:
            own = error if exc is None else None
            exc = exc or error
        finally:
            self._env.__exit__(None, None, None)
        if exc is None:
            self._output.__exit__(None, None, None)
            return
        self._output.__exit__(type(exc), exc, exc.__traceback__)
        if own is not None:
            raise own

    def _verify(self, tmp: Path):
        """Re-open the finished file and read its directory and last block of every band; an ENVI
        header names the destination, not the temporary file."""
        try:
            with rasterio.open(tmp) as ds:
                if (ds.width, ds.height, ds.count) != (self.width, self.height, len(self.bands)):
                    raise write_error(self.path, "the file read back has another size", self.parameter)
                block_rows, block_cols = ds.block_shapes[0]
                row0, col0 = (ds.height - 1) // block_rows * block_rows, (ds.width - 1) // block_cols * block_cols
                ds.read(window=Window(col0, row0, ds.width - col0, ds.height - row0))
        except rasterio.errors.RasterioError as exc:
            raise write_error(self.path, str(exc), self.parameter) from exc
        if self.driver == "ENVI":
            header = tmp.with_suffix(".hdr")
            text = header.read_text() if header.exists() else ""
            if "samples" not in text:
                raise write_error(self.path, "its ENVI header is empty", self.parameter)
            header.write_text(text.replace(str(tmp), str(self.path)).replace(tmp.name, self.path.name))

    def _write_envi_header_items(self):
        """Per-band lists of the ENVI header: wavelength, fwhm, bbl, units and the scale factor."""
        tags = [self.like.band_tags(b) for b in self.bands]
        items = {}
        for key in ("wavelength", "fwhm", "bbl"):
            values = [t.get(key) for t in tags]
            if all(v is not None for v in values):
                items[key] = "{" + ", ".join(str(v) for v in values) + "}"
        units = {t.get("wavelength_units") for t in tags} - {None}
        if len(units) == 1:
            items["wavelength_units"] = units.pop()
        scales = {float(self.like.scales[b]) for b in self.bands}
        if not self.output_float and not self.like.scale_assumed and len(scales) == 1 and scales != {1.0}:
            items["reflectance_scale_factor"] = repr(1.0 / scales.pop())
        if items:
            self._dataset.update_tags(ns="ENVI", **items)

    def _copy_metadata(self):
        like, ds = self.like, self._dataset
        for domain in DATASET_DOMAINS:
            tags = like.dataset.tags(ns=domain) if domain else like.dataset.tags()
            tags = {k: v for k, v in tags.items() if k != "AREA_OR_POINT"}
            if tags:
                ds.update_tags(ns=domain, **tags) if domain else ds.update_tags(**tags)
        for out_band, band in enumerate(self.bands, start=1):
            description = like.descriptions[band]
            if description:
                ds.set_band_description(out_band, description)
            # Statistics of the input describe other pixels (and maybe another data type).
            default = {k: v for k, v in like.band_tags(band).items() if not k.startswith("STATISTICS_")}
            if default:
                ds.update_tags(out_band, **default)
            imagery = dict(like.band_tags(band, "IMAGERY"))
            factor = _unit_factor_um(default)
            if "CENTRAL_WAVELENGTH_UM" not in imagery and factor and _to_float(default.get("wavelength")) is not None:
                imagery["CENTRAL_WAVELENGTH_UM"] = repr(_to_float(default["wavelength"]) * factor)
                if _to_float(default.get("fwhm")) is not None:
                    imagery["FWHM_UM"] = repr(_to_float(default["fwhm"]) * factor)
            if imagery:
                ds.update_tags(out_band, ns="IMAGERY", **imagery)
        if not self.output_float:
            # The input's encoding, written as GDAL scale/offset; not the assumed x10000 of an
            # integer raster without one.
            if not like.scale_assumed:
                ds.scales = tuple(float(like.scales[b]) for b in self.bands)
                ds.offsets = tuple(float(like.offsets[b]) for b in self.bands)

    def write(self, reflectance: np.ndarray, valid: np.ndarray, row0: int, col0: int,
              bands: list[int] | None = None):
        """Write a (B,h,w) block of reflectance at output pixel (row0, col0); invalid pixels become nodata.

        Args:
            bands: positions (0-based) of the block's bands among the output's bands (default all).
        """
        self.write_encoded(self.encode(reflectance, valid, bands), row0, col0, bands)

    @property
    def encoded_dtype(self) -> np.dtype:
        """Data type of the blocks `encode` returns."""
        return np.dtype(np.float32) if self.output_float else self.dtype

    def encode(self, reflectance: np.ndarray, valid: np.ndarray, bands: list[int] | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """A (B,h,w) block of reflectance in the output's encoding (data type, scale, nodata), for
        `write_encoded`, in `out` if given (of `encoded_dtype`). A pipeline encodes before queueing a
        block for a background write: the encoded block is the smallest form of it (2 bytes a pixel
        for 16-bit output, against 5 for float32 reflectance and its mask).

        Band by band, so the float64 intermediates stay the size of one band.
        """
        positions = self._positions(bands)
        data = np.empty(reflectance.shape, self.encoded_dtype) if out is None else out
        for k, position in enumerate(positions):
            data[k] = self._encode_band(reflectance[k], valid[k], self.bands[position])
        return data

    def write_encoded(self, data: np.ndarray, row0: int, col0: int, bands: list[int] | None = None):
        """Write a block returned by `encode` at output pixel (row0, col0)."""
        with self._gdal_errors_fatal():
            self._dataset.write(data, indexes=[p + 1 for p in self._positions(bands)],
                                window=Window(col0, row0, data.shape[2], data.shape[1]))

    def copy_encoded(self, path: str | os.PathLike, row0: int, rows: int = COPY_ROWS, bands: int = COPY_BANDS):
        """Copy every pixel of a raster written by a writer like this one (same width and bands,
        already encoded) to output row `row0`, `rows` rows of `bands` bands at a time."""
        with rasterio.open(path) as src:
            if (src.width, src.count) != (self.width, len(self.bands)):
                raise RuntimeError(f"{path} does not fit {self.path}")
            for row in range(0, src.height, rows):
                window = Window(0, row, src.width, min(rows, src.height - row))
                for first in range(0, src.count, bands):
                    positions = list(range(first, min(first + bands, src.count)))
                    self.write_encoded(src.read([p + 1 for p in positions], window=window), row0 + row, 0, positions)

    def _positions(self, bands: list[int] | None) -> list[int]:
        return list(range(len(self.bands))) if bands is None else list(bands)

    def _encode_band(self, reflectance: np.ndarray, valid: np.ndarray, input_band: int) -> np.ndarray:
        if self.output_float:
            data = reflectance.astype(np.float32)
        else:
            raw = (reflectance.astype(np.float64) - self.like.offsets[input_band]) / self.like.scales[input_band]
            if self.dtype.kind in "iu":
                info = np.iinfo(self.dtype)
                raw = np.clip(np.rint(raw), info.min, info.max)
                if self.nodata is not None:
                    # A valid pixel must never be mistaken for nodata: nudge it by one count.
                    collide = raw == self.nodata
                    raw[collide] += 1 if self.nodata < info.max else -1
            data = raw.astype(self.dtype)
        if self.nodata is not None:
            data[~valid] = self.nodata
        elif data.dtype.kind == "f":
            data[~valid] = np.nan  # invalid input without a nodata value can only be NaN
        return data

    def __exit__(self, exc_type, exc, tb):
        self._finish(exc)
        return False

    def _convert_to_cog(self):
        """Rewrite the finished tiled GeoTIFF as a COG (with overviews) under the temporary name."""
        from osgeo import gdal

        staging = self.tmp_path.with_name(self.tmp_path.name + ".cog.tif")
        predictor = "FLOATING_POINT" if self.dtype.kind == "f" else "STANDARD"
        try:
            done = gdal.Translate(str(staging), str(self.tmp_path), format="COG",
                                  creationOptions=["COMPRESS=DEFLATE", f"PREDICTOR={predictor}",
                                                   "BIGTIFF=IF_SAFER", "OVERVIEWS=AUTO"])
            if done is None:
                # The COG is a second copy of the GeoTIFF beside it: it needs about as much space.
                raise write_error(self.path, gdal.GetLastErrorMsg() or "GDAL's COG driver failed", self.parameter,
                                  needed_bytes=self.tmp_path.stat().st_size)
            done = None
            # The COG driver drops band metadata domains other than the default one; keep IMAGERY in
            # the .aux.xml sidecar, since updating the COG in place would break its layout.
            source, target = gdal.Open(str(self.tmp_path)), gdal.Open(str(staging))
            for band in range(1, source.RasterCount + 1):
                imagery = source.GetRasterBand(band).GetMetadata("IMAGERY")
                if imagery:
                    target.GetRasterBand(band).SetMetadata(imagery, "IMAGERY")
            source = target = None
            os.replace(staging, self.tmp_path)
            if Path(f"{staging}.aux.xml").exists():
                os.replace(f"{staging}.aux.xml", f"{self.tmp_path}.aux.xml")
        finally:
            remove_quietly(staging)
            remove_quietly(Path(f"{staging}.aux.xml"))


def output_driver(path: str | os.PathLike, driver: str | None = None) -> str:
    """The GDAL driver that writes `path`: `driver`, or ENVI for an ENVI suffix and GTiff otherwise.

    Raises InputError for an unknown driver, or COG asked for an ENVI file name; stages call it
    before their work so that the error does not come at the end."""
    envi = Path(path).suffix.lower() in ENVI_SUFFIXES
    driver = driver or ("ENVI" if envi else "GTiff")
    if driver not in DRIVERS:
        raise InputError(f"Output format '{driver}' is not supported; use one of {', '.join(DRIVERS)}.")
    if driver == "COG" and envi:
        raise InputError(f"OUTPUT '{Path(path).name}' names an ENVI file but COG was asked for: "
                         "use a .tif name for a Cloud-Optimised GeoTIFF.")
    return driver


def scaled_transform(transform: Affine, region: Region, scale: int | Fraction) -> Affine:
    """Geotransform of `region` with pixels `scale` times smaller (a Fraction below 1 makes them larger).

    Pixel sizes are multiplied by the scale's denominator and divided by its numerator, never
    multiplied or divided by a rounded reciprocal: x3 of 29.7 m is exactly 9.9 m (29.7 x (1/3) would
    give 9.899999999999999 m), and 1/3 of it 89.1 m (29.7 / 0.333... would give 89.10000000000001 m).
    """
    scale = Fraction(scale)
    a, b, c, d, e, f = transform[:6]
    x0 = c + a * region.col0 + b * region.row0 if (region.col0 or region.row0) else c
    y0 = f + d * region.col0 + e * region.row0 if (region.col0 or region.row0) else f
    up, down = scale.denominator, scale.numerator
    return Affine(a * up / down, b * up / down, x0, d * up / down, e * up / down, y0)


def grids_match(transform: Affine, other: Affine, width: int, height: int) -> bool:
    """Whether two geotransforms put the pixel corners of a width x height grid in the same places.

    Within GRID_TOLERANCE pixels of `transform` everywhere in the grid: the largest difference of
    two affine maps over a rectangle is at one of its corners, so those four are checked.
    """
    pixel = max(abs(transform.a), abs(transform.b), abs(transform.d), abs(transform.e))
    for col, row in ((0, 0), (width, 0), (0, height), (width, height)):
        x, y = transform * (col, row)
        x_other, y_other = other * (col, row)
        if max(abs(x - x_other), abs(y - y_other)) > GRID_TOLERANCE * pixel:
            return False
    return True


def write_error(path: Path, detail: str, parameter: str = "OUTPUT", needed_bytes: int = 1) -> InputError:
    """The error of a failed write, in one sentence that says what to do; `needed_bytes` is the
    space the write needed, below which the disk counts as full."""
    if "no space left" in detail.lower() or _disk_full(path.parent, needed_bytes):
        return InputError(f"{parameter} '{path}' could not be written: the disk is full; free some space or "
                          "choose another folder.")
    return InputError(f"{parameter} '{path}' could not be written ({detail}); check the disk or choose another "
                      "folder.")


def _representable(value: float, dtype: np.dtype) -> bool:
    if dtype.kind == "f":
        return True
    if math.isnan(value):
        return False
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max
