"""Real-scene handling: ENVI input, bad bands, EXTENT in another CRS, band order and subsets,
output formats, and nothing left behind by an interrupted run."""
import numpy as np
import pytest
import rasterio
from osgeo import gdal, osr
from rasterio.transform import from_origin

torch = pytest.importorskip("torch")

from dualsr_core.errors import InputError  # noqa: E402
from dualsr_core.stages import coarse  # noqa: E402
from dualsr_core.stages.coarse import super_resolve  # noqa: E402
from dualsr_core.tools.tiling import Region  # noqa: E402

from ...conftest import ROOT, smooth_cube  # noqa: E402

SAMPLE = ROOT / "sample" / "enmap_potsdam.tif"  # EnMAP L2A as delivered: int16, scale 1e-4, 6 bad bands


def write_envi(folder, counts, wavelengths, fwhm, bbl, ignore, factor):
    """An ENVI file written byte by byte here (independent of GDAL's ENVI writer)."""
    bands, lines, samples = counts.shape
    counts.astype("<u2").tofile(folder / "scene.img")
    header = [
        "ENVI", f"samples = {samples}", f"lines = {lines}", f"bands = {bands}", "header offset = 0",
        "file type = ENVI Standard", "data type = 12", "interleave = bsq", "byte order = 0",
        "map info = {UTM, 1, 1, 364095.0, 5809965.0, 30, 30, 33, North, WGS-84}",
        "wavelength units = Nanometers",
        "wavelength = {" + ", ".join(f"{w:.2f}" for w in wavelengths) + "}",
        "fwhm = {" + ", ".join(f"{f:.2f}" for f in fwhm) + "}",
        "bbl = {" + ", ".join(str(b) for b in bbl) + "}",
        f"data ignore value = {ignore}", f"reflectance scale factor = {factor}",
    ]
    (folder / "scene.hdr").write_text("\n".join(header) + "\n")
    return folder / "scene.img"


@pytest.fixture
def envi_scene(tmp_path):
    cube = smooth_cube(8, 14, 12, seed=11)
    counts = np.rint(cube * 10000).astype(np.uint16)
    counts[:, 3, 4] = 0
    bbl = [1, 1, 1, 0, 1, 1, 1, 1]
    wavelengths = [420 + 15.5 * b for b in range(8)]
    fwhm = [6 + 0.5 * b for b in range(8)]
    return write_envi(tmp_path, counts, wavelengths, fwhm, bbl, 0, 10000), counts, wavelengths, fwhm, bbl


def test_envi_input_metadata_encoding_and_bad_bands(envi_scene, tmp_path, tiny_weights):
    src, counts, wavelengths, fwhm, bbl = envi_scene
    out = tmp_path / "out.tif"
    super_resolve(src, out, 2, weights=tiny_weights[2], precision="fp32")
    with rasterio.open(out) as ds:
        data = ds.read()
        assert ds.dtypes[0] == "uint16" and ds.nodata == 0
        assert ds.scales == (1e-4,) * 8
        assert (ds.width, ds.height) == (24, 28)
        assert ds.transform == from_origin(364095.0, 5809965.0, 15.0, 15.0)
        for b in range(8):
            tags = ds.tags(b + 1)
            assert float(tags["wavelength"]) == pytest.approx(wavelengths[b])
            assert float(tags["fwhm"]) == pytest.approx(fwhm[b])
            assert tags["bbl"] == str(bbl[b]) and tags["wavelength_units"] == "Nanometers"
    assert np.all(data[3] == 0), "the bad band is written as nodata"
    assert np.all(data[:, 6:8, 8:10] == 0), "the ignored pixel stays nodata"
    good = [b for b in range(8) if bbl[b]]
    assert np.all(data[good][:, 0:6, :] > 0)
    # Reflectance in, reflectance x 10000 out: the output is near the input values.
    assert abs(float(np.median(data[good, ::2, ::2])) - float(np.median(counts[good]))) < 800


def test_bad_band_values_never_influence_good_bands(envi_scene, tmp_path, tiny_weights):
    src, counts, wavelengths, fwhm, bbl = envi_scene
    super_resolve(src, tmp_path / "a.tif", 2, weights=tiny_weights[2], precision="fp32", schedule="band")
    changed = counts.copy()
    changed[3] = np.random.default_rng(0).integers(1, 65000, changed[3].shape)
    src2 = write_envi(tmp_path, changed, wavelengths, fwhm, bbl, 0, 10000)
    super_resolve(src2, tmp_path / "b.tif", 2, weights=tiny_weights[2], precision="fp32", schedule="band",
                  bad_bands="bicubic")
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        first, second = a.read(), b.read()
    good = [i for i in range(8) if bbl[i]]
    assert np.array_equal(first[good], second[good])
    assert np.any(second[3] > 0), "bicubic mode writes the bad band"


