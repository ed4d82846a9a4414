"""EnMAP L2A and DESIS L2A: a GeoTIFF `<id>-SPECTRAL_IMAGE.TIF` beside `<id>-METADATA.XML`.

The image is read through `RasterReader` (GDAL, windowed, any block layout); the spectral truth
comes from the product's own files instead of the GeoTIFF's tags, which carry none.

EnMAP L2A (the folder, its METADATA.XML, or the ZIP as delivered):
- per band, from `specific/bandCharacterisation/bandID`: `wavelengthCenterOfBand` and `FWHMOfBand`
  (nanometres), `GainOfBand` and `OffsetOfBand` (reflectance = stored x gain + offset);
- bad bands: the no-data bands of `product/bandStatistics/bandID` (standard deviation 0 and mean
  -1000000, as EnMAP-Box's importer reads them), and the VNIR/SWIR overlap;
- the overlap (about 900 to 1000 nm, where both detectors have bands): the VNIR bands at or above
  the first SWIR wavelength are flagged bad, the SWIR bands kept. Silicon loses its sensitivity
  there, so the VNIR bands are the noisier ones, and the two detectors are registered separately:
  neighbours that alternate between them would mix two noise levels and two geometries. This is
  EnMAP-Box's default ("SWIR only"), as a bad-band flag: the output keeps all 224 bands. The
  detectors' bands are those of `specific/vnirProductQuality/expectedChannelsList` and
  `specific/swirProductQuality/expectedChannelsList` (1-based band numbers);
- nodata: the GeoTIFF's, else EnMAP's fill value -32768.

DESIS L2A (the folder or its METADATA.xml): wavelength, fwhm, `data gain values` and `data offset
values` of the ENVI header `<id>-SPECTRAL_IMAGE.hdr` delivered beside the image (the METADATA.xml
repeats them per band in a layout that changed between processor versions; the header has not);
the gains and offsets give reflectance x 10000, the product's scaling. Nodata: the GeoTIFF's, else
the header's `data ignore value`, else none.
"""
from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from rasterio.windows import Window

from ...tools.tiling import Region
from ..raster import RasterReader
from .base import ProductReader, band_name, product_error

ENMAP_FILL = -32768
# A band whose statistics are these holds no data (EnMAP-Box's importer, its issues #267 and #974).
NO_DATA_BAND_STATISTICS = (0.0, -1000000.0)
DESIS_REFLECTANCE_SCALE = 1e-4
IMAGE_SUFFIXES = (".TIF", ".tif", ".TIFF", ".tiff", ".GEOTIFF", "_COG.TIF", "_COG.tif", "_COG.tiff", ".BSQ", ".BIL",
                  ".BIP", ".JP2", ".jp2")
METADATA_SUFFIX = "-METADATA.XML"
IMAGE_PART = "-SPECTRAL_IMAGE"


def metadata_in_folder(folder: Path) -> Path | None:
    """The one `*-METADATA.XML` (any case) directly in a product folder, or None."""
    found = [p for p in folder.iterdir() if p.is_file() and p.name.upper().endswith(METADATA_SUFFIX)]
    return found[0] if len(found) == 1 else None


class _TiffProduct(ProductReader):
    """The shared part: find the image beside the metadata, open it, read its windows."""

    product = label = ""

    def _entry(self, path: str | os.PathLike, metadata_name: str) -> Path:
        """The metadata file the product is given by: `path` itself, or the one in the folder `path`."""
        source = Path(path)
        if source.is_dir():
            found = metadata_in_folder(source)
            if found is None:
                raise product_error(self.parameter, path, self.product, f"the folder holds no single {metadata_name}")
            source = found
        return source

    def _open_image(self, image: str):
        self.image = RasterReader(image, self.parameter)
        self.width, self.height = self.image.width, self.image.height
        self.crs, self.transform, self.dtype = self.image.crs, self.image.transform, self.image.dtype

    def _check_count(self, listed: int, what: str):
        count = self.image.count
        if listed != count:
            self.close()
            raise product_error(self.parameter, self.path, self.product,
                                f"its {what} lists {listed} bands where its spectral image has {count}")

    def block_cache(self, height: int, width: int, bands: int):
        return self.image.block_cache(height, width, bands)

    def _read_raw(self, region: Region, bands: list[int]) -> np.ndarray:
        return self.image.dataset.read([b + 1 for b in bands],
                                       window=Window(region.col0, region.row0, region.width, region.height))

    def close(self):
        if getattr(self, "image", None) is not None:
            self.image.close()
            self.image = None


