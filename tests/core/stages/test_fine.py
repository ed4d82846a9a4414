"""DualSR Fine: back-projection against an independent numpy computation, tiled raster version."""
import re

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from dualsr_core.errors import InputError
from dualsr_core.feedback import Feedback
from dualsr_core.stages.coarse import super_resolve
from dualsr_core.stages.fine import back_project, refine

from ...conftest import smooth_cube, write_raster
from ...reference import independent_back_projection, matlab_resize, matlab_resize_axis


def test_test_resize_matches_a_hand_computation():
    # imresize([1 2 3 4], 0.5): centre u = 1.5, ten taps -3..6 of 0.5*cubic(0.5*(u - k)) on the
    # mirrored row [.. 3 2 1 | 1 2 3 4 | 4 3 ..], worked out by hand: 187/128 and 453/128.
    row = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    assert np.allclose(matlab_resize_axis(row, 2, 2), [[[187 / 128, 453 / 128]]])


def test_one_iteration_equals_the_independent_computation():
    u = smooth_cube(8, 24, 20, seed=1).astype(np.float64)
    v = smooth_cube(8, 12, 10, seed=2).astype(np.float64)
    result, weights = back_project(u, v, 1)
    expected, c = independent_back_projection(u, v)
    assert weights == [pytest.approx(c, abs=1e-9)]
    assert np.abs(result - expected).max() < 1e-9


def test_small_angle_weight_is_not_capped_and_large_angle_is_capped_at_one():
    u = smooth_cube(8, 24, 20, seed=3).astype(np.float64)
    v = matlab_resize(u, (12, 10)) * 1.05 + 0.002  # nearly parallel spectra: angle well below 1 degree
    _, weights = back_project(u, v, 1)
    _, c = independent_back_projection(u, v)
    assert 0 < weights[0] < 1 and weights[0] == pytest.approx(c, rel=1e-9)
    _, capped = back_project(u, smooth_cube(8, 12, 10, seed=9).astype(np.float64), 1)
    assert capped == [1.0]


def test_consistent_input_is_left_unchanged():
    u = smooth_cube(6, 16, 16, seed=4).astype(np.float64)
    v = matlab_resize(u, (8, 8))
    result, weights = back_project(u, v, 1)
    assert np.abs(result - u).max() < 1e-12


def test_iterations_repeat_the_step():
    u = smooth_cube(6, 16, 12, seed=5).astype(np.float64)
    v = smooth_cube(6, 8, 6, seed=6).astype(np.float64)
    twice, weights = back_project(u, v, 2)
    first, c1 = independent_back_projection(u, v)
    second, c2 = independent_back_projection(first, v)
    assert weights == [pytest.approx(c1, abs=1e-9), pytest.approx(c2, abs=1e-9)]
    assert np.abs(twice - second).max() < 1e-9


@pytest.fixture
def fine_rasters(tmp_path):
    lr = smooth_cube(6, 13, 11, seed=1)
    u = smooth_cube(6, 52, 44, seed=2)
    v = smooth_cube(6, 26, 22, seed=3)
    write_raster(tmp_path / "lr.tif", lr, transform=from_origin(300000, 5800000, 30, 30))
    write_raster(tmp_path / "u.tif", u, transform=from_origin(300000, 5800000, 7.5, 7.5))
    write_raster(tmp_path / "v.tif", v, transform=from_origin(300000, 5800000, 15, 15))
    return tmp_path, u, v


@pytest.mark.parametrize("tile", [3, 64])
def test_tiled_raster_refinement_equals_whole_array(fine_rasters, tile):
    folder, u, v = fine_rasters
    out = folder / f"out{tile}.tif"
    result = refine(folder / "lr.tif", out, 4, coarse_path=folder / "u.tif", reference_path=folder / "v.tif",
                    iterations=2, tile_size=tile, output_float=True)
    expected, weights = back_project(u, v, 2)
    with rasterio.open(out) as ds:
        got = ds.read()
        assert ds.transform.a == 7.5 and (ds.width, ds.height) == (44, 52)
    assert np.abs(got - expected).max() < 1e-6
    assert result["WEIGHTS_C"] == pytest.approx(weights, rel=1e-6)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["lr.tif", "u.tif", "v.tif", out.name])


def test_odd_scale_uses_the_input_as_reference(tmp_path):
    lr = smooth_cube(5, 8, 9, seed=7)
    u = smooth_cube(5, 24, 27, seed=8)
    write_raster(tmp_path / "lr.tif", lr, transform=from_origin(300000, 5800000, 30, 30))
    write_raster(tmp_path / "u.tif", u, transform=from_origin(300000, 5800000, 10, 10))
    refine(tmp_path / "lr.tif", tmp_path / "out.tif", 3, coarse_path=tmp_path / "u.tif", output_float=True)
    expected, _ = independent_back_projection(u.astype(np.float64), lr.astype(np.float64))
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert np.abs(ds.read() - expected).max() < 1e-5


