"""dualsr:fine, dualsr:dualsr and dualsr:degrade through processing.run, and the shipped Coarse+Fine model."""

import numpy as np
import pytest
import rasterio
from osgeo import gdal
from rasterio.transform import from_origin

from dualsr_core.stages.fine import back_project

from ..conftest import smooth_cube, write_raster

pytestmark = pytest.mark.qgis


def test_fine_with_given_rasters(qgis_processing, tmp_path):
    lr, u, v = smooth_cube(5, 10, 12, 1), smooth_cube(5, 40, 48, 2), smooth_cube(5, 20, 24, 3)
    write_raster(tmp_path / "lr.tif", lr, transform=from_origin(300000, 5800000, 20, 20))
    write_raster(tmp_path / "u.tif", u, transform=from_origin(300000, 5800000, 5, 5))
    write_raster(tmp_path / "v.tif", v, transform=from_origin(300000, 5800000, 10, 10))
    out = tmp_path / "fine.tif"
    qgis_processing.run("dualsr:fine", {"INPUT": str(tmp_path / "lr.tif"), "SCALE": "4",
                                        "COARSE": str(tmp_path / "u.tif"), "REFERENCE": str(tmp_path / "v.tif"),
                                        "OUTPUT": str(out)})
    with rasterio.open(out) as ds:
        assert np.abs(ds.read() - back_project(u, v, 1)[0]).max() < 1e-6


def test_one_step_dualsr_and_degrade(qgis_processing, make_raster, tmp_path, tiny_weights):
    high = smooth_cube(6, 32, 24, seed=4)
    src = make_raster(high, nodata=-1.0, wavelengths_nm=[500 + 10 * b for b in range(6)])
    low = tmp_path / "low.tif"
    qgis_processing.run("dualsr:degrade", {"INPUT": str(src), "SCALE": "4", "OUTPUT": str(low)})
    out = tmp_path / "sr.tif"
    qgis_processing.run("dualsr:dualsr", {"INPUT": str(low), "SCALE": "4", "WEIGHTS": str(tiny_weights[4]),
                                          "REFERENCE_WEIGHTS": str(tiny_weights[2]), "PRECISION": "fp32",
                                          "OUTPUT": str(out)})
    a, b = gdal.Open(str(src)), gdal.Open(str(out))
    assert b.GetGeoTransform() == a.GetGeoTransform()
    assert (b.RasterXSize, b.RasterYSize, b.RasterCount) == (24, 32, 6)
    assert b.GetRasterBand(2).GetMetadataItem("wavelength") == "510"
    written = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".aux.xml"))
    assert written == ["input.tif", "low.tif", "sr.tif"]


def test_shipped_model_chains_coarse_and_fine(qgis_processing, make_raster, tmp_path, tiny_weights):
    """Run through the provider, as the toolbox does: the model is listed as dualsr:dualsrcoarsethenfine."""
    src = make_raster(smooth_cube(5, 9, 11, seed=5))
    out = tmp_path / "dualsr.tif"
    qgis_processing.run("dualsr:dualsrcoarsethenfine", {
        "input": str(src), "weights_coarse": str(tiny_weights[4]), "weights_reference": str(tiny_weights[2]),
        "fine:superresolved": str(out)})
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height, ds.count) == (44, 36, 5)


def test_one_step_dualsr_with_extent_and_bands(qgis_processing, make_raster, tmp_path, tiny_weights):
    src = make_raster(smooth_cube(7, 30, 26, seed=6), wavelengths_nm=[450 + 20 * b for b in range(7)], nodata=-1.0)
    extent = f"{364095 + 60},{364095 + 300},{5809965 - 420},{5809965 - 90} [EPSG:32633]"
    out = tmp_path / "sr.tif"
    qgis_processing.run("dualsr:dualsr", {"INPUT": str(src), "SCALE": "4", "WEIGHTS": str(tiny_weights[4]),
                                          "REFERENCE_WEIGHTS": str(tiny_weights[2]), "EXTENT": extent,
                                          "BANDS": [1, 3, 4, 6, 7], "OUTPUT": str(out)})
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height, ds.count) == (32, 44, 5)
        assert ds.bounds == (364095 + 60, 5809965 - 420, 364095 + 300, 5809965 - 90)
        assert [ds.tags(i + 1)["wavelength"] for i in range(5)] == ["450", "490", "510", "550", "570"]
        assert ds.nodata == -1.0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".aux.xml")) == ["input.tif", "sr.tif"]
