"""The fixed training/validation split of scripts/split.py: no training patch of the recipes in
scripts/train_weights.py reaches a validation window, not even through the resampling kernel."""
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from dualsr_core.io.scenes import Scene  # noqa: E402
from dualsr_core.training.patches import build_patches  # noqa: E402

from ...conftest import ROOT  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import split  # noqa: E402
import train_weights  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
# Image size (H, W) of every .mat scene of the shared folder, so the test runs without it too.
SIZES = {
    "samson/samson_1.mat": (95, 95), "urban_crop/subimage_Urban_R162.mat": (34, 78),
    "moffett_field/Moffett_vca.mat": (50, 50), "paris_hyperion/paris_data_hs_ms.mat": (72, 72),
    "aviris_abu/abu-urban-2.mat": (100, 100), "aviris_abu/cat-island.mat": (150, 150),
    "aviris_abu/los-angeles-1.mat": (100, 100), "aviris_abu/los-angeles-2.mat": (100, 100),
    "aviris_abu/texas-goast.mat": (100, 100), "aviris_san_diego/AVIRIS-I.mat": (120, 120),
    "aviris_san_diego/AVIRIS-II.mat": (100, 100), "aviris_vi_demo/a_hsi_img_for_VI_demo.mat": (90, 90),
    "casi_muufl/an_hsi_image_sub_for_demo.mat": (51, 88), "hydice_urban/HYDICE_data.mat": (100, 80),
    "rosis_pavia_centre/dataPavia.mat": (105, 120),
}


def test_every_scene_has_one_window_inside_it():
    assert set(split.MAT_VALIDATION) == set(SIZES)
    if DATA.is_dir():
        assert {p.relative_to(DATA).as_posix() for p in DATA.rglob("*.mat")} == set(SIZES)
    for relative, region in split.MAT_VALIDATION.items():
        height, width = SIZES[relative]
        assert 0 <= region.row0 and region.row0 + region.height <= height, relative
        assert 0 <= region.col0 and region.col0 + region.width <= width, relative
        assert min(region.height, region.width) >= 16, relative  # x4 leaves a 4 x 4 input at least


def test_the_enmap_blocks_share_no_tile():
    tiles = [tile for block in split.ENMAP_BLOCKS.values() for tile in block]
    assert len(tiles) == len(set(tiles)) == 14


@pytest.mark.parametrize("stage", ["x2_all", "x3_all", "x4_all"])
def test_no_training_patch_reaches_a_validation_window(tmp_path, stage):
    """Each window is NaN in a scene of its size: any patch whose pixels, or the pixels of the
    rescaled copy it was cut from, depend on a window pixel would hold a NaN."""
    scale, config, _, _ = train_weights.STAGES[stage]
    scenes, holdout = [], []
    for k, (relative, region) in enumerate(split.MAT_VALIDATION.items()):
        height, width = SIZES[relative]
        cube = np.random.default_rng(k).uniform(0.05, 0.5, (2, height, width)).astype(np.float32)
        cube[:, region.row0:region.row0 + region.height, region.col0:region.col0 + region.width] = np.nan
        name = Path(relative).stem
        scenes.append(Scene(name=name, cube=cube, valid=np.ones((height, width), bool), good_bands=np.ones(2, bool),
                            order=np.arange(2), path=Path(relative)))
        holdout.append((name, region))
    counts = build_patches(scenes, tmp_path / "p.h5", scale, config["patch_size"], seed=1, holdout=holdout,
                           positions_per_kilopixel=config["positions_per_kilopixel"])
    assert all(count > 0 for count in counts.values()), counts
    with h5py.File(tmp_path / "p.h5", "r") as f:
        for key in f:
            assert np.isfinite(f[key]["hr"][()]).all() and np.isfinite(f[key]["lr"][()]).all(), f[key].attrs["name"]