def test_a_reference_given_at_x3_is_said_to_be_unused_and_the_input_is_the_reference(tmp_path):
    lr = smooth_cube(5, 8, 9, seed=7)
    u = smooth_cube(5, 24, 27, seed=8)
    write_raster(tmp_path / "lr.tif", lr, transform=from_origin(300000, 5800000, 30, 30))
    write_raster(tmp_path / "u.tif", u, transform=from_origin(300000, 5800000, 10, 10))
    warnings = []
    refine(tmp_path / "lr.tif", tmp_path / "out.tif", 3, coarse_path=tmp_path / "u.tif",
           reference_path=tmp_path / "u.tif", output_float=True, feedback=Feedback(warn=warnings.append))
    assert warnings == ["REFERENCE is not used at x3: the reference is the input itself."]
    expected, _ = independent_back_projection(u.astype(np.float64), lr.astype(np.float64))
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert np.abs(ds.read() - expected).max() < 1e-5
    with pytest.raises(InputError, match="OUTPUT '.*u.tif' is REFERENCE"):  # unused, and still an input
        refine(tmp_path / "lr.tif", tmp_path / "u.tif", 3, coarse_path=tmp_path / "out.tif",
               reference_path=tmp_path / "u.tif")


def test_cog_for_an_envi_name_is_refused_before_any_coarse_run(fine_rasters):
    folder, _, _ = fine_rasters
    logs = []
    with pytest.raises(InputError, match="OUTPUT 'out.img' names an ENVI file but COG was asked for"):
        refine(folder / "lr.tif", folder / "out.img", 4, driver="COG", feedback=Feedback(log=logs.append))
    assert logs == [] and sorted(p.name for p in folder.iterdir()) == ["lr.tif", "u.tif", "v.tif"]


def test_mismatched_coarse_grid_is_refused(fine_rasters):
    folder, u, _ = fine_rasters
    write_raster(folder / "wrong.tif", u[:, :40], transform=from_origin(300000, 5800000, 7.5, 7.5))
    with pytest.raises(InputError, match="COARSE is 44 x 40 pixels but must be the input grid x4"):
        refine(folder / "lr.tif", folder / "out.tif", 4, coarse_path=folder / "wrong.tif",
               reference_path=folder / "v.tif")
    assert not (folder / "out.tif").exists()


def test_a_coarse_raster_on_the_wrong_grid_is_refused_before_any_stage(fine_rasters, tiny_weights):
    """At x4 without REFERENCE the coarse x2 reference is computed first: COARSE is checked before it."""
    folder, u, _ = fine_rasters
    write_raster(folder / "wrong.tif", u[:, :40], transform=from_origin(300000, 5800000, 7.5, 7.5))
    logs, fractions = [], []
    with pytest.raises(InputError, match="COARSE is 44 x 40 pixels but must be the input grid x4"):
        refine(folder / "lr.tif", folder / "out.tif", 4, coarse_path=folder / "wrong.tif",
               reference_weights=tiny_weights[2], feedback=Feedback(log=logs.append, progress=fractions.append))
    assert logs == [] and fractions == []
    assert sorted(p.name for p in folder.iterdir()) == ["lr.tif", "u.tif", "v.tif", "wrong.tif"]


@pytest.mark.parametrize("name, shift", [("COARSE", 3.75), ("REFERENCE", 1e-3)])
def test_a_raster_off_the_input_grid_is_refused_by_name(fine_rasters, name, shift):
    """Right size and pixel size, origin moved by half a pixel of U (or a millimetre of V)."""
    folder, u, v = fine_rasters
    cube, pixel = (u, 7.5) if name == "COARSE" else (v, 15)
    write_raster(folder / "shifted.tif", cube, transform=from_origin(300000 + shift, 5800000, pixel, pixel))
    given = dict(coarse_path=folder / "u.tif", reference_path=folder / "v.tif")
    given["coarse_path" if name == "COARSE" else "reference_path"] = folder / "shifted.tif"
    with pytest.raises(InputError, match=f"{name} is not on the input's grid divided by"):
        refine(folder / "lr.tif", folder / "out.tif", 4, **given)
    assert not (folder / "out.tif").exists()


def test_bad_bands_pass_through_and_do_not_block_the_fine_stage(tmp_path, tiny_weights):
    cube = smooth_cube(7, 12, 10, seed=9)
    cube[3] = -1.0  # an all-nodata band, as EnMAP's water-vapour bands
    tags = [{"bbl": "0" if b == 5 else "1"} for b in range(7)]
    src = write_raster(tmp_path / "lr.tif", cube, nodata=-1.0, band_tags=tags)
    out = tmp_path / "x4.tif"
    result = refine(src, out, 4, weights=tiny_weights[4], reference_weights=tiny_weights[2], precision="fp32")
    assert 0 < result["WEIGHTS_C"][0] <= 1
    with rasterio.open(out) as ds:
        data = ds.read()
    assert np.all(data[[3, 5]] == -1.0)
    assert np.all(data[[0, 1, 2, 4, 6]] != -1.0)