class EnmapL2AReader(_TiffProduct):
    """An EnMAP L2A product: its folder, its `*-METADATA.XML`, or the ZIP as delivered."""

    product = "an EnMAP L2A product"
    label = "EnMAP L2A"

    def __init__(self, path: str | os.PathLike, parameter: str = "INPUT"):
        self.path, self.parameter = str(path), parameter
        source = self._entry(path, "*-METADATA.XML")
        if source.suffix.lower() == ".zip":
            root, image = self._from_zip(source)
            self.scene_id = _prefix(Path(image))
            _require_level_2a(self)
        else:
            self.scene_id = _prefix(source)
            _require_level_2a(self)
            root, image = _parse_xml(source, parameter, self.product), _image_beside(source)
            if image is None:
                raise product_error(parameter, path, self.product, f"no {self.scene_id}{IMAGE_PART}.TIF lies "
                                                                   "beside its METADATA.XML")
        bands = root.findall("specific/bandCharacterisation/bandID")
        if not bands:
            raise product_error(parameter, path, self.product,
                                "its METADATA.XML has no specific/bandCharacterisation/bandID element")
        fields = ("wavelengthCenterOfBand", "FWHMOfBand", "GainOfBand", "OffsetOfBand")
        values = {name: [_number(band, name, parameter, path, self.product) for band in bands] for name in fields}
        self._open_image(image)
        self._check_count(len(bands), "METADATA.XML")
        self.wavelengths_nm, self.fwhm_nm = values["wavelengthCenterOfBand"], values["FWHMOfBand"]
        self.scales = np.array(values["GainOfBand"], dtype=np.float64)
        self.offsets = np.array(values["OffsetOfBand"], dtype=np.float64)
        self.scale_source = "EnMAP METADATA.XML GainOfBand/OffsetOfBand"
        self.nodata = self.image.nodata if self.image.nodata is not None else ENMAP_FILL
        self.flagged = [a or b for a, b in zip(_no_data_bands(root, len(bands)),
                                               self._overlap_bands(root), strict=True)]
        self.band_names = [band_name(b + 1, w) for b, w in enumerate(self.wavelengths_nm)]

    def _from_zip(self, archive: Path) -> tuple[ElementTree.Element, str]:
        """The parsed METADATA.XML of a ZIP and the GDAL path of its image, read in place."""
        try:
            with zipfile.ZipFile(archive) as opened:
                names = opened.namelist()
                metadata = [n for n in names if n.upper().endswith(METADATA_SUFFIX)]
                if len(metadata) != 1:
                    raise product_error(self.parameter, archive, self.product,
                                        "the ZIP holds no single *-METADATA.XML")
                with opened.open(metadata[0]) as file:
                    root = _parse_xml(file, self.parameter, self.product, archive)
        except zipfile.BadZipFile as exc:
            raise product_error(self.parameter, archive, self.product, "it is not a readable ZIP archive") from exc
        stem = metadata[0][:-len(METADATA_SUFFIX)]
        images = [stem + IMAGE_PART + suffix for suffix in IMAGE_SUFFIXES if stem + IMAGE_PART + suffix in names]
        if not images:
            raise product_error(self.parameter, archive, self.product,
                                f"the ZIP holds no {Path(stem).name}{IMAGE_PART}.TIF beside its METADATA.XML")
        return root, f"/vsizip/{archive.resolve()}/{images[0]}"

    def _overlap_bands(self, root: ElementTree.Element) -> list[bool]:
        """True for the VNIR bands at or above the first SWIR wavelength (see the module's notes)."""
        try:
            vnir = _channels(root, "specific/vnirProductQuality/expectedChannelsList")
            swir = _channels(root, "specific/swirProductQuality/expectedChannelsList")
        except ValueError as exc:
            self.close()
            raise product_error(self.parameter, self.path, self.product, str(exc)) from None
        flagged = [False] * self.count
        valid_swir = [n for n in swir if 1 <= n <= self.count]
        if not valid_swir:
            return flagged
        first_swir = min(self.wavelengths_nm[n - 1] for n in valid_swir)
        for number in vnir:
            if 1 <= number <= self.count and self.wavelengths_nm[number - 1] >= first_swir:
                flagged[number - 1] = True
        return flagged


