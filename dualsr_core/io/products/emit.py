"""EMIT L2A surface reflectance (`EMIT_L2A_RFL_*.nc`, netCDF-4) read with h5py, orthorectified
window by window through the product's geometry lookup table (GLT).

- Pixels: `reflectance`, float32 downtrack x crosstrack x bands in sensor geometry, fill -9999
  (its `_FillValue`).
- Map grid: the `geotransform` (GDAL order) and `spatial_ref` (WKT) attributes of the file; the
  grid is the shape of `location/glt_x` and `location/glt_y`. Map pixel (row, col) takes sensor
  pixel (glt_y - 1, glt_x - 1), the nearest neighbour as the lookup table defines it; a 0 in either
  is no data (written as the fill). The GLT is 1-based; a negative entry (in the ENVI GLT
  convention, a map pixel filled from its nearest sensor pixel) names that pixel by its absolute value.
- Spectra: `sensor_band_parameters/wavelengths` and `fwhm` (nanometres, increasing); bad bands are
  those with `sensor_band_parameters/good_wavelengths` = 0 (the water-vapour bands).
"""
from __future__ import annotations

import numpy as np
import rasterio.crs
import rasterio.errors
from rasterio.transform import Affine

from ...tools.tiling import Region
from .base import Hdf5ProductReader, band_name, decimal, product_error, sorted_subset

REFLECTANCE = "reflectance"
GLT = ("location/glt_x", "location/glt_y")
BANDS = "sensor_band_parameters"
FILL = -9999.0
# A window is split while the sensor pixels it needs span a box larger than this many times its
# own area (plus a margin): the box is what is read, and a thin diagonal swath makes it large.
BOX_RATIO = 4
BOX_MARGIN = 64 * 64
# and no box read holds more than this many bytes: the box is read in groups of bands that fit, and
# a window whose box does not fit even one band is split as well (a scene-sized window, a training
# scene or a large tile, must not read the sensor cube at once).
BOX_BYTES = 64 * 2**20
GLT_CHECK_ROWS = 1024  # rows of the GLT checked at a time when the product is opened


