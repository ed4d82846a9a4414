"""Import a sensor product (io/products) as a GeoTIFF or ENVI raster a user can look at first or
chain in the graphical modeler: the product's grid, encoding, nodata and spectral metadata
(wavelength, FWHM, bad bands), and the true-colour default style.

Written window by window in the product's encoding (its stored integers and their scale and offset,
or float reflectance), in groups of bands of at most READ_BYTES, so an import never holds the scene
in memory and rounds no value.
"""
from __future__ import annotations

import os
import time

from ..errors import InputError
from ..feedback import Feedback
from ..io.atomic import prepare_folder, refuse_inputs
from ..io.products import display_name, open_raster, product_kind
from ..io.raster import RasterWriter, output_driver
from ..io.style import write_default_style
from ..tools.tiling import Region, band_groups, window_grid

# Square windows: an EMIT window on the map grid reads the box of sensor pixels it covers.
IMPORT_TILE = 512


def import_product(input_path: str | os.PathLike, output_path: str | os.PathLike, driver: str | None = None,
                   feedback: Feedback | None = None, default_style: bool = True) -> dict:
    """Write a sensor product as a raster with all its metadata; returns OUTPUT, NAME and SECONDS.

    Args:
        input_path: the product as downloaded (an EnMAP L2A or DESIS L2A METADATA.XML, its folder
            or ZIP; a PRISMA L2D .he5; an EMIT L2A .nc).
        output_path: the raster to write (GeoTIFF, or ENVI for an ENVI suffix).
        driver: 'GTiff', 'COG' or 'ENVI' (None: from the file extension).
        feedback: progress, cancel and log callbacks.
        default_style: write the true-colour `<output stem>.qml` beside the output.
    """
    feedback = feedback or Feedback()
    started = time.perf_counter()
    if product_kind(input_path) is None:
        raise InputError(f"INPUT '{input_path}' is not a sensor product DualSR reads: give an EnMAP L2A or DESIS "
                         "L2A METADATA.XML (or its folder, or the EnMAP ZIP), a PRISMA L2D .he5 or an EMIT L2A .nc.")
    refuse_inputs(output_path, [("INPUT", input_path)], styled=default_style)
    output_driver(output_path, driver)
    prepare_folder(output_path, log=feedback.log)
    with open_raster(input_path) as reader:
        feedback.log(f"{display_name(input_path)}: {reader.width} x {reader.height} pixels, {reader.count} bands "
                     f"({sum(reader.bad_band_list())} flagged bad), {reader.scale_source}.")
        tiles = window_grid(Region(0, 0, reader.height, reader.width), IMPORT_TILE, IMPORT_TILE)
        with RasterWriter(output_path, reader, 1, driver=driver, log=feedback.log) as writer:
            for done, tile in enumerate(tiles):
                feedback.check_cancelled()
                for bands in band_groups(reader.count, tile.height * tile.width):
                    reflectance, valid = reader.read(tile, bands)
                    writer.write(reflectance, valid, tile.row0, tile.col0, bands)
                feedback.progress((done + 1) / len(tiles))
    if default_style:
        write_default_style(output_path, feedback)
    seconds = time.perf_counter() - started
    feedback.log(f"Wrote {output_path} in {seconds:.1f} s.")
    return {"OUTPUT": str(output_path), "NAME": display_name(input_path), "SECONDS": seconds}
