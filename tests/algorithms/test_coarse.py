"""dualsr:coarse through processing.run and through a graphical model (.model3)."""
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from ..conftest import smooth_cube

pytestmark = pytest.mark.qgis
MODEL = Path(__file__).resolve().parents[1] / "data" / "coarse_then_statistics.model3"


def test_processing_run_writes_the_expected_grid(qgis_processing, make_raster, tmp_path, tiny_weights):
    src = make_raster(smooth_cube(6, 16, 20), nodata=-1.0, wavelengths_nm=[450 + 10 * b for b in range(6)])
    out = tmp_path / "out.tif"
    result = qgis_processing.run("dualsr:coarse", {"INPUT": str(src), "SCALE": "4", "WEIGHTS": str(tiny_weights[4]),
                                                  "TILE_SIZE": 40, "PRECISION": "fp32", "OUTPUT": str(out)})
    assert result["OUTPUT"] == str(out)
    a, b = gdal.Open(str(src)), gdal.Open(str(out))
    assert b.GetProjection() == a.GetProjection()
    gt = a.GetGeoTransform()
    assert b.GetGeoTransform() == (gt[0], gt[1] / 4, gt[2], gt[3], gt[4], gt[5] / 4)
    assert (b.RasterXSize, b.RasterYSize, b.RasterCount) == (80, 64, 6)
    assert b.GetRasterBand(3).GetMetadataItem("wavelength") == "470"
    assert b.GetRasterBand(3).GetNoDataValue() == -1.0


def test_errors_reach_the_user_as_processing_exceptions(qgis_processing, make_raster, tmp_path, tiny_weights):
    from qgis.core import QgsProcessingException

    src = make_raster(smooth_cube(6, 8, 8))
    with pytest.raises(QgsProcessingException, match="trained for scale x3 but SCALE is x2"):
        qgis_processing.run("dualsr:coarse", {"INPUT": str(src), "SCALE": "2", "WEIGHTS": str(tiny_weights[3]),
                                              "OUTPUT": str(tmp_path / "out.tif")})
    assert not (tmp_path / "out.tif").exists()


def test_cancel_from_qgis_feedback_leaves_no_file(qgis_processing, make_raster, tmp_path, tiny_weights):
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda _: feedback.cancel())
    src = make_raster(smooth_cube(6, 40, 40))
    with pytest.raises(QgsProcessingException, match="Canceled by user"):
        qgis_processing.run("dualsr:coarse", {"INPUT": str(src), "SCALE": "2", "WEIGHTS": str(tiny_weights[2]),
                                              "TILE_SIZE": 34, "OUTPUT": str(tmp_path / "out.tif")},
                            feedback=feedback)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.tif"]


def test_model_chains_coarse_into_raster_statistics(qgis_processing, make_raster, tmp_path, tiny_weights):
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    src = make_raster(smooth_cube(5, 12, 12))
    out = tmp_path / "sr.tif"
    result = qgis_processing.run(model, {"lowres": str(src), "weights": str(tiny_weights[2]),
                                         "native:rasterlayerstatistics_1:statistics": str(tmp_path / "stats.html"),
                                         "dualsr:coarse_1:superresolved": str(out)})
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height, ds.count) == (24, 24, 5)
        band1 = ds.read(1).astype(np.float64)
    assert result["dualsr:coarse_1:superresolved"] == str(out)
    report = (tmp_path / "stats.html").read_text(encoding="utf-8")
    mean = float(re.search(r"Mean value: ([-\d.eE+]+)", report).group(1))
    assert mean == pytest.approx(band1.mean(), rel=1e-5)


def test_extent_and_bands_parameters(qgis_processing, make_raster, tmp_path, tiny_weights):
    src = make_raster(smooth_cube(6, 40, 36, seed=5), wavelengths_nm=[480 + 12 * b for b in range(6)])
    out = tmp_path / "part.tif"
    # QGIS's extent syntax: xmin,xmax,ymin,ymax [CRS]; 2 x 3 pixels of 30 m from column 5, row 7.
    extent = f"{364095 + 150},{364095 + 210},{5809965 - 300},{5809965 - 210} [EPSG:32633]"
    qgis_processing.run("dualsr:coarse", {"INPUT": str(src), "SCALE": "2", "WEIGHTS": str(tiny_weights[2]),
                                          "EXTENT": extent, "BANDS": [5, 2], "OUTPUT": str(out)})
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height, ds.count) == (4, 6, 2)
        assert ds.bounds == (364095 + 150, 5809965 - 300, 364095 + 210, 5809965 - 210)
        assert [ds.tags(1)["wavelength"], ds.tags(2)["wavelength"]] == ["528", "492"]