class EmitL2AReader(Hdf5ProductReader):
    """An EMIT L2A reflectance `.nc` file, on its map grid."""

    product = "an EMIT L2A reflectance product"
    label = "EMIT L2A"
    file_kind = "a netCDF-4 file"

    def _describe(self):
        file = self.file
        needed = [REFLECTANCE, *GLT, f"{BANDS}/wavelengths", f"{BANDS}/fwhm"]
        missing = [name for name in needed if name not in file]
        missing += [f"the attribute {name}" for name in ("geotransform", "spatial_ref") if name not in file.attrs]
        if missing:
            raise product_error(self.parameter, self.path, self.product, f"it has no {', '.join(missing)}")
        self.cube = file[REFLECTANCE]
        self.glt_x, self.glt_y = file[GLT[0]], file[GLT[1]]
        if self.cube.ndim != 3 or self.glt_x.ndim != 2 or self.glt_x.shape != self.glt_y.shape:
            raise product_error(self.parameter, self.path, self.product,
                                "its reflectance is not downtrack x crosstrack x bands or its GLT arrays differ "
                                "in shape")
        self.height, self.width = self.glt_x.shape
        count = self.cube.shape[2]
        self.wavelengths_nm = [decimal(w) for w in file[f"{BANDS}/wavelengths"][()]]
        self.fwhm_nm = [decimal(w) for w in file[f"{BANDS}/fwhm"][()]]
        good = file[f"{BANDS}/good_wavelengths"][()] if f"{BANDS}/good_wavelengths" in file else np.ones(count)
        if not len(self.wavelengths_nm) == len(self.fwhm_nm) == len(good) == count:
            raise product_error(self.parameter, self.path, self.product,
                                f"its {BANDS} do not give one value for each of its {count} bands")
        self.flagged = [int(g) == 0 for g in good]
        self.band_names = [band_name(b + 1, w) for b, w in enumerate(self.wavelengths_nm)]
        self.dtype = np.dtype(self.cube.dtype)
        fill = self.cube.attrs.get("_FillValue")
        self.nodata = float(np.asarray(fill).ravel()[0]) if fill is not None else FILL
        self.scales, self.offsets = np.ones(count), np.zeros(count)
        self.scale_source = "EMIT reflectance (float)"
        try:
            geotransform = [float(v) for v in np.asarray(file.attrs["geotransform"]).ravel()]
        except (TypeError, ValueError):
            geotransform = []
        if len(geotransform) != 6 or not np.isfinite(geotransform).all():
            raise product_error(self.parameter, self.path, self.product, "its geotransform is not six numbers")
        self.transform = Affine.from_gdal(*geotransform)
        wkt = file.attrs["spatial_ref"]
        try:
            self.crs = rasterio.crs.CRS.from_wkt(wkt.decode(errors="replace") if isinstance(wkt, bytes) else str(wkt))
        except rasterio.errors.CRSError as exc:
            raise product_error(self.parameter, self.path, self.product, f"its spatial_ref is no CRS ({exc})") from None
        self._check_glt()

    def _check_glt(self):
        """Refuse a GLT entry beyond the reflectance's rows or columns, once, here: a read would fail
        on it mid-run. Read in strips of rows (the GLT is as large as the map grid)."""
        limits = {"glt_y": self.cube.shape[0], "glt_x": self.cube.shape[1]}
        for row0 in range(0, self.height, GLT_CHECK_ROWS):
            for name, glt in (("glt_y", self.glt_y), ("glt_x", self.glt_x)):
                strip = np.abs(glt[row0:row0 + GLT_CHECK_ROWS].astype(np.int64))
                if strip.size and int(strip.max()) > limits[name]:
                    raise product_error(self.parameter, self.path, self.product,
                                        f"its GLT names sensor pixels outside its reflectance ({name} up to "
                                        f"{int(strip.max())} where the reflectance has {limits[name]} "
                                        f"{'rows' if name == 'glt_y' else 'columns'})")

    def _read_raw(self, region: Region, bands: list[int]) -> np.ndarray:
        out = np.full((len(bands), region.height, region.width), self.nodata, dtype=self.dtype)
        rows, cols = slice(region.row0, region.row0 + region.height), slice(region.col0, region.col0 + region.width)
        glt_x, glt_y = self.glt_x[rows, cols], self.glt_y[rows, cols]
        stored, position = sorted_subset(bands)
        self._gather(out, np.abs(glt_y).astype(np.int64) - 1, np.abs(glt_x).astype(np.int64) - 1,
                     (glt_x != 0) & (glt_y != 0), stored, position)
        return out

    def _gather(self, out: np.ndarray, source_rows: np.ndarray, source_cols: np.ndarray, valid: np.ndarray,
                stored: list[int], position: np.ndarray):
        """Fill `out` (B,h,w) where `valid` from the sensor pixels (source_rows, source_cols): read
        their bounding box in groups of bands of at most BOX_BYTES, or split the window in two while
        that box is too large for its area or for one band within BOX_BYTES."""
        if not valid.any():
            return
        r, c = source_rows[valid], source_cols[valid]
        r0, r1, c0, c1 = int(r.min()), int(r.max()) + 1, int(c.min()), int(c.max()) + 1
        height, width = valid.shape
        box_pixels = (r1 - r0) * (c1 - c0)
        band_bytes = max(box_pixels, len(r)) * self.dtype.itemsize  # one band of the box, or of its pixels taken
        if (box_pixels > BOX_RATIO * height * width + BOX_MARGIN or band_bytes > BOX_BYTES) and height * width > 1:
            if height >= width:
                half = height // 2
                parts = (np.s_[:half, :], np.s_[half:, :])
            else:
                half = width // 2
                parts = (np.s_[:, :half], np.s_[:, half:])
            for part in parts:
                self._gather(out[(slice(None), *part)], source_rows[part], source_cols[part], valid[part],
                             stored, position)
            return
        group = max(1, BOX_BYTES // band_bytes)
        at = np.nonzero(valid)  # the same order as r and c
        for first in range(0, len(stored), group):
            box = self.cube[r0:r1, c0:c1, stored[first:first + group]]  # rows x columns x bands
            taken = box[r - r0, c - c0]  # pixels x bands
            del box
            for k in np.flatnonzero((position >= first) & (position < first + group)):
                out[(k, *at)] = taken[:, position[k] - first]  # band by band: no copy of the whole group