class DesisL2AReader(_TiffProduct):
    """A DESIS L2A product: its folder or its `*-METADATA.xml`."""

    product = "a DESIS L2A product"
    label = "DESIS L2A"

    def __init__(self, path: str | os.PathLike, parameter: str = "INPUT"):
        self.path, self.parameter = str(path), parameter
        source = self._entry(path, "*-METADATA.xml")
        self.scene_id = _prefix(source)
        _require_level_2a(self)
        image = _image_beside(source)
        header_path = Path(str(source)[:-len(METADATA_SUFFIX)] + IMAGE_PART + ".hdr")
        if image is None:
            raise product_error(parameter, path, self.product, f"no {self.scene_id}{IMAGE_PART}.tif lies beside it")
        if not header_path.is_file():
            raise product_error(parameter, path, self.product,
                                f"no {header_path.name} (its wavelengths) lies beside it")
        header = envi_header(header_path.read_text(errors="replace"))
        missing = [k for k in ("wavelength", "fwhm", "data gain values", "data offset values") if k not in header]
        if missing:
            raise product_error(parameter, path, self.product, f"{header_path.name} has no {', '.join(missing)}")
        keys = ("wavelength", "fwhm", "data gain values", "data offset values", "data ignore value")
        lists = {key: self._numbers(header, key, header_path.name) for key in keys}
        ignore = lists.pop("data ignore value")
        self._open_image(image)  # after the header is read: nothing to close when it is refused
        for key, values in lists.items():
            self._check_count(len(values), f"{header_path.name} '{key}'")
        self.wavelengths_nm, self.fwhm_nm = lists["wavelength"], lists["fwhm"]
        self.scales = np.array(lists["data gain values"], dtype=np.float64) * DESIS_REFLECTANCE_SCALE
        self.offsets = np.array(lists["data offset values"], dtype=np.float64) * DESIS_REFLECTANCE_SCALE
        self.scale_source = f"DESIS {header_path.name} gains/offsets, reflectance x 10000"
        self.nodata = self.image.nodata if self.image.nodata is not None else (ignore[0] if ignore else None)
        self.flagged = [False] * self.count
        self.band_names = [band_name(b + 1, w) for b, w in enumerate(self.wavelengths_nm)]

    def _numbers(self, header: dict[str, str], key: str, name: str) -> list[float]:
        """The numbers of a header item ([] where it is absent), or the sentence naming the item."""
        try:
            return _floats(header.get(key, ""))
        except ValueError:
            raise product_error(self.parameter, self.path, self.product,
                                f"{name} '{key}' is not a list of numbers") from None


def _require_level_2a(reader: _TiffProduct):
    """Refuse the other levels by their names (L1B and L1C hold radiance, not reflectance)."""
    if "L2A" not in reader.scene_id.upper():
        raise product_error(reader.parameter, reader.path, reader.product,
                            f"'{reader.scene_id}' is not a Level 2A (surface reflectance) product")


def envi_header(text: str) -> dict[str, str]:
    """The `key = value` items of an ENVI header, braces spanning lines joined, keys in lower case."""
    items = {}
    for match in re.finditer(r"^\s*([^=\n{}]+?)\s*=\s*(\{[^}]*\}|[^\n]*)", text, re.M):
        items[match.group(1).strip().lower()] = match.group(2).strip()
    return items


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.strip().strip("{}").replace("\n", " ").split(",") if v.strip()]


def _prefix(metadata: Path) -> str:
    """The product id: the file name before -METADATA.XML (or -SPECTRAL_IMAGE...)."""
    name = metadata.name
    for part in (METADATA_SUFFIX, IMAGE_PART):
        at = name.upper().rfind(part)
        if at > 0:
            return name[:at]
    return metadata.stem


def _image_beside(metadata: Path) -> str | None:
    stem = str(metadata)[:-len(METADATA_SUFFIX)]
    for suffix in IMAGE_SUFFIXES:
        if Path(stem + IMAGE_PART + suffix).is_file():
            return stem + IMAGE_PART + suffix
    return None


def _parse_xml(source, parameter: str, product: str, shown=None) -> ElementTree.Element:
    try:
        return ElementTree.parse(source).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise product_error(parameter, shown or source, product, f"its METADATA.XML cannot be read ({exc})") from exc


def _number(band: ElementTree.Element, name: str, parameter: str, path, product: str) -> float:
    text = band.findtext(name)
    try:
        return float(text)
    except (TypeError, ValueError):
        number = band.get("number", "?")
        raise product_error(parameter, path, product,
                            f"bandID {number} of its METADATA.XML has no number in {name}") from None


def _channels(root: ElementTree.Element, element: str) -> list[int]:
    """The 1-based band numbers listed in `element` ([] without it); ValueError names a bad list."""
    text = root.findtext(element) or ""
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ValueError(f"its METADATA.XML {element} is not a list of band numbers") from None


def _no_data_bands(root: ElementTree.Element, count: int) -> list[bool]:
    statistics = root.findall("product/bandStatistics/bandID")
    if len(statistics) != count:
        return [False] * count
    flagged = []
    for band in statistics:
        try:
            pair = (float(band.findtext("stdDeviation")), float(band.findtext("mean")))
        except (TypeError, ValueError):
            pair = None
        flagged.append(pair == NO_DATA_BAND_STATISTICS)
    return flagged
