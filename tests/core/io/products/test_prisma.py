"""PRISMA L2D reader on a small .he5 with the real group paths and attributes, against numpy."""
import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine

from dualsr_core.errors import InputError
from dualsr_core.io.products import open_raster
from dualsr_core.io.products.prisma import PrismaL2DReader
from dualsr_core.tools.tiling import Region

from .synthetic import (PRISMA_EPSG, PRISMA_NAME, PRISMA_SCALES, PRISMA_SWIR_CW, PRISMA_SWIR_FWHM, PRISMA_UL,
                        PRISMA_VNIR_CW, PRISMA_VNIR_FWHM, write_prisma)


def expected(vnir, swir):
    """Every stored band as (wavelength, fwhm, reflectance, valid), from the stored cubes by loops
    over the bands: used bands by increasing wavelength, then the unused ones (VNIR first)."""
    used, unused = [], []
    inside = (vnir[:, PRISMA_VNIR_CW != 0, :] != 0).any(axis=1) | (swir[:, PRISMA_SWIR_CW != 0, :] != 0).any(axis=1)
    for cube, centres, widths, detector in ((vnir, PRISMA_VNIR_CW, PRISMA_VNIR_FWHM, "Vnir"),
                                            (swir, PRISMA_SWIR_CW, PRISMA_SWIR_FWHM, "Swir")):
        low, high = (np.float32(v) for v in PRISMA_SCALES[detector])
        scale = (float(high) - float(low)) / 65535
        for k in range(cube.shape[1]):
            stored = cube[:, k, :]
            reflectance = stored.astype(np.float32) * np.float32(scale) + np.float32(float(low))
            valid = inside if centres[k] != 0 else stored != 0  # outside the swath: every band 0
            band = (float(str(centres[k])), float(str(widths[k])), np.where(valid, reflectance, 0), valid)
            (used if centres[k] != 0 else unused).append(band)
    return sorted(used, key=lambda band: band[0]) + unused


def test_prisma_bands_values_and_grid(tmp_path):
    vnir, swir = write_prisma(tmp_path / PRISMA_NAME)
    bands = expected(vnir, swir)
    with open_raster(tmp_path / PRISMA_NAME) as reader:
        assert isinstance(reader, PrismaL2DReader)
        assert (reader.width, reader.height, reader.count) == (19, 21, 15)
        assert reader.wavelengths_um() == [None if b[0] == 0 else b[0] * 1e-3 for b in bands]
        assert reader.wavelengths_nm[:4] == [450.2, 550.4, 650.7, 850.1]  # VNIR stored reversed
        assert [reader.band_tags(b).get("fwhm") for b in range(15)] == [
            None if b[0] == 0 else repr(b[1]) for b in bands]
        assert reader.bad_band_list() == [False] * 13 + [True] * 2
        # Corners are pixel centres: the grid starts half a pixel up and left of the upper-left one.
        assert reader.transform == Affine(30.0, 0.0, PRISMA_UL[0] - 15.0, 0.0, -30.0, PRISMA_UL[1] + 15.0)
        assert reader.crs == CRS.from_epsg(PRISMA_EPSG)
        assert reader.nodata == 0 and reader.dtype == np.uint16
        reflectance, valid = reader.read(Region(0, 0, 21, 19))
        np.testing.assert_array_equal(reflectance, np.stack([b[2] for b in bands]))
        np.testing.assert_array_equal(valid, np.stack([b[3] for b in bands]))
        subset = [12, 0, 7, 14, 3]
        window, window_valid = reader.read(Region(1, 2, 9, 11), subset)
        np.testing.assert_array_equal(window, np.stack([bands[b][2][1:10, 2:13] for b in subset]))
        np.testing.assert_array_equal(window_valid, np.stack([bands[b][3][1:10, 2:13] for b in subset]))
        assert reader.empty_bands() == [False] * 13 + [True] * 2  # unused bands hold only 0


@pytest.mark.parametrize("drop, missing", [("Epsg_Code", "the attribute Epsg_Code"),
                                           ("List_Cw_Swir", "the attribute List_Cw_Swir")])
