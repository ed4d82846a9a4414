"""dualsr_core.evaluation.evaluate on raster files: known values, tiling, exclusions, grid checks, outputs, cancel."""
import csv
import math

import numpy as np
import pytest
from rasterio.transform import from_origin

from dualsr_core.errors import Cancelled, InputError
from dualsr_core.evaluation import metrics
from dualsr_core.evaluation.evaluate import evaluate
from dualsr_core.feedback import Feedback

from ...conftest import UTM33_ORIGIN, smooth_cube

METRICS = ("PSNR", "SSIM", "SAM", "ERGAS", "RMSE", "CC")


@pytest.fixture
def pair(make_raster):
    """A smooth 6-band 37 x 29 reference and a noisy result, as files, with the arrays."""
    ref = smooth_cube(6, 37, 29, seed=3)
    rng = np.random.default_rng(4)
    res = (ref + rng.normal(0.0, 0.02, ref.shape)).astype(np.float32)
    return ref, res, make_raster(ref, "ref.tif"), make_raster(res, "res.tif")


def assert_close(report, expected):
    for key in METRICS:
        assert report[key] == pytest.approx(expected[key.lower()], rel=1e-9, abs=1e-12), key
    used = [p for p in report["PSNR_PER_BAND"] if p is not None]
    np.testing.assert_allclose(used, expected["psnr_per_band"], rtol=1e-9)


def test_identical_rasters(make_raster):
    cube = smooth_cube(5, 20, 24)
    path = make_raster(cube)
    report = evaluate(path, path, scale=4)
    assert report["PSNR"] == 100.0
    assert report["SSIM"] == pytest.approx(1.0, abs=1e-12)
    assert report["SAM"] == 0.0
    assert report["RMSE"] == 0.0 and report["ERGAS"] == 0.0
    assert report["CC"] == pytest.approx(1.0, abs=1e-12)
    assert report["PSNR_PER_BAND"] == [100.0] * 5
    assert (report["VALID_PIXELS"], report["BANDS_USED"], report["EXCLUDED_BANDS"]) == (480, 5, [])


def test_constant_offset_gives_rmse_and_psnr_by_hand(make_raster):
    ref = np.full((3, 16, 16), 0.25, np.float64)
    ref[1] = 0.5
    d = 0.03125  # exact in binary, so the difference is exactly d
    report = evaluate(make_raster(ref, "r.tif"), make_raster(ref + d, "e.tif"), data_range=2.0)
    assert report["RMSE"] == pytest.approx(d, rel=1e-12)
    assert report["PSNR"] == pytest.approx(10 * math.log10(2.0**2 / d**2), rel=1e-12)
    assert report["PSNR_PER_BAND"] == pytest.approx([10 * math.log10(4.0 / d**2)] * 3, rel=1e-12)
    assert report["ERGAS"] is None  # no scale given
    assert report["CC"] is None  # every band constant: correlation undefined


def test_scaled_spectra_have_zero_angle(make_raster):
    ref = smooth_cube(8, 16, 16)
    report = evaluate(make_raster(ref, "r.tif"), make_raster(2 * ref, "e.tif"))
    assert report["SAM"] == pytest.approx(0.0, abs=1e-9)
    assert report["CC"] == pytest.approx(1.0, abs=1e-12)


def test_per_band_psnr_by_hand(make_raster):
    ref = np.zeros((2, 12, 12), np.float32)
    res = ref.copy()
    res[0, 0, 0] = 0.5  # band 1: one error of 0.5 among 144 pixels
    report = evaluate(make_raster(ref, "r.tif"), make_raster(res, "e.tif"))
    mse = 0.25 / 144
    assert report["PSNR_PER_BAND"][0] == pytest.approx(10 * math.log10(1 / mse), rel=1e-12)
    assert report["PSNR_PER_BAND"][1] == 100.0
    assert report["PSNR"] == pytest.approx(10 * math.log10(1 / (mse / 2)), rel=1e-12)


