"""Small products in each mission's published layout (names, groups, attributes, data types,
orientation, scaling), written by the tests themselves: no real product fits the repository."""
from __future__ import annotations

import zipfile
from pathlib import Path

import h5py
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

ENMAP_ID = "ENMAP01-____L2A-DT0000001280_20220609T083128Z_001_V010110_20221214T113317Z"
DESIS_ID = "DESIS-HSI-L2A-DT0483531728_001-20200702T121839-V0213"
PRISMA_NAME = "PRS_L2D_STD_20201107101404_20201107101408_0001.he5"
EMIT_NAME = "EMIT_L2A_RFL_001_20220815T042838_2222703_003.nc"

# EnMAP: bands in the file by wavelength, VNIR (V) and SWIR (S) interleaved in the overlap.
ENMAP_BANDS = [(450.1, "V"), (550.2, "V"), (650.3, "V"), (850.4, "V"), (910.5, "S"), (940.6, "V"), (960.7, "S"),
               (990.8, "V"), (1100.9, "S"), (1600.0, "S"), (2200.1, "S"), (2300.2, "S")]
ENMAP_FWHM = [6.5 + 0.25 * b for b in range(len(ENMAP_BANDS))]
ENMAP_GAINS = [1e-4] * 11 + [2e-4]
ENMAP_OFFSETS = [0.0] * 10 + [0.01, 0.0]
ENMAP_NO_DATA_BAND = 9  # 0-based: 1600 nm, all fill and listed with EnMAP's no-data statistics
ENMAP_FILL = -32768
ENMAP_ORIGIN = (364095.0, 5809965.0)


def enmap_pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    """int16 reflectance x 10000 with the fill in one corner and in the no-data band."""
    rng = np.random.default_rng(seed)
    data = rng.integers(200, 6000, (len(ENMAP_BANDS), height, width)).astype(np.int16)
    data[:, :3, :2] = ENMAP_FILL
    data[ENMAP_NO_DATA_BAND] = ENMAP_FILL
    return data


def write_enmap_xml(path: Path, wavelengths=None, omit: str | None = None):
    """A METADATA.XML with EnMAP's element names; `omit` drops every element of that name."""
    wavelengths = wavelengths or [w for w, _ in ENMAP_BANDS]
    vnir = [str(b + 1) for b, (_, d) in enumerate(ENMAP_BANDS) if d == "V"]
    swir = [str(b + 1) for b, (_, d) in enumerate(ENMAP_BANDS) if d == "S"]
    characterisation = "".join(
        f'<bandID number="{b + 1}"><wavelengthCenterOfBand>{w}</wavelengthCenterOfBand>'
        f"<FWHMOfBand>{ENMAP_FWHM[b]}</FWHMOfBand><GainOfBand>{ENMAP_GAINS[b]}</GainOfBand>"
        f"<OffsetOfBand>{ENMAP_OFFSETS[b]}</OffsetOfBand></bandID>" for b, w in enumerate(wavelengths))
    statistics = "".join(
        f'<bandID number="{b + 1}"><min>-32768</min><max>9000</max>'
        + ("<mean>-1000000</mean><stdDeviation>0</stdDeviation>" if b == ENMAP_NO_DATA_BAND else
           "<mean>1234.5</mean><stdDeviation>321.0</stdDeviation>") + "</bandID>" for b in range(len(wavelengths)))
    text = ('<?xml version="1.0" encoding="UTF-8"?><level_X xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<metadata><schema><processingLevel>L2A</processingLevel></schema><name>{ENMAP_ID}</name></metadata>"
            f"<specific><bandCharacterisation>{characterisation}</bandCharacterisation>"
            f"<vnirProductQuality><expectedChannelsList>{','.join(vnir)}</expectedChannelsList></vnirProductQuality>"
            f"<swirProductQuality><expectedChannelsList>{','.join(swir)}</expectedChannelsList></swirProductQuality>"
            f"</specific><product><bandStatistics>{statistics}</bandStatistics></product></level_X>")
    if omit:
        import re

        text = re.sub(rf"<{omit}>[^<]*</{omit}>", "", text)
    path.write_text(text)
    return path


def write_geotiff(path: Path, data: np.ndarray, nodata, transform, crs="EPSG:32633"):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, interleave="band",
                       tiled=True, blockxsize=16, blockysize=16, compress="deflate") as ds:
        ds.write(data)
    return path


