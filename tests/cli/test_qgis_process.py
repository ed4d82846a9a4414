"""The plugin through the qgis_process executable, as a shell user runs it."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal

from ..conftest import smooth_cube
from .conftest import QGIS_PROCESS, failed_with, qgis_process

pytestmark = pytest.mark.qgis
if QGIS_PROCESS is None:
    pytest.skip("qgis_process is not installed", allow_module_level=True)


def test_list_shows_the_provider(qgis_env):
    listing = qgis_process(qgis_env, "list")
    assert listing.returncode == 0
    assert re.search(r"^DualSR$", listing.stdout, re.M)
    assert "dualsr:coarse\tDualSR Coarse" in listing.stdout


def test_help_is_plain_text_and_lists_every_parameter(qgis_env):
    shown = qgis_process(qgis_env, "help", "dualsr:coarse")
    assert shown.returncode == 0
    assert "<" not in shown.stdout.split("Arguments")[0]
    for pid in ("INPUT", "SCALE", "WEIGHTS", "TILE_SIZE", "OVERLAP", "DEVICE", "PRECISION", "OUTPUT"):
        assert re.search(rf"^{pid}: ", shown.stdout, re.M), pid


def test_run_degrade_then_evaluate_prints_the_numbers(qgis_env, make_raster, tmp_path):
    cube = smooth_cube(5, 16, 16).astype(np.float32)
    src = make_raster(cube)
    low = tmp_path / "low.tif"
    assert qgis_process(qgis_env, "run", "dualsr:degrade", "--", f"INPUT={src}", "SCALE=2",
                        f"OUTPUT={low}").returncode == 0
    a, b = gdal.Open(str(src)), gdal.Open(str(low))
    assert (b.RasterXSize, b.RasterYSize, b.RasterCount) == (8, 8, 5)
    gt = a.GetGeoTransform()
    assert b.GetGeoTransform() == (gt[0], gt[1] * 2, gt[2], gt[3], gt[4], gt[5] * 2)
    # antialiased bicubic keeps a smooth band's mean
    np.testing.assert_allclose(b.ReadAsArray().mean(axis=(1, 2)), cube.mean(axis=(1, 2)), atol=2e-3)

    brighter = cube + np.float32(0.01)
    result = make_raster(brighter, name="brighter.tif")
    run = qgis_process(qgis_env, "run", "dualsr:evaluate", "--", f"REFERENCE={src}", f"RESULT={result}",
                       f"OUTPUT_CSV={tmp_path / 'm.csv'}")
    assert run.returncode == 0, run.stdout + run.stderr
    printed = dict(re.findall(r"^(PSNR|SAM|RMSE):\t([-0-9.e]+)", run.stdout, re.M))
    ref, est = cube.astype(np.float64), brighter.astype(np.float64)
    error = est - ref
    cosine = (ref * est).sum(0) / np.linalg.norm(ref, axis=0) / np.linalg.norm(est, axis=0)
    assert float(printed["PSNR"]) == pytest.approx(10 * np.log10(1 / np.mean(error ** 2)), abs=1e-3)  # about 40 dB
    assert float(printed["RMSE"]) == pytest.approx(np.sqrt(np.mean(error ** 2)), rel=1e-3)
    assert float(printed["SAM"]) == pytest.approx(np.degrees(np.arccos(np.clip(cosine, -1, 1))).mean(), rel=1e-3)


def test_run_coarse(qgis_env, make_raster, tmp_path, tiny_weights):
    src = make_raster(smooth_cube(6, 12, 10), nodata=-5.0, wavelengths_nm=[500 + 7 * b for b in range(6)])
    out = tmp_path / "sr.tif"
    run = qgis_process(qgis_env, "run", "dualsr:coarse", "--", f"INPUT={src}", "SCALE=3",
                       f"WEIGHTS={tiny_weights[3]}", "PRECISION=fp32", f"OUTPUT={out}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0...10...20" in run.stdout
    assert f"OUTPUT:\t{out}" in run.stdout
    a, b = gdal.Open(str(src)), gdal.Open(str(out))
    assert b.GetProjection() == a.GetProjection()
    gt = a.GetGeoTransform()
    assert b.GetGeoTransform() == (gt[0], gt[1] / 3, gt[2], gt[3], gt[4], gt[5] / 3)
    assert (b.RasterXSize, b.RasterYSize) == (30, 36)
    assert b.GetRasterBand(6).GetMetadataItem("wavelength") == "535"
    assert b.GetRasterBand(6).GetNoDataValue() == -5.0


def test_bad_input_fails_with_a_clear_message(qgis_env, tmp_path, tiny_weights):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    run = qgis_process(qgis_env, "run", "dualsr:coarse", "--", f"INPUT={text}", "SCALE=2",
                       f"WEIGHTS={tiny_weights[2]}", f"OUTPUT={tmp_path / 'out.tif'}")
    failed_with(run, f"INPUT '{text}' is not a raster GDAL can read; choose a GeoTIFF, ENVI or other raster file.")
    assert not (tmp_path / "out.tif").exists()


def test_without_torch_the_error_says_how_to_install(qgis_env, make_raster, tmp_path):
    env = dict(qgis_env, PYTHONPATH="")
    probe = subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True, env=env)
    if probe.returncode == 0:
        pytest.skip("the system Python has torch")
    src = make_raster(smooth_cube(5, 8, 8))
    run = qgis_process(env, "run", "dualsr:coarse", "--", f"INPUT={src}", "SCALE=2", f"OUTPUT={tmp_path / 'o.tif'}")
    assert run.returncode != 0
    assert "PyTorch is not importable" in run.stdout + run.stderr
    # The Python that runs QGIS (the system one this venv is made from), not the python3 first on PATH:
    # named by an absolute path to that interpreter (QGIS 3.22 gives python3.11, 3.40 python3).
    python = f"{sys.base_prefix}/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    named = re.findall(r"'(\S+) -m pip install torch'", run.stdout + run.stderr)
    assert named and all(os.path.isabs(p) and os.path.samefile(p, python) for p in named), named
    # Degrade and Evaluate need no torch.
    low = tmp_path / "low.tif"
    run = qgis_process(env, "run", "dualsr:degrade", "--", f"INPUT={src}", "SCALE=2", f"OUTPUT={low}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert gdal.Open(str(low)).RasterXSize == 4


def test_a_failed_run_prints_its_sentence_once_and_json_keeps_it(qgis_env, make_raster, tmp_path):
    src = make_raster(smooth_cube(6, 12, 12))
    args = ["run", "dualsr:coarse", "--", f"INPUT={src}", "SCALE=2", "BANDS=3,15", f"OUTPUT={tmp_path / 'o.tif'}"]
    sentence = "BANDS 15 do not exist: INPUT has 6 bands."
    plain = qgis_process(qgis_env, *args)
    assert plain.returncode == 1
    assert (plain.stdout + plain.stderr).count(sentence) == 1 and f"ERROR:\t{sentence}" in plain.stderr
    as_json = qgis_process(qgis_env, "--json", *args)  # its only report of the error is the message log
    assert as_json.returncode == 1 and sentence in as_json.stdout + as_json.stderr
    assert not list(tmp_path.glob("o*"))