@pytest.mark.parametrize("tile_size", [7, 13, 16, 1000])
def test_tiled_metrics_equal_whole_array_metrics(pair, tile_size):
    ref, res, ref_path, res_path = pair
    expected = metrics.evaluate_all(ref, res, data_range=1.0, scale=3)
    assert_close(evaluate(ref_path, res_path, scale=3, tile_size=tile_size), expected)


def test_integer_raster_is_compared_as_reflectance(make_raster, pair):
    ref, res, _, _ = pair
    counts = np.rint(res * 10000).astype(np.int16)
    report = evaluate(make_raster(ref, "r.tif"), make_raster(counts, "e.tif"), tile_size=10)
    expected = metrics.psnr(ref, counts.astype(np.float32) * np.float32(1e-4), data_range=1.0)
    assert report["PSNR"] == pytest.approx(expected, rel=1e-6)


def test_nodata_pixels_and_bad_bands_are_excluded(make_raster, pair):
    ref, res, _, _ = pair
    holes_ref = np.zeros(ref.shape[1:], bool)
    holes_ref[5:8, 3:20] = True
    holes_res = np.zeros(ref.shape[1:], bool)
    holes_res[30, 27] = holes_res[20:25, 0] = True
    bad = [{}, {}, {"bbl": "0"}, {}, {}, {}]

    def run(seed):
        """Excluded values differ from run to run: random, then nodata where the raster has none."""
        rng = np.random.default_rng(seed)
        r, e = ref.copy(), res.copy()
        for cube in (r, e):
            cube[:, holes_ref | holes_res] = rng.random((6, int((holes_ref | holes_res).sum())))
            cube[:, 0, 0] = rng.random(6)
            cube[2] = rng.random(cube.shape[1:])  # bad band (flagged in the reference only)
        r[0][holes_ref] = -9999.0  # nodata in band 1 of the reference
        e[4][holes_res] = -9999.0  # nodata in band 5 of the result
        e[1, 0, 0] = -9999.0  # a pixel that is nodata in one band of the result
        return evaluate(make_raster(r, f"r{seed}.tif", nodata=-9999.0, band_tags=bad),
                        make_raster(e, f"e{seed}.tif", nodata=-9999.0), scale=2, tile_size=11)

    mask = ~(holes_ref | holes_res)
    mask[0, 0] = False
    used = [0, 1, 3, 4, 5]
    expected = metrics.evaluate_all(ref[used], res[used], data_range=1.0, scale=2, mask=mask)
    for report in (run(1), run(2)):
        assert_close(report, expected)
        assert report["VALID_PIXELS"] == int(mask.sum())
        assert report["BANDS_USED"] == 5 and report["EXCLUDED_BANDS"] == [3]
        assert report["PSNR_PER_BAND"][2] is None


def test_all_nodata_band_is_dropped_with_a_warning(make_raster, pair):
    ref, res, ref_path, _ = pair
    res = res.copy()
    res[1] = np.nan
    warnings = []
    report = evaluate(ref_path, make_raster(res, "nan.tif"), feedback=Feedback(warn=warnings.append))
    keep = [0, 2, 3, 4, 5]
    assert report["PSNR"] == pytest.approx(metrics.psnr(ref[keep], res[keep], data_range=1.0), rel=1e-9)
    assert report["EXCLUDED_BANDS"] == [2]
    assert any("no pixel valid in both rasters" in w and "2" in w for w in warnings)


@pytest.mark.parametrize("change, message", [
    (dict(array=np.zeros((6, 74, 58), np.float32)), "RESULT is 58 x 74 pixels but REFERENCE is 29 x 37"),
    (dict(array=np.zeros((5, 37, 29), np.float32)), "RESULT has 5 bands but REFERENCE has 6"),
    (dict(crs="EPSG:4326"), "RESULT is in EPSG:4326 but REFERENCE is in EPSG:32633"),
    (dict(transform=from_origin(UTM33_ORIGIN[0] + 15, UTM33_ORIGIN[1], 30.0, 30.0)), "RESULT's grid .* differs"),
    (dict(transform=from_origin(*UTM33_ORIGIN, 15.0, 15.0)), r"pixel size 15 x -15"),
])
def test_mismatched_grids_raise_a_clear_error(make_raster, pair, change, message):
    _, res, ref_path, _ = pair
    kwargs = {"array": res, **change}
    other = make_raster(kwargs.pop("array"), "other.tif", **kwargs)
    with pytest.raises(InputError, match=message) as info:
        evaluate(ref_path, other)
    assert "\n" not in str(info.value)


