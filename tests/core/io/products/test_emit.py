"""EMIT L2A reader on a small .nc with the real variables and a rotated GLT: the map grid is filled
as the lookup table says, pixel by pixel, whatever the window."""
import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine

from dualsr_core.errors import InputError
from dualsr_core.io.products import emit, open_raster
from dualsr_core.io.products.emit import EmitL2AReader
from dualsr_core.tools.tiling import Region

from .synthetic import EMIT_FILL, EMIT_FWHM, EMIT_GEOTRANSFORM, EMIT_GOOD, EMIT_NAME, EMIT_WAVELENGTHS, write_emit


def orthorectified(cube, glt_x, glt_y):
    """The map grid (B,H,W) by a loop over its pixels: sensor pixel (|glt_y| - 1, |glt_x| - 1), the
    fill where either entry is 0."""
    height, width = glt_x.shape
    out = np.full((cube.shape[2], height, width), EMIT_FILL, np.float32)
    for row in range(height):
        for col in range(width):
            x, y = int(glt_x[row, col]), int(glt_y[row, col])
            if x != 0 and y != 0:
                out[:, row, col] = cube[abs(y) - 1, abs(x) - 1, :]
    return out


@pytest.fixture
def product(tmp_path):
    cube, glt_x, glt_y = write_emit(tmp_path / EMIT_NAME)
    return tmp_path / EMIT_NAME, orthorectified(cube, glt_x, glt_y)


def test_emit_metadata_and_map_grid(product):
    path, _ = product
    with open_raster(path) as reader:
        assert isinstance(reader, EmitL2AReader)
        assert (reader.width, reader.height, reader.count) == (40, 36, 8)
        assert reader.transform == Affine.from_gdal(*EMIT_GEOTRANSFORM)
        assert reader.crs == CRS.from_epsg(4326)
        assert reader.wavelengths_um() == [float(str(w)) * 1e-3 for w in EMIT_WAVELENGTHS]
        assert [reader.band_tags(b)["fwhm"] for b in range(8)] == [repr(float(str(w))) for w in EMIT_FWHM]
        assert reader.bad_band_list() == [g == 0 for g in EMIT_GOOD]
        assert reader.nodata == EMIT_FILL


@pytest.mark.parametrize("region", [Region(0, 0, 36, 40), Region(5, 7, 13, 17), Region(20, 0, 3, 40),
                                    Region(0, 39, 36, 1)])
def test_emit_windows_follow_the_glt(product, region, monkeypatch):
    path, ortho = product
    want = ortho[:, region.row0:region.row0 + region.height, region.col0:region.col0 + region.width]
    for margin, ratio in ((emit.BOX_MARGIN, emit.BOX_RATIO), (0, 1)):  # (0, 1): windows split wherever they can
        monkeypatch.setattr(emit, "BOX_MARGIN", margin)
        monkeypatch.setattr(emit, "BOX_RATIO", ratio)
        with open_raster(path) as reader:
            reflectance, valid = reader.read(region)
            np.testing.assert_array_equal(valid, want != EMIT_FILL)
            np.testing.assert_array_equal(reflectance, np.where(want != EMIT_FILL, want, 0))
            subset, subset_valid = reader.read(region, [6, 1, 6])
            np.testing.assert_array_equal(subset, reflectance[[6, 1, 6]])
            np.testing.assert_array_equal(subset_valid, valid[[6, 1, 6]])


def test_emit_survey_counts_the_pixels_outside_the_swath(product):
    path, ortho = product
    with open_raster(path) as reader:
        np.testing.assert_array_equal(reader.invalid_counts(), (ortho == EMIT_FILL).reshape(8, -1).sum(1))


@pytest.mark.parametrize("omit, missing", [("location/glt_x", "location/glt_x"),
                                           ("sensor_band_parameters/wavelengths", "sensor_band_parameters/wavelengths"),
                                           ("reflectance", "reflectance")])
def test_an_emit_file_without_its_variables_names_them(tmp_path, omit, missing):
    write_emit(tmp_path / EMIT_NAME, omit=omit)
    with pytest.raises(InputError, match=f"looks like an EMIT L2A reflectance product but it has no {missing}"):
        open_raster(tmp_path / EMIT_NAME)


def test_a_thin_window_across_the_swath_is_read_in_parts(product, monkeypatch):
    path, ortho = product
    boxes = []
    read_box = EmitL2AReader._gather

    def counting(self, out, rows, cols, valid, stored, position):
        boxes.append(valid.shape)
        return read_box(self, out, rows, cols, valid, stored, position)

    monkeypatch.setattr(EmitL2AReader, "_gather", counting)
    monkeypatch.setattr(emit, "BOX_MARGIN", 0)
    monkeypatch.setattr(emit, "BOX_RATIO", 1)
    with open_raster(path) as reader:
        reflectance, _ = reader.read(Region(20, 0, 2, 40))
    assert len(boxes) > 1
    np.testing.assert_array_equal(reflectance, np.where(ortho[:, 20:22] != EMIT_FILL, ortho[:, 20:22], 0))


@pytest.mark.parametrize("damage, sentence", [
    (lambda f: f.attrs.__setitem__("geotransform", EMIT_GEOTRANSFORM[:4]), "its geotransform is not six numbers"),
    (lambda f: f.attrs.__setitem__("geotransform", np.bytes_("north up")), "its geotransform is not six numbers"),
    (lambda f: f.attrs.__setitem__("spatial_ref", np.bytes_("GEOGCS[garbage")), "its spatial_ref is no CRS"),
    (lambda f: f["location/glt_x"].__setitem__((30, 20), -27), "its GLT names sensor pixels outside its reflectance"),
    (lambda f: f["location/glt_y"].__setitem__((3, 4), 31), "its GLT names sensor pixels outside its reflectance")])
def test_garbage_in_an_emit_file_is_one_sentence_and_closes_it(tmp_path, damage, sentence):
    import h5py

    write_emit(tmp_path / EMIT_NAME)  # 30 sensor rows x 26 columns
    with h5py.File(tmp_path / EMIT_NAME, "r+") as f:
        damage(f)
    with pytest.raises(InputError, match=f"^REFERENCE '.*' looks like an EMIT L2A reflectance product but {sentence}"):
        open_raster(tmp_path / EMIT_NAME, "REFERENCE")
    with h5py.File(tmp_path / EMIT_NAME, "r+"):  # HDF5 refuses to open for writing a file still open for reading
        pass


class RecordedCube:
    """The reflectance dataset, recording the bytes of every box read from it."""

    def __init__(self, dataset):
        self.dataset, self.reads = dataset, []

    def __getitem__(self, key):
        box = self.dataset[key]
        self.reads.append(box.nbytes)
        return box


@pytest.mark.parametrize("bands", [None, [6, 1, 6], [0, 1, 2, 3, 4, 5, 6, 7]])
def test_no_sensor_box_read_is_above_the_byte_budget(product, monkeypatch, bands):
    path, ortho = product
    monkeypatch.setattr(emit, "BOX_BYTES", 16 * 16 * 4 * 3, raising=False)  # 3 bands of a 16 x 16 box
    with open_raster(path) as reader:
        reader.cube = RecordedCube(reader.cube)
        reflectance, valid = reader.read(Region(0, 0, 36, 40), bands)  # the whole scene: its box is all 30 x 26
        assert reader.cube.reads and max(reader.cube.reads) <= emit.BOX_BYTES
    want = ortho if bands is None else ortho[bands]
    np.testing.assert_array_equal(valid, want != EMIT_FILL)
    np.testing.assert_array_equal(reflectance, np.where(want != EMIT_FILL, want, 0))
