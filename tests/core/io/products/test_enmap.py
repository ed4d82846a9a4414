"""EnMAP L2A and DESIS L2A readers on small products in the missions' layouts, checked against
numpy on the values written; and one Coarse run on an EnMAP product."""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from dualsr_core.errors import InputError
from dualsr_core.io.products import open_raster
from dualsr_core.io.products.enmap import DesisL2AReader, EnmapL2AReader
from dualsr_core.io.raster import RasterWriter
from dualsr_core.tools.tiling import Region

from .synthetic import (DESIS_FILL, DESIS_GAINS, DESIS_ID, DESIS_OFFSETS, DESIS_WAVELENGTHS, DESIS_FWHM, ENMAP_BANDS,
                        ENMAP_FILL, ENMAP_FWHM, ENMAP_GAINS, ENMAP_ID, ENMAP_NO_DATA_BAND, ENMAP_OFFSETS, ENMAP_ORIGIN,
                        enmap_pixels, write_desis, write_enmap, write_enmap_xml, zip_enmap)


def expected_reflectance(data, gains, offsets, fill):
    """Stored x gain + offset in float32 (the reader's arithmetic, from the values written), 0 where fill."""
    reflectance = data.astype(np.float32) * np.float32(gains)[:, None, None] + np.float32(offsets)[:, None, None]
    return np.where(data == fill, np.float32(0), reflectance), data != fill


@pytest.fixture
def enmap(tmp_path):
    return write_enmap(tmp_path / ENMAP_ID)


@pytest.mark.parametrize("given", ["xml", "folder", "zip"])
def test_enmap_reads_the_xml_truth_however_given(tmp_path, enmap, given):
    path = {"xml": enmap, "folder": enmap.parent,
            "zip": lambda: zip_enmap(enmap.parent, tmp_path / f"{ENMAP_ID}.ZIP")}[given]
    path = path() if callable(path) else path
    data = enmap_pixels(24, 20)
    with open_raster(path) as reader:
        assert isinstance(reader, EnmapL2AReader)
        assert (reader.width, reader.height, reader.count) == (20, 24, len(ENMAP_BANDS))
        assert reader.transform == from_origin(*ENMAP_ORIGIN, 30.0, 30.0)
        assert reader.crs == rasterio.crs.CRS.from_epsg(32633)
        assert reader.nodata == ENMAP_FILL and reader.dtype == np.int16
        assert reader.wavelengths_um() == [w * 1e-3 for w, _ in ENMAP_BANDS]
        assert [float(reader.band_tags(b)["fwhm"]) for b in range(reader.count)] == ENMAP_FWHM
        # The overlap: VNIR bands 6 (940.6 nm) and 8 (990.8 nm) lie above the first SWIR band (910.5 nm).
        flagged = [False] * len(ENMAP_BANDS)
        flagged[5] = flagged[7] = flagged[ENMAP_NO_DATA_BAND] = True
        assert reader.bad_band_list() == flagged
        assert [reader.band_tags(b)["bbl"] for b in range(reader.count)] == ["0" if f else "1" for f in flagged]
        assert reader.empty_bands() == [b == ENMAP_NO_DATA_BAND for b in range(reader.count)]
        reflectance, valid = reader.read(Region(0, 0, 24, 20))
        want, want_valid = expected_reflectance(data, ENMAP_GAINS, ENMAP_OFFSETS, ENMAP_FILL)
        np.testing.assert_array_equal(reflectance, want)
        np.testing.assert_array_equal(valid, want_valid)
        window, window_valid = reader.read(Region(5, 3, 7, 9), [11, 0, 4])
        np.testing.assert_array_equal(window, want[[11, 0, 4], 5:12, 3:12])
        np.testing.assert_array_equal(window_valid, want_valid[[11, 0, 4], 5:12, 3:12])
        np.testing.assert_array_equal(reader.invalid_counts(), (~want_valid).reshape(len(ENMAP_BANDS), -1).sum(1))
        assert reader.scene_id == ENMAP_ID


