"""x3 with the bundled weights through qgis_process: 29.7 m becomes exactly 9.9 m (a 30 m-class
imaging spectrometer onto a 10 m grid), for DualSR Coarse and the one-step DualSR."""
from pathlib import Path

import numpy as np
import pytest
import rasterio
from osgeo import gdal
from rasterio.transform import from_origin

from ..conftest import SHARED_DATA, UTM33_ORIGIN, smooth_cube, write_raster
from .conftest import QGIS_PROCESS, qgis_process

pytestmark = pytest.mark.qgis
if QGIS_PROCESS is None:
    pytest.skip("qgis_process is not installed", allow_module_level=True)
BUNDLED_X3 = Path(__file__).resolve().parents[2] / "weights" / "coarsr_x3.pt"
# The EnMAP validation mosaic of the fixed split (scripts/split.py): never trained on.
ENMAP_TILES = [SHARED_DATA / "enmap_potsdam" / f"enmap_potsdam_tile_{c}_{r}.tif"
               for c, r in ((160, 64), (192, 64), (160, 96), (192, 96))]


def run_algorithm(env, algorithm, **parameters):
    return qgis_process(env, "run", algorithm, "--", *(f"{k}={v}" for k, v in parameters.items()), timeout=600)


def test_x3_weights_are_bundled():
    assert BUNDLED_X3.is_file()


@pytest.mark.parametrize("algorithm", ["dualsr:coarse", "dualsr:dualsr"])
def test_x3_with_bundled_weights_gives_the_exact_9_9_m_grid(qgis_env, tmp_path, algorithm):
    cube = smooth_cube(7, 12, 10)
    src = write_raster(tmp_path / "in_29_7m.tif", cube, transform=from_origin(*UTM33_ORIGIN, 29.7, 29.7),
                       nodata=-1.0, wavelengths_nm=[450 + 10 * b for b in range(7)])
    out = tmp_path / "out.tif"
    run = run_algorithm(qgis_env, algorithm, INPUT=src, SCALE=3, PRECISION="fp32", OUTPUT=out)
    assert run.returncode == 0, run.stdout + run.stderr
    a, b = gdal.Open(str(src)), gdal.Open(str(out))
    assert (b.RasterXSize, b.RasterYSize, b.RasterCount) == (30, 36, 7)
    x0, dx, rx, y0, ry, dy = b.GetGeoTransform()
    assert (x0, y0, rx, ry) == (UTM33_ORIGIN[0], UTM33_ORIGIN[1], 0.0, 0.0)
    assert (dx, dy) == (9.9, -9.9)  # to the last bit: 29.7 * (1 / 3) would give 9.899999999999999
    # the output covers the input's extent exactly: 10 x 29.7 m = 30 x 9.9 m, 12 x 29.7 m = 36 x 9.9 m
    assert x0 + 30 * dx == pytest.approx(UTM33_ORIGIN[0] + 10 * 29.7, abs=1e-6)
    assert y0 + 36 * dy == pytest.approx(UTM33_ORIGIN[1] - 12 * 29.7, abs=1e-6)
    assert b.GetSpatialRef().IsSame(a.GetSpatialRef())
    assert b.GetRasterBand(7).GetMetadataItem("wavelength") == "510"
    sr = b.ReadAsArray()
    # A smooth cube: each 3 x 3 block of the result averages back to close to its input pixel.
    blocks = sr.reshape(7, 12, 3, 10, 3).mean(axis=(2, 4))
    assert np.abs(blocks[:, 1:-1, 1:-1] - cube[:, 1:-1, 1:-1]).max() < 0.02


def _psnr(truth, estimate):
    return 10 * np.log10(1.0 / np.mean((truth - estimate) ** 2))


def _sam_degrees(truth, estimate):
    t, e = truth.reshape(truth.shape[0], -1), estimate.reshape(estimate.shape[0], -1)
    cos = (t * e).sum(0) / (np.linalg.norm(t, axis=0) * np.linalg.norm(e, axis=0))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean())


