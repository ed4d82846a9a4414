"""Sensor products through the qgis_process executable: the one-step DualSR at x2 on each kind, as
downloaded, checked for grid, spectral metadata and style."""
import pytest
import rasterio

from ..core.io.products.synthetic import product
from .conftest import QGIS_PROCESS, qgis_process

pytestmark = pytest.mark.qgis
if QGIS_PROCESS is None:
    pytest.skip("qgis_process is not installed", allow_module_level=True)


@pytest.mark.parametrize("kind", ["enmap", "desis", "prisma", "emit"])
def test_dualsr_x2_on_a_product(qgis_env, tmp_path, tiny_weights, kind):
    from dualsr_core.io.products import open_raster

    source = product(kind, tmp_path / "download", enmap_folder=True)
    out = tmp_path / "x2.tif"
    run = qgis_process(qgis_env, "run", "dualsr:dualsr", "--", f"INPUT={source}", "SCALE=2",
                       f"WEIGHTS={tiny_weights[2]}", "PRECISION=fp32", "SCHEDULE=band", f"OUTPUT={out}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"OUTPUT:\t{out}" in run.stdout
    with open_raster(source) as reader, rasterio.open(out) as written:
        assert (written.width, written.height, written.count) == (reader.width * 2, reader.height * 2, reader.count)
        a, b, c, d, e, f = reader.transform[:6]
        assert written.transform[:6] == (a / 2, b, c, d, e / 2, f) and written.crs == reader.crs
        assert [written.tags(band + 1).get("wavelength") for band in range(reader.count)] == \
            [reader.band_tags(band).get("wavelength") for band in range(reader.count)]
        assert [written.tags(band + 1)["bbl"] for band in range(reader.count)] == \
            [reader.band_tags(band)["bbl"] for band in range(reader.count)]
    assert out.with_suffix(".qml").is_file()
