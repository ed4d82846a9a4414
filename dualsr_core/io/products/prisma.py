"""PRISMA L2D (`PRS_L2D_*.he5`, HDF-EOS5) read with h5py, window by window.

- Pixels: `HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/VNIR_Cube` and `SWIR_Cube`, uint16 stored rows x
  bands x columns (GDAL's HDF5 driver would take the rows for bands). PRISMA stores both cubes in
  decreasing wavelength; this reader presents the bands of both in increasing wavelength, VNIR and
  SWIR interleaved in their overlap (about 920 to 1010 nm, which PRISMA does not trim), then the
  unused ones.
- Wavelengths and FWHM: the file attributes `List_Cw_Vnir`, `List_Fwhm_Vnir`, `List_Cw_Swir`,
  `List_Fwhm_Swir` (nanometres); a centre wavelength of 0 marks an unused band: it is kept, last,
  flagged bad and without a wavelength.
- Reflectance = `L2ScaleVnirMin` + stored x (`L2ScaleVnirMax` - `L2ScaleVnirMin`) / 65535 (SWIR
  alike). A pixel whose used bands all store 0 is no data: PRISMA fills the area outside the swath
  with it (EnMAP-Box masks the same pixels). A 0 in some bands of a pixel only is a value: dark
  bands (water absorption) store 0 legitimately. The unused bands hold no data.
- Grid: the UTM corners `Product_ULcorner_easting`/`_northing` and `Product_LRcorner_easting`/
  `_northing` are the centres of the corner pixels (as EnMAP-Box's importer reads them); the pixel
  size is their distance over the pixel count less one; the CRS is `Epsg_Code`.
"""
from __future__ import annotations

import numpy as np
import rasterio.crs
from rasterio.transform import Affine

from ...tools.tiling import Region
from .base import Hdf5ProductReader, band_name, decimal, product_error, sorted_subset

FIELDS = "HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields"
CUBES = {"VNIR": "VNIR_Cube", "SWIR": "SWIR_Cube"}
CORNERS = ("Product_ULcorner_easting", "Product_ULcorner_northing", "Product_LRcorner_easting",
           "Product_LRcorner_northing")
STORED_MAX = 65535
NODATA = 0


