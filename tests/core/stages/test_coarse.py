"""DualSR Coarse on raster files: grid, metadata, encoding, tiling invariance, nodata, errors, cancel."""
import numpy as np
import pytest
import rasterio
from osgeo import gdal
from PIL import Image
from rasterio.transform import from_origin

torch = pytest.importorskip("torch")

from dualsr_core.errors import Cancelled, InputError, WeightsError  # noqa: E402
from dualsr_core.feedback import Feedback  # noqa: E402
from dualsr_core.network import weights  # noqa: E402
from dualsr_core.network.model import CoarSR, CoarSRConfig  # noqa: E402
from dualsr_core.stages.coarse import super_resolve  # noqa: E402
from dualsr_core.tools.tiling import Region  # noqa: E402

from ...conftest import smooth_cube  # noqa: E402

WAVELENGTHS = [420.0 + 9.5 * b for b in range(40)]


@pytest.fixture(scope="module")
def bicubic_only_weights(tmp_path_factory):
    """Weights whose residual branch outputs exactly 0: CoarSR then returns the bicubic skip image."""
    folder = tmp_path_factory.mktemp("zero")
    paths = {}
    for scale in (2, 3):
        model = CoarSR(CoarSRConfig(scale, n_feats=8, n_blocks=1))
        with torch.no_grad():
            model.last.parametrizations.weight.original0.zero_()
            model.last.bias.zero_()
        paths[scale] = folder / f"zero_x{scale}.pt"
        weights.save(paths[scale], model, {"training_data": "none"})
    return paths


def pil_bicubic(band: np.ndarray, scale: int) -> np.ndarray:
    """Independent skip image: PIL's float bicubic resize of one band."""
    h, w = band.shape
    image = Image.fromarray(band.astype(np.float32), mode="F").resize((w * scale, h * scale), Image.BICUBIC)
    return np.asarray(image, dtype=np.float64)


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.profile, ds


def test_output_grid_crs_and_metadata(make_raster, tmp_path, tiny_weights):
    cube = smooth_cube(6, 20, 24)
    src = make_raster(cube, nodata=-1.0, wavelengths_nm=WAVELENGTHS[:6],
                      descriptions=[f"band {b + 1}" for b in range(6)],
                      transform=from_origin(364095.123, 5809965.987, 29.7, 30.3))
    out = tmp_path / "out.tif"
    super_resolve(src, out, 3, weights=tiny_weights[3], precision="fp32")
    a, b = gdal.Open(str(src)), gdal.Open(str(out))
    assert b.GetProjection() == a.GetProjection()
    gt_in, gt_out = a.GetGeoTransform(), b.GetGeoTransform()
    assert gt_out == (gt_in[0], gt_in[1] / 3, gt_in[2], gt_in[3], gt_in[4], gt_in[5] / 3)
    assert (b.RasterXSize, b.RasterYSize, b.RasterCount) == (72, 60, 6)
    for i in range(6):
        band_in, band_out = a.GetRasterBand(i + 1), b.GetRasterBand(i + 1)
        assert band_out.GetNoDataValue() == -1.0
        assert band_out.GetDescription() == f"band {i + 1}"
        assert band_out.GetMetadata() == band_in.GetMetadata()
        imagery = band_out.GetMetadata("IMAGERY")
        assert float(imagery["CENTRAL_WAVELENGTH_UM"]) == pytest.approx(WAVELENGTHS[i] / 1000)
        assert float(imagery["FWHM_UM"]) == pytest.approx((5.5 + i * 0.1) / 1000)
    structure = b.GetMetadata("IMAGE_STRUCTURE")
    assert structure["COMPRESSION"] == "DEFLATE"
    assert b.GetRasterBand(1).GetBlockSize() == [256, 256]


def test_network_with_zero_residual_returns_pil_bicubic(make_raster, tmp_path, bicubic_only_weights):
    cube = smooth_cube(7, 15, 17, seed=4)
    src = make_raster(cube)
    out = tmp_path / "out.tif"
    super_resolve(src, out, 2, weights=bicubic_only_weights[2], tile_size=16, overlap=6, precision="fp32")
    result, _, _ = read(out)
    expected = np.stack([pil_bicubic(band, 2) for band in cube])
    assert np.abs(result - expected).max() < 2e-5