def test_enmap_without_a_nodata_tag_takes_the_fill_value(tmp_path):
    path = write_enmap(tmp_path / ENMAP_ID, nodata_tag=False)
    with open_raster(path) as reader:
        assert reader.nodata == ENMAP_FILL
        assert not reader.read(Region(0, 0, 3, 2))[1].any()


def test_a_product_output_carries_the_spectral_metadata(tmp_path, enmap):
    with open_raster(enmap) as reader, RasterWriter(tmp_path / "out.tif", reader, 2) as writer:
        reflectance, valid = reader.read(Region(0, 0, reader.height, reader.width))
        writer.write(np.repeat(np.repeat(reflectance, 2, 1), 2, 2), np.repeat(np.repeat(valid, 2, 1), 2, 2), 0, 0)
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.transform == from_origin(*ENMAP_ORIGIN, 15.0, 15.0)
        assert out.dtypes[0] == "int16" and out.nodata == ENMAP_FILL
        assert list(out.scales) == ENMAP_GAINS and list(out.offsets) == ENMAP_OFFSETS
        assert out.tags(1)["wavelength"] == "450.1" and out.tags(6)["bbl"] == "0"
        assert out.tags(1, ns="IMAGERY")["CENTRAL_WAVELENGTH_UM"] == repr(450.1 * 1e-3)
        assert out.tags()["SCENE_ID"] == ENMAP_ID
        np.testing.assert_array_equal(out.read()[:, ::2, ::2], enmap_pixels(24, 20))


@pytest.mark.parametrize("damage, missing", [
    ("no image", "no ENMAP01-____L2A-DT0000001280_20220609T083128Z_001_V010110_20221214T113317Z-SPECTRAL_IMAGE.TIF "
                 "lies beside its METADATA.XML"),
    ("no wavelengths", "bandID 1 of its METADATA.XML has no number in wavelengthCenterOfBand"),
    ("no bands", "its METADATA.XML has no specific/bandCharacterisation/bandID element"),
    ("fewer bands", "its METADATA.XML lists 11 bands where its spectral image has 12"),
    ("broken xml", "its METADATA.XML cannot be read"),
])
def test_a_broken_enmap_product_is_one_sentence_naming_what_is_missing(enmap, damage, missing):
    if damage == "no image":
        next(enmap.parent.glob("*SPECTRAL_IMAGE.TIF")).unlink()
    elif damage == "no wavelengths":
        write_enmap_xml(enmap, omit="wavelengthCenterOfBand")
    elif damage == "no bands":
        enmap.write_text("<level_X><specific/></level_X>")
    elif damage == "fewer bands":
        write_enmap_xml(enmap, wavelengths=[w for w, _ in ENMAP_BANDS[:11]])
    else:
        enmap.write_text("<level_X><specific>")
    with pytest.raises(InputError, match="looks like an EnMAP L2A product but") as error:
        open_raster(enmap)
    assert missing in str(error.value)
    assert str(error.value).count(". ") == 0  # one sentence


def test_other_enmap_levels_and_empty_zips_are_refused(tmp_path, enmap):
    l1c = enmap.parent / enmap.name.replace("L2A", "L1C")
    enmap.rename(l1c)
    with pytest.raises(InputError, match="is not a Level 2A"):
        open_raster(l1c)
    import zipfile

    archive = tmp_path / "ENMAP01-empty.ZIP"
    zipfile.ZipFile(archive, "w").close()
    with pytest.raises(InputError, match="the ZIP holds no single"):
        open_raster(archive)