def write_enmap(folder: Path, height: int = 24, width: int = 20, seed: int = 0, nodata_tag: bool = True) -> Path:
    """An EnMAP L2A product folder as delivered (metadata, spectral image, a quality layer)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = enmap_pixels(height, width, seed)
    transform = from_origin(*ENMAP_ORIGIN, 30.0, 30.0)
    write_geotiff(folder / f"{ENMAP_ID}-SPECTRAL_IMAGE.TIF", data, ENMAP_FILL if nodata_tag else None, transform)
    write_geotiff(folder / f"{ENMAP_ID}-QL_PIXELMASK.TIF", np.zeros((1, height, width), np.uint8), None, transform)
    return write_enmap_xml(folder / f"{ENMAP_ID}-METADATA.XML")


def zip_enmap(folder: Path, archive: Path) -> Path:
    """The ZIP as the EnMAP portal delivers it: one folder named after the product."""
    with zipfile.ZipFile(archive, "w") as z:
        for file in sorted(folder.iterdir()):
            z.write(file, f"{ENMAP_ID}/{file.name}")
    return archive


DESIS_WAVELENGTHS = [401.9 + 2.55 * 20 * b for b in range(8)]
DESIS_FWHM = [3.5 + 0.1 * b for b in range(8)]
DESIS_GAINS = [1.0] * 7 + [2.0]
DESIS_OFFSETS = [0.0] * 6 + [10.0, 0.0]
DESIS_FILL = -32768


def write_desis(folder: Path, height: int = 16, width: int = 18, seed: int = 1) -> tuple[Path, np.ndarray]:
    """A DESIS L2A product folder: METADATA.xml, SPECTRAL_IMAGE.tif (pixel-interleaved) and its .hdr."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = rng.integers(100, 5000, (8, height, width)).astype(np.int16)
    data[:, -2:, -3:] = DESIS_FILL
    with rasterio.open(folder / f"{DESIS_ID}-SPECTRAL_IMAGE.tif", "w", driver="GTiff", width=width, height=height,
                       count=8, dtype="int16", crs="EPSG:32618", transform=from_origin(500010.0, 4400010.0, 30, 30),
                       interleave="pixel", compress="lzw") as ds:
        ds.write(data)

    def braces(values):
        return "{" + ", ".join(repr(v) for v in values) + "}"

    (folder / f"{DESIS_ID}-SPECTRAL_IMAGE.hdr").write_text(
        f"ENVI\ndescription = {{DESIS L2A}}\nsamples = {width}\nlines = {height}\nbands = 8\n"
        f"data type = 2\ninterleave = bip\ndata ignore value = {DESIS_FILL}\nwavelength units = Nanometers\n"
        f"wavelength = {braces(DESIS_WAVELENGTHS)}\nfwhm = {braces(DESIS_FWHM)}\n"
        f"data gain values = {braces(DESIS_GAINS)}\ndata offset values = {braces(DESIS_OFFSETS)}\n")
    metadata = folder / f"{DESIS_ID}-METADATA.xml"
    metadata.write_text('<?xml version="1.0"?><hsi_doc><base><productType>L2A</productType></base></hsi_doc>')
    return metadata, data


# PRISMA: stored in decreasing wavelength, zeros for unused bands.
PRISMA_VNIR_CW = np.array([0.0, 1010.5, 960.3, 920.2, 850.1, 650.7, 550.4, 450.2], np.float32)
PRISMA_SWIR_CW = np.array([2450.9, 2100.4, 1600.3, 1200.2, 980.6, 940.1, 0.0], np.float32)
PRISMA_VNIR_FWHM = np.array([0.0, 14.1, 13.2, 12.3, 11.4, 10.5, 9.6, 8.7], np.float32)
PRISMA_SWIR_FWHM = np.array([9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 0.0], np.float32)
PRISMA_SCALES = {"Vnir": (0.0, 0.8), "Swir": (-0.05, 1.2)}
PRISMA_EPSG = 32633
PRISMA_UL = (452985.0, 4652985.0)  # centre of the upper left pixel


def write_prisma(path: Path, height: int = 21, width: int = 19, seed: int = 2, drop: str | None = None):
    """A PRISMA L2D .he5 with the real group paths and file attributes; returns the stored cubes."""
    rng = np.random.default_rng(seed)
    vnir = rng.integers(1, 65535, (height, len(PRISMA_VNIR_CW), width)).astype(np.uint16)
    swir = rng.integers(1, 65535, (height, len(PRISMA_SWIR_CW), width)).astype(np.uint16)
    vnir[:2, :, :4] = 0  # outside the swath
    swir[:2, :, :4] = 0
    vnir[:, PRISMA_VNIR_CW == 0, :] = 0  # unused bands
    swir[:, PRISMA_SWIR_CW == 0, :] = 0
    with h5py.File(path, "w") as f:
        fields = f.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields")
        fields.create_dataset("VNIR_Cube", data=vnir, chunks=(4, vnir.shape[1], 8), compression="gzip")
        fields.create_dataset("SWIR_Cube", data=swir, chunks=(4, swir.shape[1], 8), compression="gzip")
        fields.create_dataset("VNIR_PIXEL_L2_ERR_MATRIX", data=np.zeros(vnir.shape, np.uint8))
        f.create_group("HDFEOS/SWATHS/PRS_L2D_PCO/Data Fields").create_dataset(
            "Cube", data=np.zeros((height * 6, width * 6), np.uint16))
        attrs = f.attrs
        attrs["Product_ID"] = np.bytes_("PRS_L2D_STD")
        attrs["List_Cw_Vnir"], attrs["List_Fwhm_Vnir"] = PRISMA_VNIR_CW, PRISMA_VNIR_FWHM
        attrs["List_Cw_Swir"], attrs["List_Fwhm_Swir"] = PRISMA_SWIR_CW, PRISMA_SWIR_FWHM
        for detector, (low, high) in PRISMA_SCALES.items():
            attrs[f"L2Scale{detector}Min"] = np.float32(low)
            attrs[f"L2Scale{detector}Max"] = np.float32(high)
        attrs["Epsg_Code"] = np.int32(PRISMA_EPSG)
        attrs["Product_ULcorner_easting"], attrs["Product_ULcorner_northing"] = PRISMA_UL
        attrs["Product_LRcorner_easting"] = PRISMA_UL[0] + 30.0 * (width - 1)
        attrs["Product_LRcorner_northing"] = PRISMA_UL[1] - 30.0 * (height - 1)
        if drop:
            del attrs[drop]
    return vnir, swir


