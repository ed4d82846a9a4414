"""open_raster: which reader an input gets; folder scans take a product once; unreadable reasons."""
import h5py
import numpy as np
import pytest

from dualsr_core.errors import InputError
from dualsr_core.io.products import (display_name, files_of_product, is_product_member, open_raster, product_kind,
                                    unreadable_reason)
from dualsr_core.io.raster import RasterReader
from dualsr_core.io.scenes import find_scenes
from dualsr_core.tools.tiling import Region

from ....conftest import write_raster
from .synthetic import DESIS_ID, EMIT_NAME, ENMAP_ID, PRISMA_NAME, write_desis, write_emit, write_enmap, write_prisma


def test_each_product_kind_and_a_plain_raster(tmp_path):
    enmap = write_enmap(tmp_path / ENMAP_ID)
    desis, _ = write_desis(tmp_path / DESIS_ID)
    write_prisma(tmp_path / PRISMA_NAME)
    write_emit(tmp_path / EMIT_NAME)
    renamed = tmp_path / "scene.nc"
    (tmp_path / EMIT_NAME).rename(renamed)  # an EMIT file renamed is still found by its groups
    plain = write_raster(tmp_path / "plain.tif", np.ones((3, 4, 4), np.float32))
    kinds = {enmap: "enmap", enmap.parent: "enmap", desis: "desis", desis.parent: "desis",
             tmp_path / PRISMA_NAME: "prisma", renamed: "emit", plain: None, tmp_path / "missing.he5": None}
    assert {path: product_kind(path) for path in kinds} == kinds
    with open_raster(plain) as reader:
        assert type(reader) is RasterReader


def test_a_netcdf_that_is_not_emit_goes_to_gdal(tmp_path):
    with h5py.File(tmp_path / "other.nc", "w") as f:
        f["temperature"] = np.zeros((2, 3))
    assert product_kind(tmp_path / "other.nc") is None


def test_unreadable_reason_names_the_product_or_the_raster_problem(tmp_path):
    enmap = write_enmap(tmp_path / ENMAP_ID)
    assert unreadable_reason(enmap) is None
    next(enmap.parent.glob("*SPECTRAL_IMAGE.TIF")).unlink()
    assert "looks like an EnMAP L2A product but no" in unreadable_reason(enmap, "REFERENCE")
    assert unreadable_reason(enmap, "REFERENCE").startswith("REFERENCE ")
    assert "does not exist" in unreadable_reason(tmp_path / "none.tif")
    with pytest.raises(InputError, match="does not exist"):
        open_raster(tmp_path / "none.he5")


def test_a_folder_scan_takes_each_product_once(tmp_path):
    enmap = write_enmap(tmp_path / "scenes" / ENMAP_ID)
    write_prisma(tmp_path / "scenes" / PRISMA_NAME)
    plain = write_raster(tmp_path / "scenes" / "plain.tif", np.ones((3, 4, 4), np.float32))
    image = next(enmap.parent.glob("*SPECTRAL_IMAGE.TIF"))
    assert is_product_member(image) and not is_product_member(enmap) and not is_product_member(plain)
    assert find_scenes(tmp_path / "scenes") == sorted([enmap.resolve(), (tmp_path / "scenes" / PRISMA_NAME).resolve(),
                                                       plain.resolve()])


def test_display_names_give_mission_level_and_date(tmp_path):
    enmap = write_enmap(tmp_path / ENMAP_ID)
    desis, _ = write_desis(tmp_path / DESIS_ID)
    write_prisma(tmp_path / PRISMA_NAME)
    write_emit(tmp_path / EMIT_NAME)
    names = {enmap: "ENMAP01 L2A 2022-06-09", enmap.parent: "ENMAP01 L2A 2022-06-09", desis: "DESIS L2A 2020-07-02",
             tmp_path / PRISMA_NAME: "PRISMA L2D 2020-11-07", tmp_path / EMIT_NAME: "EMIT L2A 2022-08-15"}
    assert {path: display_name(path) for path in names} == names
    assert display_name(write_raster(tmp_path / "plain.tif", np.ones((1, 2, 2), np.float32))) is None


