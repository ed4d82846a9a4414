"""Tests of dualsr_core.training.patches (HDF5 training set) and dualsr_core.io.scenes (scene loading)."""
import math
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from dualsr_core.errors import Cancelled, InputError  # noqa: E402
from dualsr_core.feedback import Feedback  # noqa: E402
from dualsr_core.io.scenes import Scene, find_scenes, load_scene, scene_names  # noqa: E402
from dualsr_core.tools import resize  # noqa: E402
from dualsr_core.tools.tiling import Region  # noqa: E402
from dualsr_core.training.patches import AUGMENT_SCALES, VERSIONS, PatchDataset, auto_holdout, build_patches  # noqa: E402

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
SCALE, P_LR = 2, 6
P_HR = SCALE * P_LR


def smooth_cube(seed, bands=5, height=40, width=36):
    """A smooth random cube in [0, 1] (sums of a few low-frequency waves)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    cube = np.zeros((bands, height, width))
    for b in range(bands):
        for _ in range(3):
            fy, fx, phase = rng.uniform(0.05, 0.4, 2).tolist() + [rng.uniform(0, 6)]
            cube[b] += np.sin(fy * y + fx * x + phase)
    cube -= cube.min()
    return (cube / cube.max()).astype(np.float32)


def make_scene(name, seed, valid=None, good=None, **shape):
    cube = smooth_cube(seed, **shape)
    valid = np.ones(cube.shape[1:], bool) if valid is None else valid
    good = np.ones(cube.shape[0], bool) if good is None else good
    return Scene(name=name, cube=cube, valid=valid, good_bands=good, order=np.flatnonzero(good),
                 path=Path(f"/nonexistent/{name}.tif"))


def read_all(path):
    """Every dataset and attribute of an HDF5 file, for content comparison."""
    out = {}
    with h5py.File(path, "r") as f:
        out["/"] = {k: f.attrs[k] for k in f.attrs}

        def visit(name, obj):
            out[name + "@"] = {k: np.asarray(obj.attrs[k]).tolist() for k in obj.attrs}
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
    return out


def assert_same_content(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


@pytest.fixture
def two_scenes():
    return [make_scene("alpha", 1), make_scene("beta", 2, bands=7, height=30, width=44)]


def test_shapes_layout_and_chunking(tmp_path, two_scenes):
    counts = build_patches(two_scenes, tmp_path / "p.h5", SCALE, P_LR, seed=3)
    assert counts == {"alpha": 3 * 24 * 5, "beta": 3 * 24 * 5}
    with h5py.File(tmp_path / "p.h5", "r") as f:
        for scene in two_scenes:
            g = f[next(k for k in f if f[k].attrs["name"] == scene.name)]
            n, bands = counts[scene.name], scene.cube.shape[0]
            assert g["lr"].shape == (n, bands, P_LR, P_LR) and g["lr"].dtype == np.float32
            assert g["hr"].shape == (n, bands, P_HR, P_HR) and g["hr"].dtype == np.float32
            assert g["lr"].chunks == (1, bands, P_LR, P_LR) and g["hr"].chunks == (1, bands, P_HR, P_HR)
            assert g["lr"].compression == "lzf"
            assert g.attrs["complete"]
            np.testing.assert_array_equal(g.attrs["good_bands"], scene.good_bands)
            # every augmentation scale contributes
            assert set(g["origin"][:, 0]) == {0, 1, 2}


def test_lr_is_matlab_imresize_of_hr(tmp_path, two_scenes):
    build_patches(two_scenes[:1], tmp_path / "p.h5", SCALE, P_LR, seed=3)
    with h5py.File(tmp_path / "p.h5", "r") as f:
        hr, lr = f["scene_0000/hr"][()], f["scene_0000/lr"][()]
    np.testing.assert_array_equal(lr, resize.imresize(hr, 1 / SCALE, method="matlab"))
    # independently through the explicit output size, and not a plain decimation
    np.testing.assert_allclose(lr, resize.resize(hr, (P_LR, P_LR), method="matlab"), atol=1e-6)
    assert np.abs(lr - hr[..., ::SCALE, ::SCALE]).max() > 1e-3


def test_patches_are_crops_of_the_resized_scene_in_five_exact_versions(tmp_path, two_scenes):
    scene = two_scenes[0]
    build_patches([scene], tmp_path / "p.h5", SCALE, P_LR, seed=3)
    with h5py.File(tmp_path / "p.h5", "r") as f:
        hr, origin = f["scene_0000/hr"][()], f["scene_0000/origin"][()]
    scaled = [scene.cube if c == 1.0 else resize.imresize(scene.cube, c) for c in AUGMENT_SCALES]
    assert len(hr) % len(VERSIONS) == 0
    for start in range(0, len(hr), len(VERSIONS)):
        s, row, col, _ = origin[start]
        assert list(origin[start:start + 5, 3]) == [0, 1, 2, 3, 4]
        assert (origin[start:start + 5, :3] == origin[start, :3]).all()
        original = hr[start]
        np.testing.assert_array_equal(original, scaled[s][:, row:row + P_HR, col:col + P_HR])
        np.testing.assert_array_equal(hr[start + 1], np.rot90(original, 1, axes=(1, 2)))
        np.testing.assert_array_equal(hr[start + 2], np.rot90(original, 2, axes=(1, 2)))
        np.testing.assert_array_equal(hr[start + 3], np.rot90(original, 3, axes=(1, 2)))
        np.testing.assert_array_equal(hr[start + 4], original[:, ::-1, :])
    # counter-clockwise, as MATLAB rot90: the top-right corner moves to the top-left
    np.testing.assert_array_equal(hr[1][:, 0, 0], hr[0][:, 0, -1])


def test_holdout_windows_and_invalid_pixels_never_reach_a_patch(tmp_path):
    """Holdout and invalid pixels are NaN: any patch (or its LR) that a resize kernel lets them
    touch would hold a NaN."""
    valid = np.ones((40, 36), bool)
    valid[3, 30] = False
    scene = make_scene("gamma", 4, valid=valid)
    window = Region(14, 10, 12, 12)
    scene.cube[:, ~valid] = np.nan
    scene.cube[:, 14:26, 10:22] = np.nan
    counts = build_patches([scene], tmp_path / "p.h5", SCALE, P_LR, seed=5, holdout=[("gamma", window)])
    assert counts["gamma"] > 0
    with h5py.File(tmp_path / "p.h5", "r") as f:
        g = f["scene_0000"]
        assert np.isfinite(g["hr"][()]).all() and np.isfinite(g["lr"][()]).all()
        origin = g["origin"][()]
        val = g["val/0"]
        assert list(val.attrs["region"]) == [14, 10, 12, 12]
        assert val["hr"].shape == (5, 12, 12) and val["lr"].shape == (5, 6, 6)
    # sampling does come close to the window, so the check above is not vacuous
    full = origin[origin[:, 0] == 0]
    gaps = [max(window.row0 - (r + P_HR), r - (window.row0 + window.height),
                window.col0 - (c + P_HR), c - (window.col0 + window.width)) for _, r, c, _ in full]
    assert min(gaps) < 4


def test_bad_bands_are_kept_and_recorded(tmp_path):
    good = np.array([True, False, True, True, True])
    build_patches([make_scene("delta", 6, good=good)], tmp_path / "p.h5", SCALE, P_LR, seed=1,
                  max_patches_per_scene=10)
    dataset = PatchDataset(tmp_path / "p.h5", batch_size=4, seed=1)
    try:
        batch = next(dataset.iterate(0))
        assert batch.lr.shape[1] == 5
        np.testing.assert_array_equal(batch.good_bands, good)
        np.testing.assert_array_equal(batch.order, [0, 2, 3, 4])
        assert dataset.scenes[0].count == 10
    finally:
        dataset.close()


def test_build_is_resumable_and_depends_only_on_the_seed(tmp_path, two_scenes):
    whole = tmp_path / "whole.h5"
    build_patches(two_scenes, whole, SCALE, P_LR, seed=7)

    built = []

    def log(message):
        built.append(message)

    cancel_after_first = Feedback(log=log, is_cancelled=lambda: len(built) >= 1)
    resumed = tmp_path / "resumed.h5"
    with pytest.raises(Cancelled):
        build_patches(two_scenes, resumed, SCALE, P_LR, seed=7, feedback=cancel_after_first)
    with h5py.File(resumed, "r") as f:
        assert f["scene_0000"].attrs["complete"] and not f["scene_0001"].attrs.get("complete", False)
    built.clear()
    build_patches(two_scenes, resumed, SCALE, P_LR, seed=7, feedback=Feedback(log=log))
    assert len(built) == 1 and "beta" in built[0]  # the complete scene was skipped
    assert_same_content(read_all(whole), read_all(resumed))

    other = tmp_path / "other.h5"
    build_patches(two_scenes, other, SCALE, P_LR, seed=8)
    with h5py.File(whole, "r") as a, h5py.File(other, "r") as b:
        assert not np.array_equal(a["scene_0000/origin"][()], b["scene_0000/origin"][()])


def test_changed_settings_rebuild_the_file(tmp_path, two_scenes):
    path = tmp_path / "p.h5"
    build_patches(two_scenes, path, SCALE, P_LR, seed=7)
    build_patches(two_scenes[:1], path, SCALE, P_LR + 2, seed=7)
    with h5py.File(path, "r") as f:
        assert list(f.keys()) == ["scene_0000"]
        assert f["scene_0000/lr"].shape[-1] == P_LR + 2


def test_automatic_holdout_window():
    scene = make_scene("eps", 1, height=40, width=36)
    window = auto_holdout(scene, 0.1, 2)
    assert window == Region(28, 24, 12, 12)  # bottom right, 11 px minimum rounded up to the scale
    scene.valid[30, 30] = False
    assert auto_holdout(scene, 0.1, 2) == Region(28, 0, 12, 12)
    assert auto_holdout(make_scene("tiny", 1, height=20, width=20), 0.1, 2) is None
    assert auto_holdout(scene, 0.0, 2) is None


def test_batches_one_scene_each_and_order_fixed_by_seed_and_epoch(tmp_path, two_scenes):
    build_patches(two_scenes, tmp_path / "p.h5", SCALE, P_LR, seed=1, max_patches_per_scene=23)
    a = PatchDataset(tmp_path / "p.h5", batch_size=4, seed=9)
    b = PatchDataset(tmp_path / "p.h5", batch_size=4, seed=9)
    try:
        first = a.batches(0)
        assert [(s, list(i)) for s, i in first] == [(s, list(i)) for s, i in b.batches(0)]
        assert [(s, list(i)) for s, i in first] != [(s, list(i)) for s, i in a.batches(1)]
        assert len(a) == len(first) == 2 * 6
        for scene_index, scene in enumerate(a.scenes):
            seen = np.concatenate([i for s, i in first if s == scene_index])
            assert sorted(seen) == list(range(scene.count))  # each patch once per epoch
        batches = list(a.iterate(0))
        assert {x.lr.shape[1] for x in batches} == {5, 7}
        s, indices = first[0]
        np.testing.assert_array_equal(batches[0].hr, a.read(s, indices).hr)
        with h5py.File(tmp_path / "p.h5", "r") as f:
            np.testing.assert_array_equal(batches[0].lr[1], f[a.scenes[s].key]["lr"][indices[1]])
        # two processes share each global batch, on the same scene
        shares = [PatchDataset(tmp_path / "p.h5", batch_size=2, seed=9, rank=r, world_size=2) for r in (0, 1)]
        for r0, r1 in zip(shares[0].iterate(3), shares[1].iterate(3)):
            assert r0.lr.shape[1] == r1.lr.shape[1]
        for share in shares:
            share.close()
    finally:
        a.close()
        b.close()


def test_validation_crops_are_read_back(tmp_path, two_scenes):
    build_patches(two_scenes, tmp_path / "p.h5", SCALE, P_LR, seed=1, val_fraction=0.1)
    dataset = PatchDataset(tmp_path / "p.h5", batch_size=4, seed=1)
    try:
        items = dataset.validation()
    finally:
        dataset.close()
    assert [item["name"] for item in items] == ["alpha", "beta"]
    alpha = items[0]
    r = alpha["region"]
    np.testing.assert_array_equal(alpha["hr"], two_scenes[0].cube[:, r.row0:r.row0 + r.height, r.col0:r.col0 + r.width])
    np.testing.assert_array_equal(alpha["lr"], resize.imresize(alpha["hr"], 0.5))
    assert alpha["mask"].all()


# --- scenes -----------------------------------------------------------------------------------

def test_mat_layouts(tmp_path):
    from scipy import io

    cube = smooth_cube(3, bands=6, height=9, width=7)  # (L,H,W)
    hwb = cube.transpose(1, 2, 0).astype(np.float64)
    bands_by_pixels = hwb.reshape(-1, 6, order="F").T  # MATLAB reshape(im, [], B)'
    io.savemat(tmp_path / "hwb.mat", {"im": hwb, "small": hwb[..., :2]})
    io.savemat(tmp_path / "sizes.mat", {"V": bands_by_pixels, "nRow": 9, "nCol": 7, "note": np.zeros((2, 3))})
    io.savemat(tmp_path / "pixels.mat", {"Y": bands_by_pixels.T, "H": 9, "W": 7})
    for name in ("hwb", "sizes", "pixels"):
        scene = load_scene(tmp_path / f"{name}.mat")
        np.testing.assert_allclose(scene.cube, cube, err_msg=name)
        assert scene.cube.dtype == np.float32 and scene.valid.all() and scene.good_bands.all()
    square = smooth_cube(3, bands=6, height=8, width=8)
    io.savemat(tmp_path / "square.mat", {"V": square.transpose(1, 2, 0).reshape(-1, 6, order="F").T.astype(float)})
    np.testing.assert_allclose(load_scene(tmp_path / "square.mat").cube, square)
    io.savemat(tmp_path / "odd.mat", {"V": np.zeros((6, 63))})
    with pytest.raises(InputError, match="holds no cube in a known layout"):
        load_scene(tmp_path / "odd.mat")


def test_mat_nonfinite_pixels_and_bands(tmp_path):
    from scipy import io

    hwb = smooth_cube(3, bands=4, height=6, width=5).transpose(1, 2, 0).astype(np.float64)
    hwb[..., 1] = np.nan
    hwb[2, 3, 0] = np.inf
    io.savemat(tmp_path / "s.mat", {"im": hwb})
    scene = load_scene(tmp_path / "s.mat")
    np.testing.assert_array_equal(scene.good_bands, [True, False, True, True])
    assert not scene.valid[2, 3] and scene.valid.sum() == 29
    assert np.isfinite(scene.cube).all()


def test_raster_scene_bad_bands_nodata_and_wavelength_order(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    data = (smooth_cube(2, bands=4, height=8, width=6) * 10000).astype(np.int16)
    data[0, 1, 2] = -1
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=6, height=8, count=4, dtype="int16", nodata=-1,
                       crs="EPSG:32633", transform=from_origin(0, 0, 30, 30)) as ds:
        ds.write(data)
        ds.scales = (1e-4,) * 4
        for band, (wavelength, bbl) in enumerate([(900, 1), (500, 1), (700, 0), (600, 1)], start=1):
            ds.update_tags(band, wavelength=str(wavelength), wavelength_units="nanometers", bbl=str(bbl))
    scene = load_scene(path)
    assert scene.name == "scene" and scene.cube.shape == (4, 8, 6)
    np.testing.assert_array_equal(scene.good_bands, [True, True, False, True])
    np.testing.assert_array_equal(scene.order, [1, 3, 0])
    assert not scene.valid[1, 2] and scene.valid.sum() == 47
    np.testing.assert_allclose(scene.cube[1], data[1] * 1e-4, rtol=1e-6)


def test_find_scenes_and_names(tmp_path):
    for name in ("a/x.tif", "a/b/y.mat", "a/b/z.img", "a/b/z.hdr", "a/b/w.img", "a/notes.txt", "c/x.tif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"0")
    found = find_scenes(tmp_path / "a")
    assert [p.relative_to(tmp_path.resolve()).as_posix() for p in found] == ["a/b/y.mat", "a/b/z.img", "a/x.tif"]
    assert len(find_scenes([tmp_path / "a", tmp_path / "a/x.tif"])) == 3
    assert scene_names([tmp_path / "a/x.tif", tmp_path / "c/x.tif", tmp_path / "a/b/y.mat"]) == ["a_x", "c_x", "y"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="No scene files"):
        find_scenes(tmp_path / "empty")


def test_the_repository_sample_as_a_scene():
    scene = load_scene(Path(__file__).resolve().parents[3] / "sample" / "enmap_potsdam.tif")
    assert scene.cube.shape == (224, 64, 64) and scene.valid.all() and scene.good_bands.sum() == 218
    assert 0.4 < scene.cube.max() < 1.5


@pytest.mark.skipif(not DATA.is_dir(), reason="shared real data absent")
@pytest.mark.parametrize("relative, shape", [("samson/samson_1.mat", (156, 95, 95)),
                                             ("moffett_field/Moffett_vca.mat", (189, 50, 50)),
                                             ("urban_crop/subimage_Urban_R162.mat", (162, 34, 78)),
                                             ("paris_hyperion/paris_data_hs_ms.mat", (128, 72, 72)),
                                             ("enmap_potsdam/enmap_potsdam_tile_64_0.tif", (224, 32, 32))])
def test_real_scenes(relative, shape):
    scene = load_scene(DATA / relative)
    assert scene.cube.shape == shape and scene.valid.all()
    assert scene.good_bands.sum() == (218 if relative.startswith("enmap") else shape[0])
    assert 0.4 < scene.cube.max() < 1.5


# The scenes added to ../shared/data on 2026-12-06: (file, array, H x W x B as stored, good bands, valid
# pixels, stored 99.9th percentile, factor to reflectance: None where the unit is unknown and the
# percentile becomes reflectance 0.5). Where the folder is absent (a fresh clone),
# a synthetic file of the same layout, dtype and value range stands in.
NEW_SCENES = [
    ("aviris_abu/abu-urban-2.mat", "data", (100, 100, 198), "int16", 198, 10000, 5908, 1e-4),
    ("aviris_abu/cat-island.mat", "data", (150, 150, 188), "int16", 188, 22500, 5578, 1e-4),
    ("aviris_abu/los-angeles-1.mat", "data", (100, 100, 205), "uint16", 205, 10000, 4926, 1e-4),
    ("aviris_abu/los-angeles-2.mat", "data", (100, 100, 205), "uint16", 205, 10000, 4335, 1e-4),
    ("aviris_abu/texas-goast.mat", "data", (100, 100, 204), "int16", 204, 10000, 4172, 1e-4),
    ("aviris_san_diego/AVIRIS-I.mat", "data", (120, 120, 189), "uint16", 189, 14400, 4885, 1e-4),
    ("aviris_san_diego/AVIRIS-II.mat", "data", (100, 100, 189), "uint16", 189, 10000, 6351, 1e-4),
    ("rosis_pavia_centre/dataPavia.mat", "PaviaCenter", (105, 120, 102), "uint16", 102, 12600, 2835, 1e-4),
    ("aviris_vi_demo/a_hsi_img_for_VI_demo.mat", "hsi_img", (90, 90, 224), "int16", 181, 8100, 7389, 1e-4),
    ("hydice_urban/HYDICE_data.mat", "data", (100, 80, 162), "uint16", 162, 8000, 514, None),
    ("casi_muufl/an_hsi_image_sub_for_demo.mat", "hsi_img_sub", (51, 88, 72), "float32", 72, 3884, 0.759, 1.0),
]


def synthetic_like(folder, relative, array, shape, dtype, good, valid_count, high):
    """A small .mat of the real file's layout: the same array names, dtype, value range, zero
    bands (a_hsi_img_for_VI_demo), wavelengths (out of order, as AVIRIS's overlapping
    spectrometers give them) and flight-line mask (CASI)."""
    from scipy import io

    rng = np.random.default_rng(len(relative))
    height, width, bands = 12, 10, shape[2]
    values = rng.uniform(0.0, high, (height, width, bands))
    if np.dtype(dtype).kind != "u":
        values[0, 0, :] = -0.01 * high  # a small negative: sensor noise over dark water
    content = {array: values.astype(dtype), "map": rng.integers(0, 2, (height, width)).astype(np.uint8)}
    if good < bands:
        content[array][..., good:] = 0
    if dtype == "float32":
        mask = np.ones((height, width), np.uint8)
        mask[7:, 6:] = 0
        content["mask_sub"] = mask
    if array == "hsi_img" or dtype == "float32":
        content["wavelengths"] = np.linspace(400, 2400, bands)[::-1].reshape(-1, 1)
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    io.savemat(path, content)
    return path, content[array].astype(np.float64)


@pytest.mark.parametrize("relative, array, shape, dtype, good, valid_count, high, factor", NEW_SCENES,
                         ids=[row[0].split("/")[0] + "-" + Path(row[0]).stem for row in NEW_SCENES])
def test_new_scene_layouts(tmp_path, relative, array, shape, dtype, good, valid_count, high, factor):
    from scipy import io

    if DATA.is_dir():
        path = DATA / relative
        stored = io.loadmat(path)[array].astype(np.float64)
        assert stored.shape == shape and io.loadmat(path)[array].dtype == dtype
    else:
        path, stored = synthetic_like(tmp_path, relative, array, shape, dtype, good, valid_count, high)
    scene = load_scene(path)
    height, width, bands = stored.shape
    assert scene.cube.shape == (bands, height, width)
    # the factor follows from the stored values' 99.9th percentile, computed here independently
    mask = io.loadmat(path).get("mask_sub")
    inside = np.ones((height, width), bool) if mask is None else mask != 0
    assert np.percentile(stored[inside], 99.9) == pytest.approx(high, rel=0.02 if DATA.is_dir() else 0.2)
    factor = factor or 0.5 / np.percentile(stored[inside], 99.9)
    expected = np.clip(stored.transpose(2, 0, 1) * factor, 0, None)
    expected[:, ~inside] = 0
    np.testing.assert_allclose(scene.cube, expected, rtol=1e-5, atol=1e-7)
    assert scene.cube.min() >= 0.0 and 0.25 < np.percentile(scene.cube[:, inside], 99.9) < 1.0
    assert (scene.cube.min() == 0.0) == (stored[inside].min() <= 0.0 or not inside.all()), "negatives clipped to 0"
    assert scene.good_bands.sum() == (good if DATA.is_dir() else min(good, bands))
    assert scene.valid.sum() == (valid_count if DATA.is_dir() else inside.sum())
    zero = ~stored.any(axis=(0, 1))
    np.testing.assert_array_equal(scene.good_bands, ~zero)
    wavelengths = io.loadmat(path).get("wavelengths")
    good_list = np.flatnonzero(scene.good_bands)
    if wavelengths is None:
        np.testing.assert_array_equal(scene.order, good_list)
    else:
        np.testing.assert_array_equal(scene.order, good_list[np.argsort(wavelengths.ravel()[good_list], kind="stable")])


def test_the_casi_mask_keeps_patches_outside_the_flight_line(tmp_path):
    from scipy import io

    path, stored = synthetic_like(tmp_path, "casi.mat", "hsi_img_sub", (0, 0, 6), "float32", 6, 0, 0.76)
    scene = load_scene(path)
    outside = io.loadmat(path)["mask_sub"] == 0
    assert not scene.valid[outside].any() and scene.valid[~outside].all()
    scene.cube[:, outside] = np.nan  # a patch reaching outside, even through a kernel, would hold a NaN
    build_patches([scene], tmp_path / "p.h5", 2, 2, seed=3)
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert f["scene_0000"]["hr"].shape[0] > 0 and np.isfinite(f["scene_0000"]["hr"][()]).all()


def test_unreadable_mat_names_the_file_and_its_arrays(tmp_path):
    from scipy import io

    io.savemat(tmp_path / "labels.mat", {"gt": np.zeros((20, 20), np.uint8), "names": np.array(["a", "b"])})
    with pytest.raises(InputError, match=r"Scene '.*labels.mat' holds no cube in a known layout .*arrays found: "
                                         r"gt \(20, 20\), names"):
        load_scene(tmp_path / "labels.mat")
    io.savemat(tmp_path / "masked.mat", {"data": np.ones((6, 5, 4), np.uint16), "mask_sub": np.ones((5, 6))})
    with pytest.raises(InputError, match=r"mask 'mask_sub' of \(5, 6\) pixels, but its cube is 6 x 5\."):
        load_scene(tmp_path / "masked.mat")


def test_area_sampling_gives_patches_in_proportion_to_area(tmp_path):
    small, large = make_scene("small", 1, height=30, width=30), make_scene("large", 2, height=60, width=60)
    counts = build_patches([small, large], tmp_path / "p.h5", SCALE, P_LR, seed=2, positions_per_kilopixel=20)
    # positions per copy: round(20 * trainable pixels / 1000), pixels of the copy resized by 1, 0.75, 0.5
    expected = {name: 5 * sum(round(20 * math.ceil(side * c) ** 2 / 1000) for c in AUGMENT_SCALES)
                for name, side in (("small", 30), ("large", 60))}
    assert counts == expected and counts["large"] > 3.5 * counts["small"]