def test_progress_moves_through_the_whole_run_and_the_log_names_stages_in_words(tmp_path, tiny_weights):
    """DualSR x4: the bar never goes back and passes 75 % before the end (it sat at one value through Fine's own
    work); the log says "coarse x4 result" and "reference", not U and V."""
    src = write_raster(tmp_path / "lr.tif", smooth_cube(5, 24, 20, seed=3))
    fractions, logs = [], []
    refine(src, tmp_path / "x4.tif", 4, weights=tiny_weights[4], reference_weights=tiny_weights[2], precision="fp32",
           feedback=Feedback(progress=fractions.append, log=logs.append))  # one tile: Fine's step went 2/3 to 1
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(0.75 < f < 0.99 for f in fractions), fractions
    assert len({round(f, 2) for f in fractions if f >= 0.8}) >= 3, "Fine's own work reports its progress"
    text = "\n".join(logs)
    assert "for the coarse x4 result" in text and "for the reference (the coarse x2 result)" in text
    stage_names = re.compile(r"(?<![\w/\\.-])[UV](?![\w/\\-])")  # U or V as a word: "U.", "D(U)", not "Using"
    assert not any(stage_names.search(line) for line in logs), logs


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("stages", ["dualsr", "fine"])
def test_nodata_stays_per_band(tmp_path, tiny_weights, scale, stages):
    """A -inf in band 3 of one pixel is nodata in band 3 only, exactly as Coarse writes it, and the result
    equals that of the same input with the value set to nodata. DualSR computes the coarse results itself;
    Fine is given them (COARSE, and REFERENCE at x4)."""
    cube = smooth_cube(8, 20, 18, seed=4)
    holed = {}
    for name, value in (("inf", -np.inf), ("nodata", -1.0)):
        changed = cube.copy()
        changed[3, 9, 7] = value
        holed[name] = write_raster(tmp_path / f"{name}.tif", changed, nodata=-1.0)
    coarse = dict(precision="fp32", schedule="band")
    results = {}
    for name, src in holed.items():
        super_resolve(src, tmp_path / f"{name}_coarse.tif", scale, weights=tiny_weights[scale], **coarse)
        given = {}
        if stages == "fine":
            given["coarse_path"] = tmp_path / f"{name}_coarse.tif"
            if scale == 4:
                super_resolve(src, tmp_path / f"{name}_half.tif", 2, weights=tiny_weights[2], **coarse)
                given["reference_path"] = tmp_path / f"{name}_half.tif"
        out = tmp_path / f"{name}_x{scale}.tif"
        refine(src, out, scale, weights=tiny_weights[scale], reference_weights=tiny_weights[2], **coarse, **given)
        with rasterio.open(out) as ds:
            results[name] = ds.read()
    with rasterio.open(tmp_path / "nodata_coarse.tif") as ds:
        coarse_nodata = ds.read() == -1.0
    assert coarse_nodata.sum() == coarse_nodata[3].sum() == scale * scale  # Coarse: that pixel of band 3 only
    assert np.array_equal(results["inf"] == -1.0, coarse_nodata)  # the other 7 bands are valid at that pixel
    assert np.array_equal(results["inf"], results["nodata"])
    assert np.isfinite(results["inf"]).all()


def test_the_extract_reads_windows_in_groups_of_bands_within_the_budget(tmp_path, monkeypatch):
    from dualsr_core.io.raster import RasterReader
    from dualsr_core.stages.fine import _extract
    from dualsr_core.tools import tiling
    from dualsr_core.tools.tiling import Region

    cube = smooth_cube(8, 30, 40).astype(np.float32)
    cube[:, 3, 5] = -1.0
    path = write_raster(tmp_path / "in.tif", cube, nodata=-1.0)
    region, bands = Region(2, 4, 25, 33), [5, 1, 3, 0, 7]
    monkeypatch.setattr(tiling, "READ_BYTES", 25 * 33 * 4 * 2, raising=False)  # 2 bands of the window
    reads = []
    read = RasterReader.read

    def recorded(self, window, bands=None):
        reads.append(window.height * window.width * (self.count if bands is None else len(bands)) * 4)
        return read(self, window, bands)

    monkeypatch.setattr(RasterReader, "read", recorded)
    with RasterReader(path) as reader:
        _extract(reader, tmp_path / "low.tif", region, bands, Feedback())
        want, want_valid = read(reader, region, bands)
    assert reads and max(reads) <= tiling.READ_BYTES
    with rasterio.open(tmp_path / "low.tif") as written:
        np.testing.assert_array_equal(written.read(), np.where(want_valid, want, np.nan))


def test_dualsr_x4_gives_each_warning_of_its_stages_once(tmp_path, tiny_weights):
    """Both coarse stages find the input without a CRS; the user reads it once."""
    src = write_raster(tmp_path / "lr.tif", smooth_cube(4, 10, 10, seed=2), crs=None)
    warnings = []
    refine(src, tmp_path / "x4.tif", 4, weights=tiny_weights[4], reference_weights=tiny_weights[2], precision="fp32",
           feedback=Feedback(warn=warnings.append))
    assert len(warnings) == len(set(warnings)) and any("no coordinate reference system" in w for w in warnings)