def test_a_he5_without_what_prisma_l2d_holds_names_it(tmp_path, drop, missing):
    write_prisma(tmp_path / PRISMA_NAME, drop=drop)
    with pytest.raises(InputError, match=f"looks like a PRISMA L2D product but it has no {missing}"):
        open_raster(tmp_path / PRISMA_NAME)


def test_a_he5_of_another_level_or_not_hdf5_is_refused(tmp_path):
    import h5py

    with h5py.File(tmp_path / "PRS_L2C_STD.he5", "w") as f:
        f.create_group("HDFEOS/SWATHS/PRS_L2C_HCO/Data Fields")
    with pytest.raises(InputError, match="it has no HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/VNIR_Cube"):
        open_raster(tmp_path / "PRS_L2C_STD.he5")
    (tmp_path / "PRS_L2D_text.he5").write_text("not hdf5")
    with pytest.raises(InputError, match="it is not an HDF5 file h5py can read"):
        open_raster(tmp_path / "PRS_L2D_text.he5")


def test_a_he5_neither_named_nor_laid_out_as_prisma_goes_to_gdal(tmp_path):
    import h5py

    from dualsr_core.io.products import product_kind, unreadable_reason

    write_prisma(tmp_path / PRISMA_NAME)
    (tmp_path / PRISMA_NAME).rename(tmp_path / "renamed.he5")  # still PRISMA by its swath group
    with h5py.File(tmp_path / "omi.he5", "w") as f:  # another mission's HDF-EOS5
        f["HDFEOS/GRIDS/ozone/Data Fields/a"] = np.zeros((3, 4, 5), np.float32)
        f["HDFEOS/GRIDS/ozone/Data Fields/b"] = np.zeros((3, 4, 5), np.float32)
    (tmp_path / "text.he5").write_text("not hdf5")
    assert [product_kind(tmp_path / name) for name in ("renamed.he5", "omi.he5", "text.he5")] == ["prisma", None, None]
    assert "is a container of 2 subdatasets" in unreadable_reason(tmp_path / "omi.he5")  # GDAL's own reason
    assert "is not a raster GDAL can read" in unreadable_reason(tmp_path / "text.he5")


def test_a_stored_0_is_no_data_only_where_every_band_of_the_pixel_is_0(tmp_path):
    import h5py

    vnir, swir = write_prisma(tmp_path / PRISMA_NAME)
    dark = 1  # stored VNIR band 1 (1010.5 nm): 0 over most of the swath, as dark absorption bands store
    vnir[3:, dark, :] = 0
    swir[10:12, :, 5:9] = 0  # every SWIR band 0, the VNIR bands not: inside the swath
    with h5py.File(tmp_path / PRISMA_NAME, "r+") as f:
        f["HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/VNIR_Cube"][...] = vnir
        f["HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/SWIR_Cube"][...] = swir
    bands = expected(vnir, swir)
    outside = np.zeros((21, 19), bool)
    outside[:2, :4] = True
    with open_raster(tmp_path / PRISMA_NAME) as reader:
        band = reader.wavelengths_nm.index(1010.5)
        reflectance, valid = reader.read(Region(0, 0, 21, 19))
        np.testing.assert_array_equal(valid[:13], np.broadcast_to(~outside, (13, 21, 19)))
        assert not valid[13:].any()  # the unused bands hold no data
        np.testing.assert_array_equal(reflectance, np.stack([b[2] for b in bands]))
        assert (reflectance[band, 3:] == np.float32(PRISMA_SCALES["Vnir"][0])).all()
        alone, alone_valid = reader.read(Region(2, 3, 12, 10), [band])  # the mask needs the other bands
        np.testing.assert_array_equal(alone_valid[0], ~outside[2:14, 3:13])
        np.testing.assert_array_equal(alone[0], reflectance[band, 2:14, 3:13])
        again, again_valid = reader.read(Region(2, 3, 12, 10), [band + 1])  # the same window's mask, kept
        np.testing.assert_array_equal(again_valid[0], ~outside[2:14, 3:13])
        np.testing.assert_array_equal(again[0], reflectance[band + 1, 2:14, 3:13])
        assert reader.invalid_counts().tolist() == [outside.sum()] * 13 + [21 * 19] * 2
