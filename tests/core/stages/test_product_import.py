"""Import sensor product: the stored values, grid and spectral metadata of each product kind in a
GeoTIFF, byte for byte where the product is a GeoTIFF already, with its true-colour style."""
import numpy as np
import pytest
import rasterio

from dualsr_core.errors import InputError
from dualsr_core.io.products import open_raster
from dualsr_core.stages.product_import import import_product
from dualsr_core.tools.tiling import Region

from ..io.products.synthetic import enmap_pixels, product
from ...conftest import write_raster


@pytest.mark.parametrize("kind", ["enmap", "desis", "prisma", "emit"])
def test_import_writes_what_the_reader_reads(tmp_path, kind, monkeypatch):
    from dualsr_core.stages import product_import

    monkeypatch.setattr(product_import, "IMPORT_TILE", 7)  # many windows, none aligned with anything
    source = product(kind, tmp_path / "in")
    out = tmp_path / "imported.tif"
    result = import_product(source, out)
    assert result["OUTPUT"] == str(out)
    with open_raster(source) as reader, open_raster(out) as imported:
        assert (imported.width, imported.height, imported.count) == (reader.width, reader.height, reader.count)
        assert imported.transform == reader.transform and imported.crs == reader.crs
        assert imported.dtype == reader.dtype and imported.nodata == reader.nodata
        assert imported.wavelengths_um() == reader.wavelengths_um()
        assert imported.bad_band_list() == reader.bad_band_list()
        assert [imported.band_tags(b).get("fwhm") for b in range(reader.count)] == \
            [reader.band_tags(b).get("fwhm") for b in range(reader.count)]
        whole = Region(0, 0, reader.height, reader.width)
        for ours, theirs in zip(imported.read(whole), reader.read(whole), strict=True):
            np.testing.assert_array_equal(ours, theirs)
    with rasterio.open(out) as written:
        label = {"enmap": "EnMAP L2A", "desis": "DESIS L2A", "prisma": "PRISMA L2D", "emit": "EMIT L2A"}[kind]
        assert written.tags()["PRODUCT"] == label  # the product's name, not the phrase of its error messages
        if kind == "enmap":
            np.testing.assert_array_equal(written.read(), enmap_pixels(24, 20))  # the stored integers
    assert out.with_suffix(".qml").is_file()


def test_import_refuses_what_is_no_product(tmp_path):
    plain = write_raster(tmp_path / "plain.tif", np.ones((2, 3, 3), np.float32))
    with pytest.raises(InputError, match="is not a sensor product DualSR reads"):
        import_product(plain, tmp_path / "out.tif")


@pytest.mark.parametrize("kind", ["prisma", "emit"])
def test_import_reads_each_window_in_groups_of_bands_within_the_budget(tmp_path, kind, monkeypatch):
    from dualsr_core.io.products.base import ProductReader
    from dualsr_core.tools import tiling

    monkeypatch.setattr(tiling, "READ_BYTES", 40 * 36 * 4 * 3, raising=False)  # 3 bands of the larger scene
    reads = []
    read = ProductReader.read

    def recorded(self, region, bands=None):
        reads.append(region.height * region.width * (self.count if bands is None else len(bands)) * 4)
        return read(self, region, bands)

    monkeypatch.setattr(ProductReader, "read", recorded)
    source = product(kind, tmp_path / "in")
    import_product(source, tmp_path / "imported.tif", default_style=False)
    assert reads and max(reads) <= tiling.READ_BYTES
    monkeypatch.undo()
    with open_raster(source) as reader, open_raster(tmp_path / "imported.tif") as imported:
        whole = Region(0, 0, reader.height, reader.width)
        for ours, theirs in zip(imported.read(whole), reader.read(whole), strict=True):
            np.testing.assert_array_equal(ours, theirs)