@pytest.mark.parametrize("dtype, scale_factor, nodata", [("uint16", None, 0), ("int16", 2e-5, -32768)])
def test_integer_encoding_round_trips(make_raster, tmp_path, bicubic_only_weights, dtype, scale_factor, nodata):
    cube = smooth_cube(5, 12, 14, seed=5)
    factor = scale_factor or 1e-4
    counts = np.rint(cube / factor).astype(dtype)
    counts[:, 0, 0] = nodata
    src = make_raster(counts, nodata=nodata, scales=[scale_factor] * 5 if scale_factor else None)
    out = tmp_path / "out.tif"
    super_resolve(src, out, 2, weights=bicubic_only_weights[2], precision="fp32")
    result, profile, _ = read(out)
    assert profile["dtype"] == dtype and profile["nodata"] == nodata
    assert np.all(result[:, :2, :2] == nodata)
    expected = np.rint(np.stack([pil_bicubic(band, 2) for band in counts.astype(np.float64)]))
    far = np.ones(result.shape[1:], dtype=bool)
    far[:6, :6] = False  # beyond the bicubic support (2 input pixels) of the filled nodata pixel
    assert np.abs(result[:, far].astype(np.float64) - expected[:, far]).max() <= 1
    with rasterio.open(out) as ds:
        assert ds.scales == ((scale_factor,) * 5 if scale_factor else (1.0,) * 5)
    float_out = tmp_path / "float.tif"
    super_resolve(src, float_out, 2, weights=bicubic_only_weights[2], precision="fp32", output_float=True)
    as_float, profile, _ = read(float_out)
    assert profile["dtype"] == "float32"
    assert np.abs(as_float[:, far] - expected[:, far] * factor).max() < 1.01 * factor


def test_output_does_not_depend_on_tile_size(make_raster, tmp_path, tiny_weights):
    cube = smooth_cube(6, 45, 38, seed=6)
    src = make_raster(cube)
    outputs = []
    for tile in (36, 64):  # reads of 36: cores of 4 to 20 pixels inside the 16 of overlap; 64: one tile
        out = tmp_path / f"tile{tile}.tif"
        super_resolve(src, out, 2, weights=tiny_weights[2], tile_size=tile, overlap=None, precision="fp32")
        outputs.append(read(out)[0])
    data_range = float(np.ptp(outputs[1]))
    assert np.abs(outputs[0] - outputs[1]).max() < 1e-4 * data_range


def test_a_tile_size_with_no_room_inside_its_overlap_is_refused_where_the_raster_needs_tiles(make_raster, tmp_path,
                                                                                             tiny_weights):
    src = make_raster(smooth_cube(2, 30, 40, seed=6))
    with pytest.raises(InputError, match="^TILE_SIZE 32 leaves no room for output inside the overlap of 16 pixels on "
                                         "each side: give TILE_SIZE at least 33"):
        super_resolve(src, tmp_path / "out.tif", 2, weights=tiny_weights[2], tile_size=32, precision="fp32")
    assert not (tmp_path / "out.tif").exists()
    for name, options in (("one", dict(tile_size=40)), ("less", dict(tile_size=32, overlap=8))):  # one read; room
        super_resolve(src, tmp_path / f"{name}.tif", 2, weights=tiny_weights[2], precision="fp32", **options)
        assert read(tmp_path / f"{name}.tif")[0].shape == (2, 60, 80)


def test_nodata_stays_nodata_and_does_not_bleed(make_raster, tmp_path, tiny_weights):
    cube = smooth_cube(6, 24, 24, seed=7)
    results = []
    for nodata in (-9999.0, 5000.0):
        holed = cube.copy()
        holed[:, 8:12, 10:15] = nodata
        holed[2, 20, 3] = nodata
        src = make_raster(holed, name=f"in{nodata}.tif", nodata=nodata)
        out = tmp_path / f"out{nodata}.tif"
        # schedule fixed: 'auto' may pick either exact schedule, which differ in the last bits
        super_resolve(src, out, 2, weights=tiny_weights[2], precision="fp32", schedule="band")
        data, profile, _ = read(out)
        assert profile["nodata"] == nodata
        assert np.all(data[:, 16:24, 20:30] == nodata)
        assert np.all(data[2, 40:42, 6:8] == nodata) and np.all(data[1, 40:42, 6:8] != nodata)
        valid = data != nodata
        results.append(np.where(valid, data, np.nan))
    # The nodata value never reaches the network: valid pixels are identical whatever it is.
    assert np.array_equal(np.isnan(results[0]), np.isnan(results[1]))
    assert np.nanmax(np.abs(results[0] - results[1])) == 0.0


def test_fewer_than_five_bands_warns(make_raster, tmp_path, tiny_weights):
    warnings = []
    src = make_raster(smooth_cube(2, 10, 10))
    super_resolve(src, tmp_path / "out.tif", 2, weights=tiny_weights[2], feedback=Feedback(warn=warnings.append))
    assert any("repeated as neighbours" in w for w in warnings)
    assert read(tmp_path / "out.tif")[0].shape == (2, 20, 20)