def test_bad_parameters_raise_input_errors(pair):
    _, _, ref_path, res_path = pair
    with pytest.raises(InputError, match="DATA_RANGE must be a finite positive number"):
        evaluate(ref_path, res_path, data_range=0)
    with pytest.raises(InputError, match="SCALE must be a finite positive number"):
        evaluate(ref_path, res_path, scale=-2)


def test_outputs_are_written_and_the_csv_parses_back(pair, tmp_path):
    ref, res, ref_path, res_path = pair
    out = tmp_path / "out"
    report = evaluate(ref_path, res_path, scale=4, output_csv=out / "m.csv", output_html=out / "m.html",
                      output_plot=out / "m.png")
    assert (report["OUTPUT_CSV"], report["OUTPUT_HTML"], report["OUTPUT_PLOT"]) == (
        str(out / "m.csv"), str(out / "m.html"), str(out / "m.png"))
    assert sorted(p.name for p in out.iterdir()) == ["m.csv", "m.html", "m.png"]
    rows = list(csv.reader((out / "m.csv").open(encoding="utf-8")))
    split = rows.index([])
    table = dict(rows[1:split])
    for key in METRICS:
        assert float(table[key]) == report[key]
    assert int(table["VALID_PIXELS"]) == 37 * 29 and table["SCALE"] == "4"
    assert rows[split + 1] == ["band", "description", "wavelength_um", "psnr"]
    assert [float(r[3]) for r in rows[split + 2:]] == report["PSNR_PER_BAND"]
    text = (out / "m.html").read_text(encoding="utf-8")
    assert "<table>" in text and f"{report['PSNR']:.6g}" in text and 'src="m.png"' in text
    assert (out / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_has_wavelengths_and_descriptions(make_raster, tmp_path):
    cube = smooth_cube(3, 12, 12)
    path = make_raster(cube, wavelengths_nm=[450, 550, 650], descriptions=["blue", "green", "red"])
    evaluate(path, path, output_csv=tmp_path / "m.csv")
    rows = list(csv.reader((tmp_path / "m.csv").open(encoding="utf-8")))
    assert rows[-3:] == [["1", "blue", "0.45", "100.0"], ["2", "green", "0.55", "100.0"],
                         ["3", "red", "0.65", "100.0"]]


def test_cancel_leaves_no_output(pair, tmp_path):
    _, _, ref_path, res_path = pair
    feedback = Feedback(is_cancelled=lambda: True)
    with pytest.raises(Cancelled):
        evaluate(ref_path, res_path, tile_size=8, output_csv=tmp_path / "m.csv", feedback=feedback)
    assert not (tmp_path / "m.csv").exists()


def test_cancel_while_writing_removes_written_files(pair, tmp_path):
    _, _, ref_path, res_path = pair
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2  # after the single tile and the check before writing: during the outputs

    with pytest.raises(Cancelled):
        evaluate(ref_path, res_path, output_csv=tmp_path / "m.csv", output_html=tmp_path / "m.html",
                 feedback=Feedback(is_cancelled=cancelled))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.tif", "res.tif"]


def test_progress_reaches_one_per_tile(pair):
    _, _, ref_path, res_path = pair
    seen = []
    evaluate(ref_path, res_path, tile_size=16, feedback=Feedback(progress=seen.append))
    assert len(seen) == 3 * 2 and seen[-1] == 1.0 and seen == sorted(seen)


def test_ssim_is_none_with_a_warning_below_the_window_size(make_raster):
    path = make_raster(smooth_cube(4, 8, 30))
    warnings = []
    report = evaluate(path, path, feedback=Feedback(warn=warnings.append))
    assert report["SSIM"] is None and report["PSNR"] == 100.0
    assert any("SSIM is not computed" in w for w in warnings)