def test_all_nodata_band_is_treated_as_bad(make_raster, tmp_path, tiny_weights):
    cube = smooth_cube(7, 10, 10, seed=3)
    cube[2] = -1.0
    wavelengths = [450 + 10 * b for b in range(7)]
    src = make_raster(cube, nodata=-1.0, wavelengths_nm=wavelengths)
    kept = [0, 1, 3, 4, 5, 6]
    without = make_raster(cube[kept], name="without.tif", nodata=-1.0, wavelengths_nm=[wavelengths[b] for b in kept])
    logs = []
    from dualsr_core.feedback import Feedback

    super_resolve(src, tmp_path / "out.tif", 2, weights=tiny_weights[2], precision="fp32",
                  feedback=Feedback(log=logs.append))
    assert any("bad band(s)" in line and ": 3)" in line for line in logs)
    super_resolve(without, tmp_path / "without_out.tif", 2, weights=tiny_weights[2], precision="fp32")
    with rasterio.open(tmp_path / "out.tif") as out, rasterio.open(tmp_path / "without_out.tif") as reference:
        result = out.read()
        assert (result[2] == -1.0).all()  # written as nodata
        # never a neighbour: the other bands are what a raster without that band gives
        np.testing.assert_array_equal(result[kept], reference.read())


def utm_raster(make_raster, **kwargs):
    return make_raster(smooth_cube(6, 40, 36, seed=5), wavelengths_nm=[480 + 12 * b for b in range(6)],
                       transform=from_origin(364095.0, 5809965.0, 30.0, 30.0), **kwargs)


def test_extent_in_wgs84_on_a_utm_raster(make_raster, tmp_path, tiny_weights):
    src = utm_raster(make_raster)
    lon_lat = (13.0045, 52.4180, 13.0120, 52.4215)  # inside the raster
    super_resolve(src, tmp_path / "full.tif", 2, weights=tiny_weights[2], precision="fp32")
    super_resolve(src, tmp_path / "part.tif", 2, weights=tiny_weights[2], precision="fp32",
                  extent=lon_lat, extent_crs="EPSG:4326")
    # The expected window, computed here with OSR and plain arithmetic.
    wgs84, utm = osr.SpatialReference(), osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    utm.ImportFromEPSG(32633)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    xmin, ymin, xmax, ymax = osr.CoordinateTransformation(wgs84, utm).TransformBounds(*lon_lat, 21)
    col0, col1 = int(np.floor((xmin - 364095.0) / 30)), int(np.ceil((xmax - 364095.0) / 30))
    row0, row1 = int(np.floor((5809965.0 - ymax) / 30)), int(np.ceil((5809965.0 - ymin) / 30))
    with rasterio.open(tmp_path / "part.tif") as part, rasterio.open(tmp_path / "full.tif") as full:
        assert part.bounds == pytest.approx((364095.0 + 30 * col0, 5809965.0 - 30 * row1,
                                             364095.0 + 30 * col1, 5809965.0 - 30 * row0))
        assert (part.width, part.height) == (2 * (col1 - col0), 2 * (row1 - row0))
        window = full.read()[:, 2 * row0:2 * row1, 2 * col0:2 * col1]
        assert np.abs(part.read() - window).max() < 1e-4 * float(np.ptp(window))


def test_extent_outside_the_raster_is_refused(make_raster, tmp_path, tiny_weights):
    src = utm_raster(make_raster)
    with pytest.raises(InputError, match="does not overlap INPUT"):
        super_resolve(src, tmp_path / "o.tif", 2, weights=tiny_weights[2], extent=(2.0, 48.0, 2.1, 48.1),
                      extent_crs="EPSG:4326")
    assert not (tmp_path / "o.tif").exists()


def test_shuffled_band_order_gives_the_same_values(make_raster, tmp_path, tiny_weights):
    cube = smooth_cube(9, 12, 12, seed=6)
    wavelengths = [400 + 10 * b for b in range(9)]
    permutation = [4, 0, 7, 2, 8, 1, 6, 3, 5]
    make_raster(cube, name="ordered.tif", wavelengths_nm=wavelengths)
    make_raster(cube[permutation], name="shuffled.tif", wavelengths_nm=[wavelengths[p] for p in permutation])
    for name in ("ordered", "shuffled"):
        super_resolve(tmp_path / f"{name}.tif", tmp_path / f"{name}_x2.tif", 2, weights=tiny_weights[2],
                      precision="fp32")
    with rasterio.open(tmp_path / "ordered_x2.tif") as a, rasterio.open(tmp_path / "shuffled_x2.tif") as b:
        ordered, shuffled = a.read(), b.read()
        assert [b.tags(i + 1)["wavelength"] for i in range(9)] == [str(wavelengths[p]) for p in permutation]
    assert np.abs(ordered[permutation] - shuffled).max() < 1e-6


