"""The zip a user installs with "Install from ZIP": built by `make package`, unzipped into a clean QGIS
profile, enabled and run through qgis_process with the weights it carries."""
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ..conftest import ROOT

pytestmark = pytest.mark.qgis
QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
if QGIS_PROCESS is None:
    pytest.skip("qgis_process is not installed", allow_module_level=True)
if shutil.which("make") is None or shutil.which("git") is None or not (ROOT / ".git").exists():
    pytest.skip("make package needs make, git and a git checkout", allow_module_level=True)

SAMPLE = ROOT / "sample" / "enmap_potsdam.tif"
DEVELOPMENT_ONLY = {"tests", "scripts", ".ci", "Makefile", "pytest.ini", ".gitignore", ".gitattributes"}


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run = subprocess.run(["make", "-s", "package", f"DIST={dist}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return dist / "dualsr.zip"


def test_the_zip_holds_the_plugin_and_nothing_for_developers(package):
    assert package.stat().st_size < 25 * 1024 * 1024
    names = zipfile.ZipFile(package).namelist()
    files = {n for n in names if not n.endswith("/")}
    assert all(n.startswith("dualsr/") for n in names)
    for required in ("metadata.txt", "__init__.py", "plugin.py", "LICENSE", "README.md",
                     "weights/coarsr_x2.pt", "weights/coarsr_x4.pt", "provider/provider.py"):
        assert f"dualsr/{required}" in files, required
    assert zipfile.ZipFile(package).read("dualsr/LICENSE") == git("show", "HEAD:LICENSE").encode()
    for name in files:
        parts = name.split("/")
        assert "tests" not in parts and "__pycache__" not in parts, name
        assert not parts[-1].startswith(("test_", "conftest")) and not name.endswith(".pyc"), name
        assert parts[1] not in DEVELOPMENT_ONLY, name
    # Every committed top-level folder a user needs is in, whatever its name (a new package included).
    tracked = {line.split("/")[0] for line in git("ls-tree", "-r", "--name-only", "HEAD").splitlines()}
    for top in tracked - DEVELOPMENT_ONLY:
        assert any(n.startswith(f"dualsr/{top}") for n in files), top


def test_installed_from_the_zip_it_runs_coarse_with_its_bundled_weights(package, tmp_path):
    if not SAMPLE.exists():
        pytest.skip("sample/enmap_potsdam.tif is not in this checkout")
    torch = pytest.importorskip("torch")
    config = tmp_path / "config"
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(package).extractall(plugins)
    env = {k: v for k, v in os.environ.items() if k != "QGIS_PLUGINPATH"}  # only the profile's copy can load
    env.update(QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(config),
               PYTHONPATH=str(Path(torch.__file__).resolve().parents[1]))
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "dualsr"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert enable.returncode == 0, enable.stdout + enable.stderr

    # A 16 x 16 window of the EnMAP sample, all 224 bands (the whole 64 x 64 block takes minutes on 2 cores).
    crop = tmp_path / "enmap_window.tif"
    gdal.Translate(str(crop), str(SAMPLE), srcWin=[24, 24, 16, 16])
    out = tmp_path / "enmap_window_x2.tif"
    run = subprocess.run([QGIS_PROCESS, "run", "dualsr:coarse", "--", f"INPUT={crop}", "SCALE=2", f"OUTPUT={out}"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"OUTPUT:\t{out}" in run.stdout

    src, res = gdal.Open(str(crop)), gdal.Open(str(out))
    assert (res.RasterXSize, res.RasterYSize, res.RasterCount) == (32, 32, src.RasterCount)
    gt = src.GetGeoTransform()
    assert res.GetGeoTransform() == (gt[0], gt[1] / 2, gt[2], gt[3], gt[4], gt[5] / 2)
    assert res.GetProjection() == src.GetProjection()
    assert res.GetRasterBand(50).GetMetadataItem("wavelength") == src.GetRasterBand(50).GetMetadataItem("wavelength")
    # The zip's bundled weights are the repository's: an in-process run with them gives the same
    # integers (one step of rounding apart at most).
    from dualsr_core.stages.coarse import super_resolve

    super_resolve(crop, tmp_path / "in_process.tif", 2)
    direct = gdal.Open(str(tmp_path / "in_process.tif")).ReadAsArray().astype(np.float64)
    assert np.abs(res.ReadAsArray().astype(np.float64) - direct).max() <= 1
    # Each 2 x 2 block of the result averages back to the input pixel (within 5 % on average over
    # the valid pixels of every band).
    nodata = src.GetRasterBand(1).GetNoDataValue()
    x = src.ReadAsArray().astype(np.float64)
    y = res.ReadAsArray().astype(np.float64)
    assert res.GetRasterBand(1).GetNoDataValue() == nodata
    blocks = y.reshape(y.shape[0], 16, 2, 16, 2).mean(axis=(2, 4))
    valid = (x != nodata) & (blocks != nodata)
    assert valid.sum() > 0.9 * 200 * 16 * 16
    assert np.abs(blocks - x)[valid].mean() < 0.05 * np.abs(x[valid]).mean()