def test_no_output_replaces_a_file_of_a_product(tmp_path):
    from dualsr_core.io.atomic import refuse_inputs

    enmap = write_enmap(tmp_path / ENMAP_ID)
    image = next(enmap.parent.glob("*SPECTRAL_IMAGE.TIF"))
    assert files_of_product(enmap.parent) == files_of_product(enmap) == sorted(enmap.parent.iterdir())
    for given in (enmap, enmap.parent):
        with pytest.raises(InputError, match="SPECTRAL_IMAGE.TIF"):
            refuse_inputs(image, [("INPUT", given)])
    write_prisma(tmp_path / PRISMA_NAME)
    assert files_of_product(tmp_path / PRISMA_NAME) == [tmp_path / PRISMA_NAME]
    refuse_inputs(tmp_path / "elsewhere.tif", [("INPUT", enmap)])


def test_degrade_and_evaluate_take_a_product(tmp_path):
    from rasterio.transform import Affine

    from dualsr_core.evaluation.evaluate import evaluate
    from dualsr_core.stages.degrade import degrade
    from dualsr_core.stages.product_import import import_product

    prisma = tmp_path / PRISMA_NAME
    write_prisma(prisma)
    degrade(prisma, tmp_path / "low.tif", 2)
    with open_raster(prisma) as reader, open_raster(tmp_path / "low.tif") as low:
        assert (low.width, low.height) == (reader.width // 2, reader.height // 2)
        a, b, c, d, e, f = reader.transform[:6]
        assert low.transform == Affine(a * 2, b, c, d, e * 2, f)
        assert low.wavelengths_um() == reader.wavelengths_um() and low.bad_band_list() == reader.bad_band_list()
    import_product(prisma, tmp_path / "imported.tif", default_style=False)
    report = evaluate(prisma, tmp_path / "imported.tif")
    assert report["RMSE"] == 0.0 and report["EXCLUDED_BANDS"] == [14, 15]  # the unused bands, flagged bad


def test_a_training_scene_from_a_product_keeps_its_bad_bands_out(tmp_path, monkeypatch):
    from dualsr_core.io.products.base import ProductReader
    from dualsr_core.io.scenes import load_scene
    from dualsr_core.tools import tiling

    enmap = write_enmap(tmp_path / ENMAP_ID)
    monkeypatch.setattr(tiling, "READ_BYTES", 24 * 20 * 4 * 5, raising=False)  # 5 bands of the scene at once
    reads = []
    read = ProductReader.read

    def recorded(self, region, bands=None):
        reads.append(region.height * region.width * (self.count if bands is None else len(bands)) * 4)
        return read(self, region, bands)

    monkeypatch.setattr(ProductReader, "read", recorded)
    scene = load_scene(enmap)
    assert len(reads) == 3 and max(reads) <= tiling.READ_BYTES  # 12 bands: a scene is loaded in groups of bands
    monkeypatch.undo()
    with open_raster(enmap) as reader:
        flagged = reader.bad_band_list()
        assert scene.cube.shape == (reader.count, reader.height, reader.width)
    assert scene.good_bands.tolist() == [not bad for bad in flagged]
    assert scene.order.tolist() == [b for b in range(len(flagged)) if not flagged[b]]  # by wavelength
    with open_raster(enmap) as reader:
        cube, valid = reader.read(Region(0, 0, reader.height, reader.width))
    np.testing.assert_array_equal(scene.cube, cube)
    np.testing.assert_array_equal(scene.valid, valid[scene.good_bands].all(axis=0))


def test_without_h5py_a_plain_netcdf_goes_to_gdal(tmp_path, monkeypatch):
    import sys

    write_raster(tmp_path / "plain.tif", np.ones((1, 3, 4), np.float32))
    (tmp_path / "plain.tif").rename(tmp_path / "plain.nc")  # any .nc: GDAL reads it, h5py is never needed
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py fails as where it is not installed
    assert product_kind(tmp_path / "plain.nc") is None
    assert unreadable_reason(tmp_path / "plain.nc") is None


def test_without_h5py_a_hdf5_product_is_one_sentence_saying_what_to_install(tmp_path, monkeypatch):
    import sys

    write_prisma(tmp_path / PRISMA_NAME)
    monkeypatch.setitem(sys.modules, "h5py", None)
    reason = unreadable_reason(tmp_path / PRISMA_NAME, "REFERENCE")
    assert reason.startswith("Reading a PRISMA L2D product needs h5py") and "pip install h5py" in reason