def test_desis_reads_its_header_gains_as_reflectance_x_10000(tmp_path):
    metadata, data = write_desis(tmp_path / DESIS_ID)
    for path in (metadata, metadata.parent):
        with open_raster(path) as reader:
            assert isinstance(reader, DesisL2AReader)
            assert reader.wavelengths_um() == [w * 1e-3 for w in DESIS_WAVELENGTHS]
            assert [float(reader.band_tags(b)["fwhm"]) for b in range(8)] == DESIS_FWHM
            assert reader.bad_band_list() == [False] * 8
            assert reader.nodata == DESIS_FILL
            assert reader.transform == from_origin(500010.0, 4400010.0, 30, 30)
            assert reader.crs == rasterio.crs.CRS.from_epsg(32618)
            gains = np.array(DESIS_GAINS) * 1e-4
            offsets = np.array(DESIS_OFFSETS) * 1e-4
            want, want_valid = expected_reflectance(data, gains, offsets, DESIS_FILL)
            reflectance, valid = reader.read(Region(2, 1, 14, 17))
            np.testing.assert_array_equal(reflectance, want[:, 2:, 1:18])
            np.testing.assert_array_equal(valid, want_valid[:, 2:, 1:18])


def test_desis_without_its_header_names_it(tmp_path):
    metadata, _ = write_desis(tmp_path / DESIS_ID)
    (tmp_path / DESIS_ID / f"{DESIS_ID}-SPECTRAL_IMAGE.hdr").unlink()
    with pytest.raises(InputError, match=f"looks like a DESIS L2A product but no {DESIS_ID}-SPECTRAL_IMAGE.hdr"):
        open_raster(metadata)


@pytest.mark.parametrize("key, garbage", [("wavelength", "{401.9, n/a}"), ("data gain values", "{1.0, x}"),
                                          ("data ignore value", "none")])
def test_garbage_in_a_desis_header_is_one_sentence_and_leaves_no_file_open(tmp_path, monkeypatch, key, garbage):
    import re

    from dualsr_core.io.products import enmap as enmap_module
    from dualsr_core.io.raster import RasterReader

    opened = []

    class Recorded(RasterReader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(enmap_module, "RasterReader", Recorded)
    metadata, _ = write_desis(tmp_path / DESIS_ID)
    header = tmp_path / DESIS_ID / f"{DESIS_ID}-SPECTRAL_IMAGE.hdr"
    header.write_text(re.sub(rf"^{key} = .*$", f"{key} = {garbage}", header.read_text(), flags=re.M))
    with pytest.raises(InputError, match=f"REFERENCE .* looks like a DESIS L2A product but {DESIS_ID}-SPECTRAL_IMAGE"
                                         f".hdr '{key}' is not a list of numbers"):
        open_raster(metadata, "REFERENCE")
    assert all(reader.dataset is None for reader in opened)


def test_coarse_runs_on_an_enmap_product(tmp_path, enmap, tiny_weights):
    pytest.importorskip("torch")
    from dualsr_core.stages.coarse import super_resolve

    output = tmp_path / "enmap_x2.tif"
    super_resolve(enmap, output, 2, weights=tiny_weights[2], tile_size=34, device="cpu", precision="fp32",
                  schedule="band")
    with rasterio.open(output) as out, open_raster(enmap) as reader:
        assert (out.width, out.height, out.count) == (40, 48, len(ENMAP_BANDS))
        assert out.transform == from_origin(*ENMAP_ORIGIN, 15.0, 15.0) and out.crs == reader.crs
        assert [float(out.tags(b + 1)["wavelength"]) for b in range(out.count)] == [w for w, _ in ENMAP_BANDS]
        assert [out.tags(b + 1)["bbl"] for b in range(out.count)] == [reader.band_tags(b)["bbl"]
                                                                      for b in range(out.count)]
        assert list(out.scales) == ENMAP_GAINS and out.nodata == ENMAP_FILL
        stored = out.read()
        # Bad bands (the overlap's VNIR bands, the no-data band) are written as nodata.
        assert (stored[[5, 7, ENMAP_NO_DATA_BAND]] == ENMAP_FILL).all()
        assert (stored[0, 6:, 4:] != ENMAP_FILL).all()
    assert (tmp_path / "enmap_x2.qml").is_file()
