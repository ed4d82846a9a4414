"""Make sample/enmap_potsdam.tif, the georeferenced EnMAP sample committed with the project.

It is the training block `enmap_train_south` of scripts/split.py: the four adjacent 32 x 32 tiles
(96, 96), (128, 96), (96, 128) and (128, 128) of ../shared/data/enmap_potsdam (tile names give
their pixel offset in the scene), mosaicked into one contiguous 64 x 64 x 224 block. No
validation tile is used. The block's geotransform is the north-west tile's origin with the tiles'
30 m pixel size, and every tile is checked to sit exactly where that geotransform puts it.

It is stored as EnMAP L2A delivers reflectance: int16 reflectance x 10000 (band scale 0.0001,
offset 0), nodata -32768 (the six bad bands are all nodata), with the shared tiles' CRS (WGS 84 /
UTM 33N), band descriptions, band-level `wavelength`, `wavelength_units`, `fwhm` and `bbl`
(what dualsr_core.io.raster.RasterReader and EnMAP-Box read) and the acquisition `start_time`.

    python3 scripts/make_sample.py [--data ../shared/data] [--output sample/enmap_potsdam.tif]

The values are copied unchanged (the shared tiles hold whole numbers in float32); the script fails
if any value is not a whole number or does not fit int16. Beside it, sample/enmap_potsdam.qml is
the true-colour default style that QGIS and EnMAP-Box open it with (dualsr_core/io/style.py, as for
every result).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
from osgeo import gdal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from split import ENMAP_BLOCKS  # noqa: E402

from dualsr_core.io.style import write_default_style  # noqa: E402

gdal.UseExceptions()
BLOCK = "enmap_train_south"
TILE = 32
NODATA = -32768
BAND_KEYS = ("wavelength", "wavelength_units", "fwhm", "bbl")


def tile_path(data: Path, col: int, row: int) -> Path:
    return data / "enmap_potsdam" / f"enmap_potsdam_tile_{col}_{row}.tif"


def mosaic(data: Path):
    tiles = ENMAP_BLOCKS[BLOCK]
    assert not set(tiles) & set(ENMAP_BLOCKS["enmap_validation"]), "a validation tile in the sample"
    col0, row0 = min(c for c, _ in tiles), min(r for _, r in tiles)
    width = max(c for c, _ in tiles) + TILE - col0
    height = max(r for _, r in tiles) + TILE - row0
    assert len(tiles) * TILE * TILE == width * height, "the tiles do not fill the block"
    first = gdal.Open(str(tile_path(data, col0, row0)))
    x0, px, rx, y0, ry, py = first.GetGeoTransform()
    assert rx == 0 and ry == 0 and px > 0 and py < 0
    cube = np.full((first.RasterCount, height, width), NODATA, np.float64)
    for col, row in tiles:
        ds = gdal.Open(str(tile_path(data, col, row)))
        expected = (x0 + (col - col0) * px, px, 0.0, y0 + (row - row0) * py, 0.0, py)
        if ds.GetGeoTransform() != expected or ds.GetProjection() != first.GetProjection():
            raise SystemExit(f"tile {col}_{row} is not on the block's grid: {ds.GetGeoTransform()} != {expected}")
        cube[:, row - row0:row - row0 + TILE, col - col0:col - col0 + TILE] = ds.ReadAsArray()
    return first, cube


def write(first, cube: np.ndarray, output: Path):
    if not np.array_equal(cube, np.round(cube)) or cube.min() < -32768 or cube.max() > 32767:
        raise SystemExit("the tiles' values are not whole int16 numbers")
    bands, height, width = cube.shape
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    out = gdal.GetDriverByName("GTiff").Create(
        str(tmp), width, height, bands, gdal.GDT_Int16,
        ["COMPRESS=DEFLATE", "PREDICTOR=2", "ZLEVEL=9", "INTERLEAVE=BAND", "TILED=YES",
         "BLOCKXSIZE=64", "BLOCKYSIZE=64"])
    out.SetGeoTransform(first.GetGeoTransform())
    out.SetProjection(first.GetProjection())
    out.SetMetadata({"AREA_OR_POINT": "Area", "start_time": first.GetMetadataItem("start_time")})
    for b in range(bands):
        src, dst = first.GetRasterBand(b + 1), out.GetRasterBand(b + 1)
        assert src.GetNoDataValue() == NODATA and src.GetScale() == 1e-4 and (src.GetOffset() or 0) == 0
        dst.SetNoDataValue(NODATA)
        dst.SetScale(1e-4)
        dst.SetOffset(0.0)
        dst.SetDescription(src.GetDescription())
        tags = src.GetMetadata()
        dst.SetMetadata({k: tags[k] for k in BAND_KEYS})
        dst.WriteArray(cube[b].astype(np.int16))
    out.FlushCache()
    out = None
    tmp.replace(output)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=ROOT / "sample" / "enmap_potsdam.tif")
    args = parser.parse_args()
    first, cube = mosaic(args.data)
    write(first, cube, args.output)
    style = write_default_style(args.output)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    x0, px, _, y0, _, py = first.GetGeoTransform()
    print(f"{args.output}: {cube.shape[2]} x {cube.shape[1]} x {cube.shape[0]}, origin ({x0:.0f}, {y0:.0f}), "
          f"pixel {px:g} x {-py:g} m, {args.output.stat().st_size} bytes, sha256 {digest}; style {style}")


if __name__ == "__main__":
    main()