def test_band_subset(make_raster, tmp_path, tiny_weights):
    src = utm_raster(make_raster, nodata=-2.0)
    super_resolve(src, tmp_path / "sub.tif", 2, weights=tiny_weights[2], bands=[4, 1, 2], precision="fp32")
    with rasterio.open(tmp_path / "sub.tif") as ds, rasterio.open(src) as inp:
        assert ds.count == 3 and ds.nodata == -2.0
        assert [ds.tags(i + 1)["wavelength"] for i in range(3)] == [inp.tags(b + 1)["wavelength"] for b in (4, 1, 2)]
        assert ds.transform == from_origin(364095.0, 5809965.0, 15.0, 15.0) and ds.crs == inp.crs
    with pytest.raises(InputError, match="BANDS 9 do not exist"):
        super_resolve(src, tmp_path / "bad.tif", 2, weights=tiny_weights[2], bands=[8])


def test_envi_output_has_a_complete_header(envi_scene, tmp_path, tiny_weights):
    src, _, wavelengths, _, bbl = envi_scene
    out = tmp_path / "result.img"
    super_resolve(src, out, 2, weights=tiny_weights[2])
    header = (tmp_path / "result.hdr").read_text()
    for item in ("wavelength = {", "fwhm = {", "bbl = {1, 1, 1, 0, 1, 1, 1, 1}", "wavelength units = Nanometers",
                 "data ignore value = 0", "reflectance scale factor = 10000", "map info = {UTM"):
        assert item in header, item
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".", "result"))) == \
        ["result.hdr", "result.img", "result.img.aux.xml"]
    with rasterio.open(out) as ds:
        assert ds.count == 8 and ds.width == 24


def test_cloud_optimised_geotiff(make_raster, tmp_path, tiny_weights):
    src = utm_raster(make_raster)
    out = tmp_path / "cog.tif"
    super_resolve(src, out, 2, weights=tiny_weights[2], driver="COG")
    dataset = gdal.Open(str(out))
    assert dataset.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == "COG"
    assert dataset.GetRasterBand(1).GetMetadataItem("wavelength") == "480"
    assert float(dataset.GetRasterBand(1).GetMetadataItem("CENTRAL_WAVELENGTH_UM", "IMAGERY")) == pytest.approx(0.48)


def test_an_exception_mid_run_leaves_nothing(make_raster, tmp_path, tiny_weights, monkeypatch):
    src = utm_raster(make_raster)
    from dualsr_core.network import engine as engine_module

    calls = []
    original = engine_module.CoarseEngine.run_from

    def failing(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory (simulated)")
        return original(self, *args)

    monkeypatch.setattr(engine_module.CoarseEngine, "run_from", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        coarse.super_resolve(src, tmp_path / "out.tif", 2, weights=tiny_weights[2], tile_size=34)  # 8 tiles
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.tif"]


def test_real_enmap_sample(tmp_path, tiny_weights):
    out = tmp_path / "enmap_x2.tif"
    super_resolve(SAMPLE, out, 2, weights=tiny_weights[2], region=Region(16, 8, 32, 32), schedule="band")
    with rasterio.open(SAMPLE) as src, rasterio.open(out) as ds:
        bad = [b for b in range(src.count) if src.tags(b + 1)["bbl"] == "0"]
        assert len(bad) == 6
        data = ds.read()
        assert ds.scales == src.scales and ds.nodata == -32768 and ds.dtypes[0] == "int16" == src.dtypes[0]
        assert np.all(data[bad] == -32768)
        good = [b for b in range(src.count) if b not in bad]
        assert np.all(data[good] != -32768)
        assert ds.transform.a == src.transform.a / 2 and ds.crs == src.crs
        assert (ds.transform.c, ds.transform.f) == (src.transform.c + 8 * 30, src.transform.f - 16 * 30)


def test_hdf5_container_names_its_subdatasets_and_a_subdataset_works(tmp_path, tiny_weights):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "scene.h5"
    with h5py.File(path, "w") as f:
        f["reflectance"] = smooth_cube(6, 10, 12, seed=8)
        f["quality"] = np.zeros((10, 12), np.uint8)
    with pytest.raises(InputError, match=r"container of 2 subdatasets \(quality, reflectance\).*gdal_translate -of "
                                         r"VRT 'HDF5:\".*scene.h5\"://quality' '.*scene_quality.vrt'"):
        super_resolve(path, tmp_path / "out.tif", 2, weights=tiny_weights[2])
    subdataset = f'HDF5:"{path}"://reflectance'
    super_resolve(subdataset, tmp_path / "out.tif", 2, weights=tiny_weights[2])
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert (ds.count, ds.width, ds.height) == (6, 24, 20)