class PrismaL2DReader(Hdf5ProductReader):
    """A PRISMA L2D `.he5` file."""

    product = "a PRISMA L2D product"
    _inside: tuple[Region, np.ndarray] | None = None  # the last window's swath mask
    label = "PRISMA L2D"

    def _describe(self):
        attrs = self.file.attrs
        missing = [f"{FIELDS}/{name}" for name in CUBES.values() if f"{FIELDS}/{name}" not in self.file]
        needed = [f"List_Cw_{d.title()}" for d in CUBES] + [f"List_Fwhm_{d.title()}" for d in CUBES] \
            + [f"L2Scale{d.title()}{end}" for d in CUBES for end in ("Min", "Max")] + [*CORNERS, "Epsg_Code"]
        missing += [f"the attribute {name}" for name in needed if name not in attrs]
        if missing:
            raise product_error(self.parameter, self.path, self.product, f"it has no {', '.join(missing)}")
        self.cubes = {d: self.file[f"{FIELDS}/{name}"] for d, name in CUBES.items()}
        shapes = {d: cube.shape for d, cube in self.cubes.items()}
        (rows, _, cols), (swir_rows, _, swir_cols) = shapes["VNIR"], shapes["SWIR"]
        if any(len(s) != 3 for s in shapes.values()) or (rows, cols) != (swir_rows, swir_cols):
            raise product_error(self.parameter, self.path, self.product,
                                f"its cubes are not rows x bands x columns of one grid ({shapes})")
        self.height, self.width = rows, cols
        self.dtype = np.dtype(self.cubes["VNIR"].dtype)
        self.nodata = NODATA
        # (detector, stored band index, wavelength, fwhm, scale, offset) of every stored band.
        stored = []
        for detector, cube in self.cubes.items():
            name = detector.title()
            centres = [decimal(v) for v in np.asarray(attrs[f"List_Cw_{name}"]).ravel()]
            widths = [decimal(v) for v in np.asarray(attrs[f"List_Fwhm_{name}"]).ravel()]
            if len(centres) != cube.shape[1] or len(widths) != cube.shape[1]:
                raise product_error(self.parameter, self.path, self.product,
                                    f"List_Cw_{name} or List_Fwhm_{name} does not give one value for each of the "
                                    f"{cube.shape[1]} bands of {CUBES[detector]}")
            low = float(np.asarray(attrs[f"L2Scale{name}Min"]).ravel()[0])
            high = float(np.asarray(attrs[f"L2Scale{name}Max"]).ravel()[0])
            stored += [(detector, k, centres[k], widths[k], (high - low) / STORED_MAX, low)
                       for k in range(cube.shape[1])]
        used = sorted((s for s in stored if s[2] != 0), key=lambda s: s[2])
        unused = [s for s in stored if s[2] == 0]
        self.bands = [(s[0], s[1]) for s in used + unused]
        self.wavelengths_nm = [s[2] for s in used] + [None] * len(unused)
        self.fwhm_nm = [s[3] for s in used] + [None] * len(unused)
        self.flagged = [False] * len(used) + [True] * len(unused)
        self.used = list(range(len(used)))  # the bands with a wavelength, first in this reader's order
        self.scales = np.array([s[4] for s in used + unused], dtype=np.float64)
        self.offsets = np.array([s[5] for s in used + unused], dtype=np.float64)
        self.scale_source = "PRISMA L2ScaleVnir/Swir Min and Max over 65535"
        self.band_names = [f"{d} {band_name(k + 1, w)}" for (d, k), w in zip(self.bands, self.wavelengths_nm,
                                                                             strict=True)]
        self._georeference(attrs)

    def _georeference(self, attrs):
        ul_x, ul_y, lr_x, lr_y = (float(np.asarray(attrs[name]).ravel()[0]) for name in CORNERS)
        if self.width < 2 or self.height < 2:
            raise product_error(self.parameter, self.path, self.product, "its cubes are less than 2 x 2 pixels")
        x_size = (lr_x - ul_x) / (self.width - 1)
        y_size = (ul_y - lr_y) / (self.height - 1)
        self.transform = Affine(x_size, 0.0, ul_x - x_size / 2, 0.0, -y_size, ul_y + y_size / 2)
        epsg = int(np.asarray(attrs["Epsg_Code"]).ravel()[0])
        try:
            self.crs = rasterio.crs.CRS.from_epsg(epsg)
        except rasterio.errors.CRSError as exc:
            raise product_error(self.parameter, self.path, self.product, f"its Epsg_Code {epsg} is no CRS") from exc

    def _read_raw(self, region: Region, bands: list[int]) -> np.ndarray:
        out = np.empty((len(bands), region.height, region.width), dtype=self.dtype)
        rows, cols = slice(region.row0, region.row0 + region.height), slice(region.col0, region.col0 + region.width)
        for detector, cube in self.cubes.items():
            mine = [k for k, b in enumerate(bands) if self.bands[b][0] == detector]
            if not mine:
                continue
            stored, position = sorted_subset([self.bands[bands[k]][1] for k in mine])
            block = cube[rows, stored, cols]  # rows x bands x columns
            out[mine] = np.transpose(block, (1, 0, 2))[position]
        return out

    def _validity(self, region: Region, bands: list[int], raw: np.ndarray) -> np.ndarray:
        """A pixel of a used band is valid unless every used band of it stores 0 (outside the
        swath): from `raw` when it holds them all, else by one read of all of them in the window,
        kept for the next read of the same window (a band-by-band schedule reads it many times)."""
        used = set(self.used)
        if used <= set(bands):
            inside = np.zeros(raw.shape[1:], dtype=bool)
            for k in {bands.index(b) for b in used}:
                inside |= raw[k] != NODATA
        elif self._inside is not None and self._inside[0] == region:
            inside = self._inside[1]
        else:
            inside = (self._read_raw(region, self.used) != NODATA).any(axis=0)
        self._inside = (region, inside)
        valid = np.empty(raw.shape, dtype=bool)
        for k, band in enumerate(bands):
            valid[k] = inside if band in used else raw[k] != NODATA
        return valid