EMIT_WAVELENGTHS = np.array([381.0, 450.5, 550.2, 650.9, 1360.1, 1850.3, 2200.7, 2493.2], np.float32)
EMIT_FWHM = np.array([8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0, 9.1], np.float32)
EMIT_GOOD = np.array([1, 1, 1, 1, 0, 0, 1, 1], np.uint8)
EMIT_GEOTRANSFORM = np.array([-118.5, 0.000542232520256367, 0.0, 35.25, 0.0, -0.000542232520256367])
EMIT_FILL = -9999.0


def emit_glt(sensor_rows: int, sensor_cols: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A GLT of a swath rotated on the map: each map pixel names the sensor pixel (1-based) nearest
    to it, 0 outside the swath; a few entries negative, as fill pixels are marked."""
    angle = np.deg2rad(20.0)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    centre_r, centre_c = height / 2, width / 2
    source_r = np.rint((rows - centre_r) * np.cos(angle) - (cols - centre_c) * np.sin(angle) + sensor_rows / 2)
    source_c = np.rint((rows - centre_r) * np.sin(angle) + (cols - centre_c) * np.cos(angle) + sensor_cols / 2)
    inside = (source_r >= 0) & (source_r < sensor_rows) & (source_c >= 0) & (source_c < sensor_cols)
    glt_y = np.where(inside, source_r + 1, 0).astype(np.int32)
    glt_x = np.where(inside, source_c + 1, 0).astype(np.int32)
    glt_x[inside & (rows % 7 == 3)] *= -1
    glt_y[inside & (rows % 7 == 3)] *= -1
    return glt_x, glt_y


def write_emit(path: Path, sensor_rows: int = 30, sensor_cols: int = 26, height: int = 36, width: int = 40,
               seed: int = 3, omit: str | None = None):
    """An EMIT L2A reflectance .nc (netCDF-4 groups and attributes, written through HDF5);
    returns the sensor cube and the GLT."""
    rng = np.random.default_rng(seed)
    cube = rng.uniform(0.0, 0.7, (sensor_rows, sensor_cols, len(EMIT_WAVELENGTHS))).astype(np.float32)
    cube[0, :5] = EMIT_FILL
    glt_x, glt_y = emit_glt(sensor_rows, sensor_cols, height, width)
    with h5py.File(path, "w") as f:
        reflectance = f.create_dataset("reflectance", data=cube, chunks=(8, 8, len(EMIT_WAVELENGTHS)))
        reflectance.attrs["_FillValue"] = np.float32(EMIT_FILL)
        reflectance.attrs["units"] = np.bytes_("unitless")
        bands = f.create_group("sensor_band_parameters")
        bands["wavelengths"], bands["fwhm"], bands["good_wavelengths"] = EMIT_WAVELENGTHS, EMIT_FWHM, EMIT_GOOD
        location = f.create_group("location")
        location["glt_x"], location["glt_y"] = glt_x, glt_y
        location["lat"] = np.zeros((sensor_rows, sensor_cols))
        location["lon"] = np.zeros((sensor_rows, sensor_cols))
        f.attrs["geotransform"] = EMIT_GEOTRANSFORM
        f.attrs["spatial_ref"] = np.bytes_(CRS.from_epsg(4326).to_wkt())
        f.attrs["time_coverage_start"] = np.bytes_("2022-08-15T04:28:38+0000")
        if omit:
            del f[omit]
    return cube, glt_x, glt_y


def product(kind: str, folder: Path, enmap_folder: bool = False) -> Path:
    """A product of `kind` ('enmap', 'desis', 'prisma' or 'emit') written in `folder`, as a user gives
    it: the METADATA.XML (EnMAP: the product folder with `enmap_folder`), the .he5 or the .nc."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "enmap":
        metadata = write_enmap(folder / ENMAP_ID)
        return metadata.parent if enmap_folder else metadata
    if kind == "desis":
        return write_desis(folder / DESIS_ID)[0]
    if kind == "prisma":
        write_prisma(folder / PRISMA_NAME)
        return folder / PRISMA_NAME
    write_emit(folder / EMIT_NAME)
    return folder / EMIT_NAME