def _assert_nothing_written(folder, keep=("input.tif",)):
    leftovers = sorted(p.name for p in folder.iterdir() if p.name not in keep)
    assert leftovers == []


def test_non_raster_and_empty_files_are_refused(tmp_path, tiny_weights):
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    empty = tmp_path / "empty.tif"
    empty.touch()
    with pytest.raises(InputError, match="not a raster GDAL can read"):
        super_resolve(text, tmp_path / "out.tif", 2, weights=tiny_weights[2])
    with pytest.raises(InputError, match="empty \\(0-byte\\) file"):
        super_resolve(empty, tmp_path / "out.tif", 2, weights=tiny_weights[2])
    with pytest.raises(InputError, match="does not exist"):
        super_resolve(tmp_path / "missing.tif", tmp_path / "out.tif", 2, weights=tiny_weights[2])
    _assert_nothing_written(tmp_path, keep=("notes.tif", "empty.tif"))


def test_weights_of_another_scale_and_corrupt_weights(make_raster, tmp_path, tiny_weights):
    src = make_raster(smooth_cube(5, 10, 10))
    with pytest.raises(WeightsError, match="trained for scale x3 but SCALE is x2"):
        super_resolve(src, tmp_path / "out.tif", 2, weights=tiny_weights[3])
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(tiny_weights[2].read_bytes()[:500])
    with pytest.raises(WeightsError, match="is not a DualSR weights file: it is damaged, not a torch file"):
        super_resolve(src, tmp_path / "out.tif", 2, weights=corrupt)
    corrupt.unlink()
    _assert_nothing_written(tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when no GPU is present")
def test_cuda_requested_without_gpu(make_raster, tmp_path, tiny_weights):
    src = make_raster(smooth_cube(5, 10, 10))
    with pytest.raises(InputError, match="DEVICE is 'cuda' but PyTorch sees no CUDA GPU"):
        super_resolve(src, tmp_path / "out.tif", 2, weights=tiny_weights[2], device="cuda")
    _assert_nothing_written(tmp_path)


@pytest.mark.gpu
def test_a_run_on_cuda_writes_what_the_cpu_writes(cuda, make_raster, tmp_path):
    src = make_raster(smooth_cube(9, 40, 30), nodata=-1.0)
    for device in ("cpu", "cuda"):
        super_resolve(src, tmp_path / f"{device}.tif", 2, device=device, precision="fp32", tile_size=16)
    with rasterio.open(tmp_path / "cpu.tif") as on_cpu, rasterio.open(tmp_path / "cuda.tif") as on_cuda:
        assert on_cuda.profile == on_cpu.profile  # grid, CRS, encoding, nodata
        np.testing.assert_allclose(on_cuda.read(), on_cpu.read(), atol=5e-3)  # TF32 convolutions


def test_cancel_leaves_no_output(make_raster, tmp_path, tiny_weights):
    src = make_raster(smooth_cube(5, 40, 40))  # 16 tiles of 34 pixels
    calls = []

    def cancel_after_two_tiles():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        super_resolve(src, tmp_path / "out.tif", 2, weights=tiny_weights[2], tile_size=34,
                      feedback=Feedback(is_cancelled=cancel_after_two_tiles))
    assert len(calls) == 3
    _assert_nothing_written(tmp_path)


def test_runs_of_bands_carry_the_state_exactly(make_raster, tmp_path, tiny_weights, monkeypatch):
    """Bands are read, run and written in runs of IO_BANDS; the result equals one pass over all bands."""
    from dualsr_core.stages import coarse

    src = make_raster(smooth_cube(37, 12, 10, seed=8), nodata=-1.0)
    outputs = []
    for io_bands in (16, 1000):
        monkeypatch.setattr(coarse, "IO_BANDS", io_bands)
        out = tmp_path / f"io{io_bands}.tif"
        super_resolve(src, out, 2, weights=tiny_weights[2], precision="fp32", schedule="band")
        outputs.append(read(out)[0])
    assert np.array_equal(outputs[0], outputs[1])


@pytest.mark.skipif(not __import__("dualsr_core.network.int8", fromlist=["x"]).openvino_available(),
                    reason="OpenVINO is not installed")
def test_precision_int8_writes_a_raster_close_to_fp32_and_auto_times_the_candidates(make_raster, tmp_path,
                                                                                   monkeypatch):
    from dualsr_core.network import engine

    monkeypatch.setattr(engine, "_cpu_flags", lambda: {"avx2", "avx512_vnni"})  # no native bf16: fp32 and int8
    monkeypatch.setattr(engine, "_measured_precisions", {})
    cube = smooth_cube(12, 40, 40)
    src = make_raster(cube, wavelengths_nm=WAVELENGTHS[:12])
    outputs, logs = {}, {}
    for precision in ("fp32", "int8", "auto"):
        lines = []
        outputs[precision] = tmp_path / f"{precision}.tif"
        result = super_resolve(src, outputs[precision], 2, precision=precision, output_float=True,
                               feedback=Feedback(log=lines.append))
        logs[precision] = "\n".join(lines)
        assert result["PRECISION"] == ("fp32" if precision == "auto" else precision)
    fp32, in_int8 = read(outputs["fp32"])[0], read(outputs["int8"])[0]
    assert "precision int8 (as asked)" in logs["int8"]
    assert ("precision fp32 (auto: a job of 19,200 band-pixels is too small to repay timing fp32, int8)"
            in logs["auto"])
    assert 0 < np.abs(in_int8 - fp32).max() < 0.02 and np.sqrt(np.mean((in_int8 - fp32) ** 2)) < 0.002
    # A large job (here: any job) times both on the first tile and writes what the chosen precision writes.
    monkeypatch.setattr(engine, "MEASURE_MIN_BAND_PIXELS", 0)
    lines = []
    result = super_resolve(src, tmp_path / "measured.tif", 2, precision="auto", output_float=True,
                           feedback=Feedback(log=lines.append))
    chosen = result["PRECISION"]
    assert chosen in ("fp32", "int8")
    measured = "\n".join(lines)
    assert "precision auto (auto: fp32, int8 to be timed on the first tile)" in measured
    assert f"Precision {chosen} (auto: chosen by measurement on {engine.PRECISION_TRIAL_BANDS} band(s) of the first " \
           "tile, best of 3: fp32 " \
           in measured and "int8" in measured.split(f"Precision {chosen} (")[1]
    np.testing.assert_array_equal(read(tmp_path / "measured.tif")[0], read(outputs[chosen])[0])


def test_a_part_of_a_job_chooses_its_precision_as_the_whole_job(make_raster, tmp_path, monkeypatch):
    """A batch stripe is a region of the scene: PRECISION auto measures when the whole scene is large
    enough, though the stripe alone is not (else stripes of one scene could run different precisions)."""
    from dualsr_core.network import engine

    monkeypatch.setattr(engine, "_cpu_flags", lambda: {"avx2", "avx512_vnni"})  # no native bf16
    monkeypatch.setattr(engine, "precision_candidates", lambda: ["fp32", "int8"])
    monkeypatch.setattr(engine, "MEASURE_MIN_BAND_PIXELS", 10_000)
    monkeypatch.setattr(engine.CoarseEngine, "_measure_precision",
                        lambda self, *args: setattr(self, "precision", "fp32"))
    src = make_raster(smooth_cube(12, 40, 40), wavelengths_nm=WAVELENGTHS[:12])
    stripe = Region(0, 0, 10, 40)  # 4,800 band-pixels of a 19,200 band-pixel scene
    logs = {}
    for name, job_pixels in (("alone", None), ("part", 40 * 40)):
        lines = []
        super_resolve(src, tmp_path / f"{name}.tif", 2, region=stripe, job_pixels=job_pixels,
                      feedback=Feedback(log=lines.append))
        logs[name] = "\n".join(lines)
    assert "auto: a job of 4,800 band-pixels is too small to repay timing fp32, int8" in logs["alone"]
    assert "precision auto (auto: fp32, int8 to be timed on the first tile)" in logs["part"]


@pytest.mark.parametrize("tiles", [10, 25])
def test_time_estimate_leaves_out_the_first_tile_warm_up(monkeypatch, tiles):
    """The first tile takes 9 s (warm-up and calibration), the others 1 s: the estimate must land within 30 % of
    the real time (estimated from the first tile it said 90 s for a 26 s run)."""
    import re
    from types import SimpleNamespace

    from dualsr_core.stages import coarse

    clock = [0.0]
    monkeypatch.setattr(coarse.time, "perf_counter", lambda: clock[0])
    tile = SimpleNamespace(read=SimpleNamespace(height=64, width=64))
    units = [SimpleNamespace(tile=tile, bands=[0, 1], network=True, last_of_tile=True) for _ in range(tiles)]
    logs = []
    progress = coarse._Progress(Feedback(log=logs.append), units, tiles)
    for index, unit in enumerate(units):
        clock[0] += 9.0 if index == 0 else 1.0
        progress.unit_done(unit)
    real = clock[0]
    [estimate] = [float(m.group(1)) for m in map(re.compile(r"Estimated run time (\d+) s").search, logs) if m]
    assert abs(estimate - real) <= 0.3 * real, logs
    assert "with the warm-up and the calibration" in logs[0]
