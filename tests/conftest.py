"""Fixtures shared by every test: tiny rasters with a real CRS, tiny weights, the CUDA device."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

UTM33_ORIGIN = (364095.0, 5809965.0)


def write_raster(path: Path, array: np.ndarray, *, crs="EPSG:32633", transform=None, nodata=None,
                 wavelengths_nm=None, band_tags=None, scales=None, descriptions=None) -> Path:
    """Write a (B,H,W) array as a GeoTIFF with a real CRS and optional spectral metadata."""
    count, height, width = array.shape
    transform = transform or from_origin(*UTM33_ORIGIN, 30.0, 30.0)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count, dtype=array.dtype,
                       crs=crs, transform=transform, nodata=nodata) as ds:
        ds.write(array)
        for b in range(count):
            tags = dict((band_tags or [{}] * count)[b])
            if wavelengths_nm is not None:
                tags.update(wavelength=str(wavelengths_nm[b]), wavelength_units="Nanometers",
                            fwhm=str(5.5 + b * 0.1))
            if tags:
                ds.update_tags(b + 1, **tags)
            if descriptions:
                ds.set_band_description(b + 1, descriptions[b])
        if scales is not None:
            ds.scales = tuple(scales)
    return path


def smooth_cube(bands: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A spatially and spectrally smooth random reflectance cube in [0.05, 0.6], float32."""
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    noise = rng.random((bands, height, width))
    cube = ndimage.gaussian_filter(noise, sigma=(2.0, 1.5, 1.5))
    cube = (cube - cube.min()) / (np.ptp(cube) + 1e-12)
    return (0.05 + 0.55 * cube).astype(np.float32)


@pytest.fixture
def make_raster(tmp_path):
    def make(array, name="input.tif", **kwargs):
        return write_raster(tmp_path / name, np.asarray(array), **kwargs)

    return make


@pytest.fixture(scope="session")
def cuda():
    """The CUDA device, for the tests marked gpu (`make test-gpu`); skips where PyTorch sees no GPU."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.device("cuda")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """Random-initialised tiny CoarSR weights files (8 features, 1 block) for scales 2, 3 and 4."""
    torch = pytest.importorskip("torch")
    from dualsr_core.network import weights
    from dualsr_core.network.model import CoarSR, CoarSRConfig

    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for scale in (2, 3, 4):
        torch.manual_seed(scale)
        model = CoarSR(CoarSRConfig(scale, n_feats=8, n_blocks=1))
        paths[scale] = folder / f"tiny_x{scale}.pt"
        weights.save(paths[scale], model, {"training_data": "none: random initialisation for tests"})
    return paths


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory) -> Path:
    """A folder holding a `dualsr` link to the checkout, as QGIS_PLUGINPATH expects (folder name = plugin key)."""
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "dualsr").symlink_to(ROOT)
    return folder


@pytest.fixture(scope="session")
def qgis_processing(plugin_dir, tmp_path_factory):
    """Headless QGIS with Processing initialised and the DualSR provider registered; yields `processing`."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QGIS_CUSTOM_CONFIG_PATH"] = str(tmp_path_factory.mktemp("qgis_profile"))
    qgis_core = pytest.importorskip("qgis.core")
    app = qgis_core.QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    sys.path.insert(0, str(plugin_dir))
    import processing
    from processing.core.Processing import Processing

    Processing.initialize()
    from dualsr.provider.provider import DualSRProvider

    provider = DualSRProvider()
    qgis_core.QgsApplication.processingRegistry().addProvider(provider)
    yield processing
    qgis_core.QgsApplication.processingRegistry().removeProvider(provider)