@pytest.mark.skipif(not all(p.is_file() for p in ENMAP_TILES), reason="the shared EnMAP tiles are not there")
def test_x3_bundled_weights_beat_bicubic_on_the_validation_mosaic(qgis_env, tmp_path):
    """The 63 x 63 corner of the EnMAP validation mosaic, degraded x3 by MATLAB's antialiased
    bicubic imresize (the training degradation, computed here from its kernel) to 21 x 21 and
    super-resolved back by the bundled weights."""
    mosaic = tmp_path / "validation.vrt"
    gdal.BuildVRT(str(mosaic), [str(p) for p in ENMAP_TILES]).FlushCache()
    with rasterio.open(mosaic) as ds:
        assert (ds.width, ds.height) == (64, 64)
        raw = ds.read()[:, :63, :63].astype(np.float64)
        nodata = ds.nodata
    good = np.all(raw != nodata, axis=(1, 2))  # the six bad bands are nodata everywhere
    hr = raw[good] * 1e-4  # reflectance, good bands only
    assert hr.shape[0] == 218

    def imresize_matrix(n_in, n_out):
        """MATLAB imresize's bicubic (a = -0.5) weights, antialiased when shrinking, symmetric edges."""
        scale = n_out / n_in
        width = 4.0 / min(scale, 1.0)
        x = (np.arange(n_out) + 0.5) / scale - 0.5
        taps = np.floor(x - width / 2)[:, None] + np.arange(int(np.ceil(width)) + 2)[None]
        d = (x[:, None] - taps) * min(scale, 1.0)
        ad = np.abs(d)
        w = np.where(ad <= 1, 1.5 * ad**3 - 2.5 * ad**2 + 1,
                     np.where(ad < 2, -0.5 * ad**3 + 2.5 * ad**2 - 4 * ad + 2, 0.0))
        w /= w.sum(1, keepdims=True)
        idx = taps.astype(int)
        idx = np.where(idx < 0, -idx - 1, idx)
        idx = np.where(idx >= n_in, 2 * n_in - idx - 1, idx)
        m = np.zeros((n_out, n_in))
        np.add.at(m, (np.repeat(np.arange(n_out), idx.shape[1]), idx.ravel()), w.ravel())
        return m

    down, up = imresize_matrix(63, 21), imresize_matrix(21, 63)
    lr = np.einsum("ij,bjk,lk->bil", down, hr, down)
    bicubic = np.einsum("ij,bjk,lk->bil", up, lr, up)
    src = write_raster(tmp_path / "lr.tif", lr.astype(np.float32), transform=from_origin(*UTM33_ORIGIN, 29.7, 29.7))
    results = {}
    for algorithm in ("dualsr:coarse", "dualsr:dualsr"):
        out = tmp_path / f"{algorithm.split(':')[1]}.tif"
        run = run_algorithm(qgis_env, algorithm, INPUT=src, SCALE=3, PRECISION="fp32", OUTPUT=out)
        assert run.returncode == 0, run.stdout + run.stderr
        with rasterio.open(out) as ds:
            assert ds.res == pytest.approx((9.9, 9.9), abs=1e-9)
            results[algorithm] = ds.read().astype(np.float64)
    inner = (slice(None), slice(6, -6), slice(6, -6))  # away from the symmetric-edge padding
    base = _psnr(hr[inner], bicubic[inner])
    coarse = _psnr(hr[inner], results["dualsr:coarse"][inner])
    both = _psnr(hr[inner], results["dualsr:dualsr"][inner])
    assert coarse > base + 0.5, (base, coarse)
    assert both >= coarse - 1e-3, (coarse, both)
    assert _sam_degrees(hr[inner], results["dualsr:coarse"][inner]) < _sam_degrees(hr[inner], bicubic[inner])
