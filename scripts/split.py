"""The fixed training/validation split of the shared real scenes, used by `make weights` and
`make bench-quality` (and written down in weights/README.md).

EnMAP tiles of Potsdam (32 x 32 each) are mosaicked with VRTs into three blocks: 160..224 x
64..128 (four tiles, 64 x 64) is validation only; 64..160 x 0..64 (six tiles) and 96..160 x
96..160 (four tiles) are training scenes. Each .mat scene gives one validation window, never
sampled for training (nor reached by a training patch through the resampling kernel). The two
crops of HYDICE Urban (`urban_crop`, `hydice_urban`) and the two of San Diego, Los Angeles and the
Texas coast were compared band by band at every offset: no pair shares pixels (the best normalised
correlation of a shared band at any offset is 0.57), so each is a scene of its own. A folder
without the EnMAP tiles (a user's own scenes) gets no fixed split: the trainer holds out a fraction
of every scene instead.
"""
from __future__ import annotations

import sys
from pathlib import Path

from osgeo import gdal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dualsr_core.tools.tiling import Region  # noqa: E402

ENMAP_BLOCKS = {
    "enmap_validation": [(160, 64), (192, 64), (160, 96), (192, 96)],
    "enmap_train_north": [(64, 0), (96, 0), (128, 0), (64, 32), (96, 32), (128, 32)],
    "enmap_train_south": [(96, 96), (128, 96), (96, 128), (128, 128)],
}
# (scene file relative to the data folder, validation window as rows/cols of the scene)
MAT_VALIDATION = {
    "samson/samson_1.mat": Region(47, 47, 48, 48),
    "urban_crop/subimage_Urban_R162.mat": Region(0, 44, 34, 34),
    "moffett_field/Moffett_vca.mat": Region(34, 0, 16, 50),
    "paris_hyperion/paris_data_hs_ms.mat": Region(36, 36, 36, 36),
    # Scenes added on 2026-12-06: the bottom-left square of each, its side half the shorter side
    # rounded down to a multiple of 12 (whole pixels at x2, x3 and x4). One rule for all of them,
    # fixed before any training on them; bottom left is also the only corner of Cat Island with land
    # in it, and the only one of the CASI scene inside the flight line everywhere.
    "aviris_abu/abu-urban-2.mat": Region(52, 0, 48, 48),
    "aviris_abu/cat-island.mat": Region(78, 0, 72, 72),
    "aviris_abu/los-angeles-1.mat": Region(52, 0, 48, 48),
    "aviris_abu/los-angeles-2.mat": Region(52, 0, 48, 48),
    "aviris_abu/texas-goast.mat": Region(52, 0, 48, 48),
    "aviris_san_diego/AVIRIS-I.mat": Region(60, 0, 60, 60),
    "aviris_san_diego/AVIRIS-II.mat": Region(52, 0, 48, 48),
    "aviris_vi_demo/a_hsi_img_for_VI_demo.mat": Region(54, 0, 36, 36),
    "casi_muufl/an_hsi_image_sub_for_demo.mat": Region(27, 0, 24, 24),
    "hydice_urban/HYDICE_data.mat": Region(64, 0, 36, 36),
    "rosis_pavia_centre/dataPavia.mat": Region(57, 0, 48, 48),
}


def build_enmap_mosaics(data: Path, work: Path) -> dict[str, Path]:
    """VRT mosaics of the EnMAP tiles (nothing is copied); {} when the tiles are not there."""
    folder = data / "enmap_potsdam"
    mosaics = {}
    for name, tiles in ENMAP_BLOCKS.items():
        paths = [folder / f"enmap_potsdam_tile_{col}_{row}.tif" for col, row in tiles]
        if not all(p.is_file() for p in paths):
            return {}
        work.mkdir(parents=True, exist_ok=True)
        vrt = work / f"{name}.vrt"
        gdal.BuildVRT(str(vrt), [str(p) for p in paths]).FlushCache()
        mosaics[name] = vrt
    return mosaics


def fixed_split(data: Path, work: Path) -> tuple[list[Path], list[tuple[Path, Region]]] | None:
    """(training scenes, validation windows) of the shared data layout, or None for another folder."""
    mosaics = build_enmap_mosaics(data, work)
    mats = {data / rel: region for rel, region in MAT_VALIDATION.items() if (data / rel).is_file()}
    if not mosaics:
        return None
    validation_mosaic = mosaics.pop("enmap_validation")
    from dualsr_core.io.raster import RasterReader

    with RasterReader(validation_mosaic) as reader:
        whole = Region(0, 0, reader.height, reader.width)
    training = list(mosaics.values()) + list(mats)
    validation = [(validation_mosaic, whole)] + list(mats.items())
    return training, validation
